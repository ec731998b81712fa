import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { DatasetWriter } from '../../stages/imaging/dataset.js';
import { PredictionsWriter, instanceFromCrop } from '../../stages/predict/predictions.js';
import { cropsFromLabels } from '../../stages/evaluate/crop-mask.js';
import { evaluate, pickOverlaySample, type ImageResult } from '../../stages/evaluate/evaluate.js';
import { readClasses } from '../../stages/imaging/classes-csv.js';
import { stagesCommand } from '../helpers/paths.js';

const W = 8;
const H = 6;

/** Two images: "a" (2 nuclei, predicted exactly) and "b" (1 nucleus, not predicted; manifest modality "greygrey"). */
async function fixture(): Promise<{ dir: string; truth: string; pred: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'evaluate-'));
  const truth = join(dir, 'truth');
  const pred = join(dir, 'pred');
  const writer = new DatasetWriter(truth);
  const predictions = new PredictionsWriter(pred);
  const labelsA = new Uint16Array(W * H);
  labelsA.fill(1, 0, 3);
  labelsA.fill(2, 2 * W + 4, 2 * W + 8);
  const labelsB = new Uint16Array(W * H);
  labelsB.fill(1, W, W + 5);
  for (const [id, data, count, modality] of [['a', labelsA, 2, undefined], ['b', labelsB, 1, 'greygrey']] as const) {
    const labels = { width: W, height: H, data, count };
    const image = { width: W, height: H, channels: 3 as const, data: new Uint8Array(W * H * 3).fill(90) };
    await writer.add({ info: { id, width: W, height: H, channels: 3, nuclei: count, overlapPixels: 0, source: 'test', ...(modality ? { modality } : {}) }, image, labels });
    const instances = id === 'a' ? cropsFromLabels(labels).map((crop) => instanceFromCrop(crop, 0.9, W, H)) : [];
    await predictions.add({ id, width: W, height: H, instances });
  }
  await writer.finish();
  await predictions.finish();
  return { dir, truth, pred };
}

test('evaluate scores per image and per modality, and writes metrics, submission and overlays', async () => {
  const { dir, truth, pred } = await fixture();
  writeFileSync(join(dir, 'classes.csv'), 'filename,foreground,background\na.png,white,black\n');
  const report = await evaluate({
    pred,
    truth,
    classes: join(dir, 'classes.csv'),
    submissionOnly: false,
    metrics: join(dir, 'metrics.json'),
    submission: join(dir, 'sub.csv'),
    overlays: join(dir, 'overlays'),
    overlayCount: 12,
  });
  assert.equal(report.score, 0.5);
  assert.deepEqual(report.modalities, {
    greygrey: { images: 1, score: 0, truth: 1, predicted: 0, found: 0, matchedIoU: 0 },
    whiteblack: { images: 1, score: 1, truth: 2, predicted: 2, found: 2, matchedIoU: 1 },
  });
  assert.deepEqual([report.truth, report.predicted, report.found, report.matchedIoU], [3, 2, 2, 1]);
  assert.deepEqual(report.perImage.map((r) => [r.id, r.score, r.truth, r.predicted]), [['a', 1, 2, 2], ['b', 0, 1, 0]]);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')).score, 0.5);
  assert.equal(readFileSync(join(dir, 'sub.csv'), 'utf8'), 'ImageId,EncodedPixels\na,1 1 7 1 13 1\na,27 1 33 1 39 1 45 1\nb,\n');
  assert.deepEqual(readdirSync(join(dir, 'overlays')).sort(), ['a.png', 'b.png', 'index.html', 'index.json']);
  const meta = await sharp(join(dir, 'overlays', 'a.png')).metadata();
  assert.equal(meta.height, H * 4, 'small images are enlarged');
  assert.equal(meta.width, W * 4 * 2 + 4, 'two panels and a gap');
  assert.match(readFileSync(join(dir, 'overlays', 'index.html'), 'utf8'), /score 1\.000 · whiteblack · 2 true · 2 predicted/);
});

test('an overlay draws truth outlines red and prediction outlines blue, yellow where they coincide', async () => {
  const { dir, truth, pred } = await fixture();
  await evaluate({ pred, truth, submissionOnly: false, overlays: join(dir, 'ov'), overlayCount: 2 });
  const { data, info } = await sharp(join(dir, 'ov', 'a.png')).raw().toBuffer({ resolveWithObject: true });
  const pixel = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
  const right = W * 4 + 4; // left edge of the outline panel
  assert.deepEqual(pixel(0, 0), [90, 90, 90], 'the left panel is the raw image');
  assert.deepEqual(pixel(right, 0), [255, 255, 0], 'a nucleus predicted exactly: both outlines');
  assert.deepEqual(pixel(right + 7 * 4, 5 * 4), [90, 90, 90], 'background');
  const { dir: dir2, truth: truth2, pred: pred2 } = await fixture();
  await evaluate({ pred: pred2, truth: truth2, submissionOnly: false, overlays: join(dir2, 'ov'), overlayCount: 2 });
  const b = await sharp(join(dir2, 'ov', 'b.png')).raw().toBuffer({ resolveWithObject: true });
  const bPixel = (x: number, y: number) => Array.from(b.data.subarray((y * b.info.width + x) * 3, (y * b.info.width + x) * 3 + 3));
  assert.deepEqual(bPixel(right, 4), [255, 0, 0], 'a missed nucleus: red only');
});

test('submission-only mode needs no labels and still writes one row per nucleus', async () => {
  const { dir, pred } = await fixture();
  const report = await evaluate({ pred, submissionOnly: true, submission: join(dir, 'sub.csv'), overlayCount: 12 });
  assert.equal(report.score, undefined);
  assert.equal(readFileSync(join(dir, 'sub.csv'), 'utf8').split('\n').length, 5);
});

/** A DSB-layout folder (<id>/images/<id>.png) holding the fixture's two images, as stage1_test ships. */
async function imageFolder(dir: string): Promise<string> {
  const images = join(dir, 'images-dsb');
  for (const id of ['a', 'b']) {
    mkdirSync(join(images, id, 'images'), { recursive: true });
    await sharp(Buffer.alloc(W * H * 3, 90), { raw: { width: W, height: H, channels: 3 } }).png().toFile(join(images, id, 'images', `${id}.png`));
  }
  return images;
}

test('submission-only overlays from a DSB-layout image folder: every image of the chosen modalities, predictions only', async () => {
  const { dir, pred } = await fixture();
  const images = await imageFolder(dir);
  writeFileSync(join(dir, 'classes.csv'), 'filename,foreground,background\na.png,white,black\nb.png,purple,yellow\n');
  const common = { pred, images, classes: join(dir, 'classes.csv'), submissionOnly: true, overlayCount: 12 } as const;
  await evaluate({ ...common, overlays: join(dir, 'hard'), overlayModalities: ['purpleyellow'] });
  const index = JSON.parse(readFileSync(join(dir, 'hard', 'index.json'), 'utf8')) as Array<{ id: string; modality: string; score?: number }>;
  assert.deepEqual(index.map((e) => [e.id, e.modality, e.score]), [['b', 'purpleyellow', undefined]]);
  assert.deepEqual(readdirSync(join(dir, 'hard')).sort(), ['b.png', 'index.html', 'index.json']);
  // Image "a" has two predicted nuclei: its overlay holds blue outlines and no red (there is no truth to draw).
  await evaluate({ ...common, overlays: join(dir, 'white'), overlayModalities: ['whiteblack'] });
  const { data, info } = await sharp(join(dir, 'white', 'a.png')).raw().toBuffer({ resolveWithObject: true });
  let blue = 0;
  let red = 0;
  for (let p = 0; p < info.width * info.height; p++) {
    const [r, g, b] = [data[p * info.channels]!, data[p * info.channels + 1]!, data[p * info.channels + 2]!];
    if (r === 0 && g === 170 && b === 255) blue++;
    if (r === 255 && g === 0 && b === 0) red++;
  }
  assert.ok(blue > 0, 'predicted outlines drawn');
  assert.equal(red, 0, 'no truth outlines');
});

test('--images is refused when scoring, --overlay-modalities without --overlays, and an image missing from --images is named', async () => {
  const { dir, truth, pred } = await fixture();
  const images = await imageFolder(dir);
  await assert.rejects(evaluate({ pred, truth, images, submissionOnly: false, overlayCount: 0 }), /--images is for --submission-only/);
  await assert.rejects(evaluate({ pred, images, submissionOnly: true, overlayCount: 0, overlayModalities: ['x'] }), /--overlay-modalities needs --overlays/);
  rmSync(join(images, 'b'), { recursive: true });
  await assert.rejects(evaluate({ pred, images, submissionOnly: true, overlayCount: 12, overlays: join(dir, 'ov') }), /no image folder for "b"/);
  assert.equal(existsSync(join(dir, 'ov')), false, 'nothing half-written');
});

test('an id list restricts the images, and an id without predictions is an error naming the line', async () => {
  const { dir, truth, pred } = await fixture();
  writeFileSync(join(dir, 'val.txt'), 'b\n');
  const report = await evaluate({ pred, truth, ids: join(dir, 'val.txt'), submissionOnly: false, overlayCount: 0 });
  assert.deepEqual(report.perImage.map((r) => r.id), ['b']);
  assert.equal(report.modalities['greygrey']?.score, 0, 'modality from the dataset manifest');
  writeFileSync(join(dir, 'val.txt'), 'b\nzz\n');
  await assert.rejects(evaluate({ pred, truth, ids: join(dir, 'val.txt'), submissionOnly: false, overlayCount: 0 }), /val\.txt:2: image "zz" has no predictions/);
});

test('scoring without --truth is refused, and nothing is written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evaluate-cli-'));
  const [node, ...args] = stagesCommand;
  const result = spawnSync(node!, [...args, 'evaluate', '--pred', join(dir, 'nothing'), '--metrics', join(dir, 'm.json')], { encoding: 'utf8' });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /nothing[/\\]manifest\.json: not found/);
  assert.equal(existsSync(join(dir, 'm.json')), false);
});

test('the overlay sample spreads over the score range from worst to best', () => {
  const results: ImageResult[] = Array.from({ length: 9 }, (_, i) => ({ id: `i${i}`, modality: 'm', predicted: 1, score: (8 - i) / 8 }));
  assert.deepEqual(pickOverlaySample(results, 3).map((r) => r.score), [0, 0.5, 1]);
  assert.equal(pickOverlaySample(results, 20).length, 9);
  assert.deepEqual(pickOverlaySample(results, 0), []);
});

test('classes.csv gives foreground+background per image id', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'classes-'));
  writeFileSync(join(dir, 'c.csv'), 'filename,foreground,background\nx.png,purple,white\n');
  assert.deepEqual([...(await readClasses(join(dir, 'c.csv')))], [['x', 'purplewhite']]);
  writeFileSync(join(dir, 'bad.csv'), 'file,fg\n');
  await assert.rejects(readClasses(join(dir, 'bad.csv')), /bad\.csv:1: the header has no column "filename"/);
});
