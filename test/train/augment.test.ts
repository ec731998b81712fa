import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import {
  flipLeftRight,
  flipUpDown,
  reflectIndex,
  resizePad,
  resizePadGeometry,
  rotate90,
  rotateScale,
  rotateWindow90,
  type Pair,
} from '../../stages/train/augment-geometry.js';
import { augmentSample, defaultAugmentOptions, randomCrop } from '../../stages/train/augment.js';

/** A grey image whose pixel values are 1..w*h in raster order, and the given labels. */
function pair(width: number, height: number, labels?: number[]): Pair {
  const data = Uint8Array.from({ length: width * height }, (_, i) => i + 1);
  const labelData = Uint16Array.from(labels ?? Array(width * height).fill(0));
  return { image: { width, height, channels: 1, data }, labels: { width, height, data: labelData, count: Math.max(0, ...labelData) } };
}

test('reflected indices mirror about the edge pixel without repeating it', () => {
  assert.deepEqual([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => reflectIndex(i, 4)), [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
  assert.equal(reflectIndex(-7, 1), 0);
  assert.equal(reflectIndex(100, 4), reflectIndex(100 % 6, 4));
});

test('a left-right flip mirrors the columns of image and labels', () => {
  const flipped = flipLeftRight(pair(3, 2, [1, 0, 0, 1, 0, 2]));
  assert.deepEqual(Array.from(flipped.image.data), [3, 2, 1, 6, 5, 4]);
  assert.deepEqual(Array.from(flipped.labels.data), [0, 0, 1, 2, 0, 1]);
  assert.deepEqual(Array.from(flipUpDown(pair(3, 2)).image.data), [4, 5, 6, 1, 2, 3]);
});

test('a quarter turn counter-clockwise makes a W x H image H x W like numpy rot90, and back clockwise', () => {
  // 1 2 3      3 6
  // 4 5 6  ->  2 5
  //            1 4
  const ccw = rotate90(pair(3, 2), 1);
  assert.equal(ccw.image.width, 2);
  assert.equal(ccw.image.height, 3);
  assert.deepEqual(Array.from(ccw.image.data), [3, 6, 2, 5, 1, 4]);
  assert.deepEqual(Array.from(rotate90(ccw, -1).image.data), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(rotate90(pair(3, 2), -1).image.data), [4, 1, 5, 2, 6, 3]);
});

test('the window follows a quarter turn', () => {
  // a 4x4 square with the image in rows 1..2 (all columns): turned, it occupies columns 1..2
  assert.deepEqual(rotateWindow90([1, 0, 3, 4], 4, 4, 1), [0, 1, 4, 3]);
  assert.deepEqual(rotateWindow90([0, 1, 4, 2], 4, 4, -1), [1, 0, 2, 4]);
});

test('resize/pad of a 256-high, 320-wide image to 512: scale 1.6, 410 x 512, centred with a 51-pixel band', () => {
  const geometry = resizePadGeometry(320, 256, 512);
  assert.equal(geometry.scale, 1.6);
  assert.equal(geometry.resizedWidth, 512);
  assert.equal(geometry.resizedHeight, 410);
  assert.deepEqual(geometry.window, [51, 0, 461, 512]);
  // a square image just scales; a tall one pads left and right
  assert.deepEqual(resizePadGeometry(256, 256, 512).window, [0, 0, 512, 512]);
  assert.deepEqual(resizePadGeometry(100, 200, 512).window, [0, 128, 512, 384]);
});

test('resize/pad fills the window and leaves zero padding outside it', () => {
  const small = pair(4, 2, [1, 1, 0, 2, 1, 1, 0, 2]);
  const out = resizePad(small, 8);
  assert.deepEqual(out.window, [2, 0, 6, 8]);
  const labelRow = (y: number) => Array.from(out.labels.data.subarray(y * 8, y * 8 + 8));
  assert.deepEqual(labelRow(0), [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(labelRow(2), [1, 1, 1, 1, 0, 0, 2, 2]);
  assert.equal(out.image.data[0], 0);
  assert.equal(out.image.data[2 * 8], 1, 'the corner pixel keeps its value');
});

test('rotation by 0 degrees at scale 1 is the identity', () => {
  const input = pair(5, 4, Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? 1 : 0)));
  const out = rotateScale(input, 0, 1);
  assert.deepEqual(out.image.data, input.image.data);
  assert.deepEqual(out.labels.data, input.labels.data);
});

test('shrinking by half reflects the nucleus at the borders, and relabelling makes the copies separate nuclei', () => {
  // a 2x2 nucleus near (not on) the top-left corner of a 9x9 image; output pixel x samples 2x - 4
  const labels = Array(81).fill(0);
  for (const p of [2 * 9 + 2, 2 * 9 + 3, 3 * 9 + 2, 3 * 9 + 3]) labels[p] = 1;
  const out = rotateScale(pair(9, 9, labels), 0, 0.5);
  const on: number[] = [];
  out.labels.data.forEach((label, p) => label && on.push(p));
  assert.deepEqual(on, [1 * 9 + 1, 1 * 9 + 3, 3 * 9 + 1, 3 * 9 + 3], 'the original at (3, 3) and its reflections');
  const result = augmentSample(pair(9, 9, labels), sequence([0, 0.5, 0, 0.99, 0.99, 0.99, 0.99]), { ...defaultAugmentOptions, size: 9, minScale: 0.5, maxScale: 0.5 });
  assert.equal(result.applied[0], 'rotate 0.0° x0.50');
  assert.equal(result.labels.count, 4, 'each copy is its own nucleus');
});

test('a crop that would lose every nucleus is retried, and skipped when every try loses them', () => {
  const labels = Array(16 * 16).fill(0);
  labels[15 * 16 + 15] = 1; // one nucleus pixel in the bottom-right corner
  const input = pair(16, 16, labels);
  assert.equal(randomCrop(input, 8, 3, () => 0), undefined, 'top-left crops only: rejected');
  const found = randomCrop(input, 8, 3, sequence([0, 0, 0.99, 0.99]));
  assert.deepEqual([found?.x, found?.y], [8, 8]);
  assert.equal(found?.pair.labels.count, 1);
  const skipped = augmentSample(input, sequence([0.9, 0, ...Array(10).fill(0), 0.9, 0.9, 0.9]), { ...defaultAugmentOptions, cropSize: 8, cropTries: 5, size: 16 });
  assert.deepEqual(skipped.applied, ['crop skipped']);
});

test('the same seed gives the same augmentation and the output is always size x size with compact labels', () => {
  const labels = Array.from({ length: 40 * 30 }, (_, i) => ((i % 40) > 5 && (i % 40) < 12 && i > 200 && i < 600 ? 1 : (i % 40) > 25 && i > 700 ? 2 : 0));
  const input = pair(40, 30, labels);
  const options = { ...defaultAugmentOptions, size: 64, cropSize: 20 };
  for (const seed of ['a', 'b', 'c', 'd', 'e', 'f']) {
    const one = augmentSample(input, seedrandom(seed), options);
    const two = augmentSample(input, seedrandom(seed), options);
    assert.deepEqual(one, two);
    assert.equal(one.image.width, 64);
    assert.equal(one.labels.height, 64);
    const present = new Set(one.labels.data);
    present.delete(0);
    assert.equal(present.size, one.labels.count, `labels 1..count without gaps (${one.applied.join(', ')})`);
  }
});

/** A generator replaying fixed numbers (then 0.99). */
function sequence(values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0.99;
}
