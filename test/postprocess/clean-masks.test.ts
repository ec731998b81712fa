import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { cropArea, cropBox, cropFromFullMask, cropToFullMask } from '../../stages/evaluate/crop-mask.js';
import { cleanMasks, defaultCleanOptions, type CleanOptions } from '../../stages/postprocess/clean-masks.js';
import type { MaskInstance } from '../../stages/predict/predictions.js';
import { closeCross, largestComponent } from '../../stages/imaging/morphology.js';
import { fillHoles } from '../../stages/imaging/components.js';

const W = 16;
const H = 12;

/** A mask from a picture: one string per row, '#' = on, anchored at (x, y). */
function draw(x: number, y: number, rows: string[], score = 0.9): MaskInstance {
  const mask = new Uint8Array(W * H);
  rows.forEach((row, j) => [...row].forEach((c, i) => c === '#' && (mask[(y + j) * W + x + i] = 1)));
  const crop = cropFromFullMask(mask, W, H);
  return { score, box: cropBox(crop), mask: crop };
}

function picture(instance: MaskInstance): string[] {
  const full = cropToFullMask(instance.mask, W, H);
  const rows: string[] = [];
  for (let y = 0; y < H; y++) rows.push(Array.from(full.subarray(y * W, (y + 1) * W), (v) => (v ? '#' : '.')).join(''));
  return rows;
}

const only = (options: Partial<CleanOptions>): CleanOptions => ({
  minArea: 0,
  fillHoles: false,
  closing: false,
  removeOverlap: false,
  pieces: 'keep',
  ...options,
});

test('masks of area <= 10 are dropped and 11 is kept', () => {
  const ten = draw(0, 0, ['##########']);
  const eleven = draw(0, 2, ['###########']);
  const { instances, stats } = cleanMasks([ten, eleven], W, H, only({ minArea: 10 }));
  assert.deepEqual(instances.map((i) => cropArea(i.mask)), [11]);
  assert.equal(stats.droppedSmallBefore, 1);
});

test('a hole inside a mask is filled', () => {
  const ring = draw(2, 2, ['#####', '#...#', '#.#.#', '#...#', '#####']);
  const { instances, stats } = cleanMasks([ring], W, H, only({ fillHoles: true }));
  assert.equal(cropArea(instances[0]!.mask), 25);
  assert.equal(stats.holePixelsFilled, 8);
});

test('closing with a 3x3 cross bridges a one-pixel gap in the middle row only', () => {
  const twoBlocks = draw(2, 2, ['###.###', '###.###', '###.###']);
  const { instances } = cleanMasks([twoBlocks], W, H, only({ closing: true }));
  assert.deepEqual(picture(instances[0]!).slice(2, 5), ['..###.###.......', '..#######.......', '..###.###.......']);
});

test('closing a mask on the image border keeps the border pixels', () => {
  const corner = draw(0, 0, ['###', '###', '###']);
  const { instances } = cleanMasks([corner], W, H, only({ closing: true }));
  assert.equal(cropArea(instances[0]!.mask), 9);
});

test('pixels claimed by a higher-scoring mask are removed from lower ones, whatever the input order', () => {
  const low = draw(0, 0, ['######'], 0.5);
  const high = draw(3, 0, ['######'], 0.9);
  const { instances, stats } = cleanMasks([low, high], W, H, only({ removeOverlap: true }));
  assert.deepEqual(instances.map((i) => i.score), [0.9, 0.5]);
  assert.deepEqual(picture(instances[1]!)[0], '###.............');
  assert.equal(stats.overlapPixelsRemoved, 3);
});

test('a mask cut in two keeps its largest piece, is deleted, or keeps both, as asked', () => {
  const cutter = draw(4, 0, ['#', '#', '#', '#'], 0.9);
  const cut = draw(0, 1, ['##########'], 0.5); // loses x=4: pieces of 4 and 5 pixels
  const run = (pieces: CleanOptions['pieces']) => cleanMasks([cutter, cut], W, H, only({ removeOverlap: true, pieces }));
  assert.deepEqual(picture(run('largest').instances[1]!)[1], '.....#####......');
  assert.equal(run('largest').stats.split, 1);
  assert.equal(run('delete').instances.length, 1);
  assert.equal(run('delete').stats.deletedSplit, 1);
  assert.deepEqual(picture(run('keep').instances[1]!)[1], '####.#####......');
});

test('diagonal neighbours are one piece (8-connectivity, as skimage.measure.label)', () => {
  const diagonal = draw(0, 0, ['#..', '.#.', '..#']);
  const { stats } = cleanMasks([diagonal], W, H, only({ pieces: 'largest' }));
  assert.equal(stats.split, 0);
});

test('a mask left with area <= 10 after overlap removal is dropped at the end and claims nothing', () => {
  const high = draw(0, 0, ['############', '############'], 0.9);
  const low = draw(0, 1, ['############', '#####.......'], 0.5); // 17 px, 12 claimed -> 5 left
  const { instances, stats } = cleanMasks([high, low], W, H, { ...defaultCleanOptions, fillHoles: false, closing: false });
  assert.equal(instances.length, 1);
  assert.equal(stats.droppedSmallAfter, 1);
});

test('the input instances are not modified', () => {
  const ring = draw(2, 2, ['#####', '#...#', '#####', '#####']);
  const before = Uint8Array.from(ring.mask.data);
  cleanMasks([ring], W, H);
  assert.deepEqual(ring.mask.data, before);
});

/** The same steps on full-size masks, straight from the definition. */
function reference(instances: MaskInstance[], options: CleanOptions): Uint8Array[] {
  const claimed = new Uint8Array(W * H);
  const sorted = instances
    .filter((i) => cropArea(i.mask) > options.minArea)
    .map((instance, index) => ({ instance, index }))
    .sort((a, b) => b.instance.score - a.instance.score || a.index - b.index);
  const out: Uint8Array[] = [];
  for (const { instance } of sorted) {
    let mask = cropToFullMask(instance.mask, W, H);
    if (options.fillHoles) mask = fillHoles(mask, W, H);
    if (options.closing) mask = closeCross(mask, W, H);
    if (options.removeOverlap) mask = mask.map((v, p) => (claimed[p] ? 0 : v));
    const largest = largestComponent(mask, W, H, 8);
    if (options.pieces === 'delete' && largest.pieces > 1) continue;
    if (options.pieces === 'largest') mask = largest.mask;
    if (options.removeOverlap) mask.forEach((v, p) => v && (claimed[p] = 1));
    if (mask.reduce((a, b) => a + b, 0) > options.minArea) out.push(mask);
  }
  return out;
}

test('working on padded crops gives the same masks as working on the whole image', () => {
  const random = seedrandom('clean');
  for (let trial = 0; trial < 40; trial++) {
    const instances: MaskInstance[] = [];
    for (let k = 0; k < 5; k++) {
      const w = 2 + Math.floor(random() * 8);
      const h = 2 + Math.floor(random() * 8);
      const x0 = Math.floor(random() * (W - w + 1));
      const y0 = Math.floor(random() * (H - h + 1));
      const rows = Array.from({ length: h }, () => Array.from({ length: w }, () => (random() < 0.7 ? '#' : '.')).join(''));
      const instance = draw(x0, y0, rows, Math.round(random() * 4) / 4);
      if (cropArea(instance.mask) > 0) instances.push(instance);
    }
    const options: CleanOptions = { ...defaultCleanOptions, minArea: trial % 3, pieces: (['largest', 'delete', 'keep'] as const)[trial % 3]! };
    const actual = cleanMasks(instances, W, H, options).instances.map((i) => cropToFullMask(i.mask, W, H));
    assert.deepEqual(actual, reference(instances, options), `trial ${trial}`);
  }
});
