import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import seedrandom from 'seedrandom';
import { stagesCommand } from '../helpers/paths.js';
import { grid, render } from '../imaging/grid.js';
import { writeAtomically } from '../../stages/write-atomically.js';
import { DatasetWriter, readManifest, readSample, type Image8, type LabelMap } from '../../stages/imaging/dataset.js';
import { relabel } from '../../stages/imaging/components.js';
import { mergeAcrossCentre, mergeMosaicLabels } from '../../stages/data/mosaic-merge.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mosaic-test-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const labelMap = (rows: string[]): LabelMap => {
  const { data, width, height } = grid(rows);
  const labels = Uint16Array.from(data);
  return { width, height, data: labels, count: Math.max(0, ...labels) };
};

test('a nucleus cut by the vertical seam is joined, and a right piece joins only the left label touching it most', () => {
  // 8 wide: centre line between columns 3 and 4. Left 1 touches right 3 on two rows; left 2 touches 3 once.
  const labels = labelMap([
    '..113...',
    '..113...',
    '...23...',
    '...2.44.',
  ]);
  assert.equal(mergeAcrossCentre(labels, 'vertical'), 1);
  assert.deepEqual(render(labels.data, 8), ['..111...', '..111...', '...21...', '...2.44.']);
});

test('tiles stacked 2x2 merge across the vertical seam first, then the horizontal one', () => {
  // One nucleus on the centre cross, cut into four tile pieces (each tile's label 1).
  const tl = labelMap(['...', '..1']);
  const tr = labelMap(['...', '1..']);
  const bl = labelMap(['..1', '...']);
  const br = labelMap(['1..', '..2']);
  const { labels, merged } = mergeMosaicLabels([tl, tr, bl, br]);
  assert.equal(merged, 3);
  assert.deepEqual(render(labels.data, 6), ['......', '..11..', '..11..', '.....2']);
});

/**
 * A fluorescence-like RGB image: bright blurred discs on a dark, slightly noisy background. `discs` are
 * (x, y, radius) triples; the original image puts some on the tile seams so that every seam has structure.
 */
function micrograph(seed: string, width: number, height: number, discs: [number, number, number][]): Image8 {
  const random = seedrandom.alea(seed);
  const data = new Uint8Array(width * height * 3);
  const brightness = discs.map(() => 120 + 100 * random());
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let value = 20 + 6 * random();
      discs.forEach(([cx, cy, r], k) => {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        value += brightness[k]! * Math.min(1, Math.max(0, r - d + 1) / 2);
      });
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.min(255, Math.round(value));
    }
  }
  return { width, height, channels: 3, data };
}

function randomDiscs(seed: string, width: number, height: number, n: number): [number, number, number][] {
  const random = seedrandom.alea(seed);
  return Array.from({ length: n }, () => [width * random(), height * random(), 3 + 5 * random()]);
}

function crop(image: Image8, labels: Uint16Array, x0: number, y0: number, w: number, h: number): { image: Image8; labels: LabelMap } {
  const data = new Uint8Array(w * h * 3);
  const tileLabels = new Uint16Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = image.data[((y0 + y) * image.width + x0 + x) * 3 + c]!;
      tileLabels[y * w + x] = labels[(y0 + y) * image.width + x0 + x]!;
    }
  }
  return { image: { width: w, height: h, channels: 3, data }, labels: relabel({ width: w, height: h, data: tileLabels, count: 0 }, 8) };
}

/** Same partition: a bijection between the labels of two maps, background to background. */
function samePartition(a: Uint16Array, b: Uint16Array): boolean {
  const forward = new Map<number, number>();
  const backward = new Map<number, number>();
  for (let p = 0; p < a.length; p++) {
    if ((forward.get(a[p]!) ?? b[p]) !== b[p] || (backward.get(b[p]!) ?? a[p]) !== a[p]) return false;
    forward.set(a[p]!, b[p]!);
    backward.set(b[p]!, a[p]!);
  }
  return forward.get(0) === 0 || !forward.has(0);
}

/** A 48x40 "original" with four nuclei across the seams, cut into 24x20 tiles, plus distractors. */
async function shuffledTiles(dir: string): Promise<{ big: Image8; bigLabels: Uint16Array; tileIds: string[] }> {
  const onSeams: [number, number, number][] = [[24, 5, 5], [25, 31, 6], [9, 20, 5], [37, 19, 6], [15, 11, 4], [33, 9, 5], [12, 32, 4]];
  const big = micrograph('original', 48, 40, onSeams);
  const bigLabels = new Uint16Array(48 * 40);
  const box = (label: number, x0: number, x1: number, y0: number, y1: number): void => {
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) bigLabels[y * 48 + x] = label;
  };
  box(1, 20, 27, 3, 7); // across the vertical seam
  box(2, 3, 8, 17, 23); // across the horizontal seam
  box(3, 21, 27, 16, 24); // on the centre cross: four pieces
  box(4, 30, 36, 28, 33); // inside the bottom-right tile
  // Shuffled names so that sorted order says nothing about position.
  const tileIds = ['t_delta', 't_alpha', 't_echo', 't_bravo'];
  const writer = new DatasetWriter(dir);
  const info = (id: string, nuclei: number) => ({ id, width: 24, height: 20, channels: 3, nuclei, overlapPixels: 0, source: 'test' });
  for (const [q, id] of tileIds.entries()) {
    const piece = crop(big, bigLabels, (q % 2) * 24, Math.floor(q / 2) * 20, 24, 20);
    await writer.add({ info: info(id, piece.labels.count), ...piece });
  }
  for (const [k, id] of ['d_one', 'd_two', 'd_three', 'd_four', 'd_five'].entries()) {
    await writer.add({ info: info(id, 0), image: micrograph(`distractor ${k}`, 24, 20, randomDiscs(`discs ${k}`, 24, 20, 5)), labels: { width: 24, height: 20, data: new Uint16Array(480), count: 0 } });
  }
  // Two flat black tiles: their borders match anything flat, so they must not make a mosaic.
  for (const id of ['flat_a', 'flat_b']) {
    await writer.add({ info: info(id, 0), image: { width: 24, height: 20, channels: 3, data: new Uint8Array(1440) }, labels: { width: 24, height: 20, data: new Uint16Array(480), count: 0 } });
  }
  await writer.finish();
  return { big, bigLabels, tileIds };
}

function runMosaic(args: string[]) {
  const [node, ...rest] = stagesCommand;
  return spawnSync(node!, [...rest, 'mosaic', ...args], { encoding: 'utf8' });
}

test('four tiles shuffled among distractors are found and reassembled exactly, nuclei joined across seams', async () => {
  const root = tempDir();
  const input = join(root, 'in');
  const { big, bigLabels, tileIds } = await writeAtomically(input, (tmp) => shuffledTiles(tmp));
  const out = join(root, 'out');
  const result = runMosaic(['--in', input, '--out', out]);
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.equal(
    readFileSync(join(out, 'mosaics.csv'), 'utf8'),
    `mosaic_id,tile_0,tile_1,tile_2,tile_3\nmosaic_00,${tileIds.join(',')}\n`,
    JSON.stringify(report),
  );
  const manifest = await readManifest(out);
  assert.deepEqual(manifest.map((s) => [s.id, s.width, s.height, s.nuclei, s.source]), [['mosaic_00', 48, 40, 4, 'mosaic']]);
  const mosaic = await readSample(out, 'mosaic_00');
  assert.deepEqual(mosaic.image.data, big.data);
  assert.ok(samePartition(mosaic.labels.data, bigLabels), 'the merged labels are the original nuclei');
  assert.equal(report.mosaics, 1);
  assert.equal(report.mosaicsWithFourAcceptedSeams, 1);
  assert.ok(report.edges_right_flat >= 2, `flat tiles' borders count as flat: ${JSON.stringify(report)}`);
  // One merge each for nuclei 1 and 2; three for the four pieces of nucleus 3.
  assert.equal(report.nucleiMergedAcrossSeams, 5);
});

test('a tile missing from --ids (a validation tile) never enters a mosaic', async () => {
  const root = tempDir();
  const input = join(root, 'in');
  const { tileIds } = await writeAtomically(input, (tmp) => shuffledTiles(tmp));
  const ids = join(root, 'train.txt');
  writeFileSync(ids, ['d_one', 'd_two', 'flat_a', ...tileIds.slice(0, 3)].join('\n') + '\n');
  const out = join(root, 'out');
  const result = runMosaic(['--in', input, '--ids', ids, '--out', out]);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(readFileSync(join(out, 'mosaics.csv'), 'utf8'), 'mosaic_id,tile_0,tile_1,tile_2,tile_3\n');
  assert.equal(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).tilesConsidered, 6);
});

test('an id in --ids that the dataset lacks is an error naming the list and line, with no output', async () => {
  const root = tempDir();
  const input = join(root, 'in');
  await writeAtomically(input, (tmp) => shuffledTiles(tmp));
  const ids = join(root, 'train.txt');
  writeFileSync(ids, 'd_one\nnot_there\n');
  const out = join(root, 'out');
  const result = runMosaic(['--in', input, '--ids', ids, '--out', out]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /train\.txt:2: id "not_there" is not in/);
  assert.equal(existsSync(out), false);
});
