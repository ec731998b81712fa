import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { stagesCommand } from '../helpers/paths.js';
import { StageError } from '../../stages/stage-error.js';
import { type StageEvents } from '../../stages/contract.js';
import { parseFlags } from '../../stages/program.js';
import { DatasetWriter, writeImage, type Image8 } from '../../stages/imaging/dataset.js';
import { selectBackend } from '../../stages/model/backend.js';
import { saveCheckpoint } from '../../stages/model/checkpoint.js';
import { configFromParams } from '../../stages/model/config.js';
import { MaskRcnn } from '../../stages/model/mask-rcnn.js';
import { stage } from '../../stages/predict/predict.js';
import { readImagePredictions, readPredictionsManifest } from '../../stages/predict/predictions.js';

await selectBackend('wasm', () => {}, { threads: 1 });

const root = mkdtempSync(join(tmpdir(), 'predict-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A tiny Mask R-CNN with random weights: enough to run the whole inference path in well under a second. */
const config = configFromParams({
  preset: 'small',
  image: { size: 64 },
  backbone: { fpnChannels: 16 },
  rpn: { headChannels: 16, preNmsTopN: 100, postNmsTopNTest: 30 },
  box: { fcDim: 16 },
  mask: { headChannels: 8 },
  detection: { maxInstances: 20 },
});
const checkpoint = join(root, 'checkpoint');
/** The same model made blind: its class head calls every ROI background, so it detects nothing anywhere. */
const blindCheckpoint = join(root, 'blind-checkpoint');
{
  const model = new MaskRcnn(config);
  model.build();
  await saveCheckpoint(checkpoint, model.store, { config, phase: 'test', epoch: 1 });
  model.store.assign('mrcnn_class_logits/kernel', tf.zerosLike(model.store.get('mrcnn_class_logits/kernel')!));
  model.store.assign('mrcnn_class_logits/bias', tf.tensor1d([50, -50]));
  await saveCheckpoint(blindCheckpoint, model.store, { config, phase: 'test', epoch: 1 });
  model.dispose();
}

/** Random-looking pixels with a few bright blobs. */
function picture(width: number, height: number, channels: 1 | 3 | 4, seed: number): Image8 {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101) % 60;
  for (let y = 10; y < 22; y++) for (let x = 12; x < 26; x++) data.fill(230, (y * width + x) * channels, (y * width + x + 1) * channels);
  if (channels === 4) for (let p = 0; p < width * height; p++) data[p * 4 + 3] = 255;
  return { width, height, channels, data };
}

async function compactDataset(): Promise<string> {
  const dir = join(root, 'dataset');
  const writer = new DatasetWriter(dir);
  for (const [id, width, height] of [['wide', 80, 50], ['tall', 40, 70]] as const) {
    const image = picture(width, height, 3, id.length);
    const labels = { width, height, data: new Uint16Array(width * height), count: 0 };
    await writer.add({ info: { id, width, height, channels: 3, nuclei: 0, overlapPixels: 0, source: 'test' }, image, labels });
  }
  await writer.finish();
  return dir;
}

/** A DSB-layout folder: <id>/images/<id>.png. */
async function bareImages(name: string, images: Record<string, Image8>): Promise<string> {
  const dir = join(root, name);
  for (const [id, image] of Object.entries(images)) {
    mkdirSync(join(dir, id, 'images'), { recursive: true });
    await writeImage(join(dir, id, 'images', `${id}.png`), image);
  }
  return dir;
}

function dsb2018(args: string[]) {
  const [node, ...rest] = stagesCommand;
  return spawnSync(node!, [...rest, ...args], { encoding: 'utf8', env: { ...process.env, RUNNER_EVENTS: '' } });
}

const silent: StageEvents = { progress() {}, metric() {}, log() {} };

/** Runs the stage in this process (for the error cases: no process start per case). */
async function runInProcess(args: string[]): Promise<void> {
  await stage.run(parseFlags(stage, args), { events: silent });
}

test('predict writes a valid predictions directory for a compact dataset, and its metrics', async () => {
  const data = await compactDataset();
  const out = join(root, 'preds-dataset');
  const metrics = join(root, 'metrics-dataset.json');
  const ids = join(root, 'ids.txt');
  writeFileSync(ids, 'tall\nwide\n');
  const result = dsb2018([
    'predict', '--checkpoint', checkpoint, '--data', data, '--ids', ids, '--out', out, '--metrics', metrics,
    '--min-confidence', '0', '--tta', 'hflip', '--backend', 'wasm', '--threads', '1', '--batch', '2',
  ]);
  assert.equal(result.status, 0, result.stderr);
  const manifest = await readPredictionsManifest(out);
  assert.deepEqual(manifest.map((e) => [e.id, e.width, e.height]), [['tall', 40, 70], ['wide', 80, 50]]);
  let instances = 0;
  for (const entry of manifest) {
    const image = await readImagePredictions(out, entry.id, entry); // validates every score, box and RLE
    for (const instance of image.instances) assert.ok(instance.score >= 0 && instance.score <= 1 && instance.rle.length > 0);
    instances += image.instances.length;
  }
  assert.ok(instances > 0, 'random weights with min-confidence 0 detect something');
  const summary = JSON.parse(readFileSync(metrics, 'utf8'));
  assert.equal(summary.images, 2);
  assert.equal(summary.instances, instances);
  assert.equal(summary.backend, 'wasm');
  assert.equal(summary.tta, 'hflip');
  assert.ok(summary.seconds_per_image > 0 && Number.isInteger(summary.retries));
});

test('predict reads a folder of bare images of any size and channels, and retries the images it finds nothing in', async () => {
  const dir = await bareImages('bare', { rgba: picture(90, 60, 4, 1), grey: picture(50, 50, 1, 2) });
  const out = join(root, 'preds-bare');
  const metrics = join(root, 'metrics-bare.json');
  // A blind model: both images take the scale-down retry (and find nothing there either).
  const result = dsb2018([
    'predict', '--checkpoint', blindCheckpoint, '--images', dir, '--out', out, '--metrics', metrics, '--tta', 'none', '--backend', 'wasm', '--threads', '1',
  ]);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual((await readPredictionsManifest(out)).map((e) => [e.id, e.width, e.height, e.instances]), [['grey', 50, 50, 0], ['rgba', 90, 60, 0]]);
  const summary = JSON.parse(readFileSync(metrics, 'utf8'));
  assert.deepEqual([summary.images, summary.instances, summary.retries, summary.retries_used], [2, 0, 2, 0]);
  assert.match(result.stderr, /rgba: no mask left, scale-down retry found no more/);
});

test('a missing checkpoint, or one without a model config, is an error naming it', async () => {
  const dir = await bareImages('one', { a: picture(32, 32, 3, 3) });
  const missing = join(root, 'no-such-checkpoint');
  await assert.rejects(runInProcess(['--checkpoint', missing, '--images', dir, '--out', join(root, 'x')]), (error: Error) =>
    error instanceof StageError && error.message.includes(missing) && /no model\.json/.test(error.message));
  const bare = join(root, 'checkpoint-without-config');
  const model = new MaskRcnn(config);
  model.build();
  await saveCheckpoint(bare, model.store, { phase: 'x' });
  model.dispose();
  await assert.rejects(runInProcess(['--checkpoint', bare, '--images', dir, '--out', join(root, 'x')]), new RegExp(`checkpoint ${bare}: model.json has no meta.config`));
  assert.equal(existsSync(join(root, 'x')), false);
});

test('a corrupt image is an error naming the file, and no predictions directory is left behind', async () => {
  const dir = await bareImages('corrupt', { good: picture(32, 32, 3, 4), bad: picture(32, 32, 3, 5) });
  const file = join(dir, 'bad', 'images', 'bad.png');
  writeFileSync(file, readFileSync(file).subarray(0, 60)); // truncated PNG
  const out = join(root, 'preds-corrupt');
  await assert.rejects(
    runInProcess(['--checkpoint', checkpoint, '--images', dir, '--out', out, '--backend', 'wasm', '--threads', '1']),
    (error: Error) => error instanceof StageError && error.message.startsWith(`${file}: cannot decode image`),
  );
  assert.equal(existsSync(out), false);
});

test('bad inputs and flags are errors naming the file, line or flag', async () => {
  const dir = await bareImages('flags', { a: picture(32, 32, 3, 6) });
  const data = join(root, 'dataset');
  const out = ['--out', join(root, 'y')];
  const ids = join(root, 'bad-ids.txt');
  writeFileSync(ids, 'a\nmissing\n');
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', dir, '--ids', ids, ...out]), new RegExp(`${ids}:2: no image "missing"`));
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', dir, '--data', data, ...out]), /exactly one of --data .* or --images/);
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', dir, '--tta', 'vflip', ...out]), /flag --tta: "vflip" is not one of none, hflip/);
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', dir, '--mask-threshold', '1.5', ...out]), /flag --mask-threshold: 1.5 must be within \[0, 1\]/);
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', dir, '--scale-down-retry', 'maybe', ...out]), /flag --scale-down-retry: "maybe" is not true or false/);
  mkdirSync(join(root, 'layout', 'x'), { recursive: true });
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', join(root, 'layout'), ...out]), new RegExp(`${join(root, 'layout', 'x', 'images', 'x.png')}: not found`));
});

test('with --if-missing empty, a missing images folder gives an empty predictions directory; without, an error naming it', async () => {
  const absent = join(root, 'no-stage1-test');
  const out = join(root, 'preds-empty');
  await runInProcess(['--checkpoint', checkpoint, '--images', absent, '--if-missing', 'empty', '--out', out]);
  assert.deepEqual(await readPredictionsManifest(out), []);
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', absent, '--out', out]), new RegExp(`${absent}: not a directory`));
  await assert.rejects(runInProcess(['--checkpoint', checkpoint, '--images', absent, '--if-missing', 'skip', '--out', out]), /flag --if-missing: "skip" is not one of error, empty/);
});

/** Detection scores per image id of `dir`, from a random-weight checkpoint whose config's image section takes `image`. */
async function scoresWith(name: string, image: Record<string, unknown>, dir: string, ids: readonly string[]): Promise<Record<string, number[]>> {
  const withImage = configFromParams({ ...config, image: { ...config.image, ...image } });
  const model = new MaskRcnn(withImage);
  model.build();
  const loaded = join(root, `checkpoint-${name}`);
  await saveCheckpoint(loaded, model.store, { config: withImage, phase: 'test', epoch: 1 });
  model.dispose();
  const out = join(root, `preds-${name}`);
  await runInProcess(['--checkpoint', loaded, '--images', dir, '--out', out, '--min-confidence', '0', '--tta', 'none', '--scale-down-retry', 'false', '--backend', 'wasm', '--threads', '1']);
  const scores: Record<string, number[]> = {};
  for (const id of ids) scores[id] = (await readImagePredictions(out, id)).instances.map((instance) => instance.score);
  return scores;
}

test('a checkpoint trained with image.contrast stretch predicts a dim copy of an image as it predicts the image', async () => {
  // Even pixel values, so halving them is exact: the stretch maps both images onto the same 0..255 pixels.
  const bright = picture(80, 50, 3, 4);
  for (let i = 0; i < bright.data.length; i++) bright.data[i] = bright.data[i]! & ~1;
  const dim = { ...bright, data: bright.data.map((v) => v / 2) };
  const dir = await bareImages('contrast', { bright, dim });
  const stretched = await scoresWith('stretch', { contrast: 'stretch' }, dir, ['bright', 'dim']);
  assert.ok(stretched['bright']!.length > 0, 'random weights with min-confidence 0 detect something');
  assert.deepEqual(stretched['dim'], stretched['bright']);
  const raw = await scoresWith('raw', { contrast: 'none' }, dir, ['bright', 'dim']);
  assert.notDeepEqual(raw['dim'], raw['bright'], 'without the stretch the network sees two different images');
});

test('a checkpoint trained with image.background dark predicts a bright-background image as its negative', async () => {
  // Pixels 128..255 (median above the middle: inverted under 'dark') and their negatives 0..127 (left alone).
  const light = picture(80, 50, 3, 5);
  for (let i = 0; i < light.data.length; i++) light.data[i] = 128 + (light.data[i]! >> 1);
  const negative = { ...light, data: light.data.map((v) => 255 - v) };
  const dir = await bareImages('background', { light, negative });
  const dark = await scoresWith('dark', { background: 'dark' }, dir, ['light', 'negative']);
  assert.ok(dark['light']!.length > 0, 'random weights with min-confidence 0 detect something');
  assert.deepEqual(dark['light'], dark['negative']);
  const asIs = await scoresWith('as-is', { background: 'as-is' }, dir, ['light', 'negative']);
  assert.notDeepEqual(asIs['light'], asIs['negative'], 'as they are, the two are different images');
});
