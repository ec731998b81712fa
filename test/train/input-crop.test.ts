import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import type { Pair } from '../../stages/train/augment-geometry.js';
import { augmentSample, defaultAugmentOptions } from '../../stages/train/augment.js';
import { cropInput } from '../../stages/train/input-crop.js';

/** A size x size grey square, pixel value = column, with one nucleus (label 7) covering the given cells. */
function square(size: number, nucleus: Array<[number, number]>): Pair {
  const image = { width: size, height: size, channels: 1 as const, data: Uint8Array.from({ length: size * size }, (_, i) => i % size) };
  const labels = { width: size, height: size, data: new Uint16Array(size * size), count: 7 };
  for (const [x, y] of nucleus) labels.data[y * size + x] = 7;
  return { image, labels };
}

test('a window holds the pixels at its place and the nucleus renumbered 1', () => {
  // The nucleus sits at (6, 6) of an 8 x 8 square; uniform tries that miss it fall back to centring on it.
  const random = (() => { const draws = [0, 0, 0, 0, 0, 0, 0.5]; let i = 0; return () => draws[i++] ?? 0; })();
  const window = cropInput(square(8, [[6, 6]]), 4, random, 3);
  assert.deepEqual([window.x, window.y], [4, 4]); // centred on (6, 6), clamped to the border
  assert.equal(window.image.width, 4);
  assert.deepEqual(Array.from(window.image.data.subarray(0, 4)), [4, 5, 6, 7]);
  assert.equal(window.labels.count, 1);
  assert.equal(window.labels.data[2 * 4 + 2], 1);
});

test('a uniform try that keeps a nucleus is taken as it is', () => {
  const random = (() => { const draws = [0.2, 0.2]; let i = 0; return () => draws[i++] ?? 0.9; })();
  const window = cropInput(square(8, [[1, 1], [2, 1]]), 4, random, 3);
  assert.deepEqual([window.x, window.y], [1, 1]); // floor(0.2 * 5)
  assert.equal(window.labels.count, 1);
  assert.deepEqual(Array.from(window.labels.data.subarray(0, 2)), [1, 1]);
});

test('a window as large as the sample returns the sample; one without nuclei gets a uniform window', () => {
  const whole = square(8, [[0, 0]]);
  assert.equal(cropInput(whole, 8, Math.random).image, whole.image);
  const empty = cropInput(square(8, []), 4, seedrandom('e'), 2);
  assert.equal(empty.image.width, 4);
  assert.equal(empty.labels.count, 0);
});

test('augmentation with a training input smaller than the molded side gives windows at the molded scale', () => {
  // A 64 x 64 image molded to 128 (x2) and cut to 64: a nucleus 4 px wide becomes 8 px wide in the window.
  const size = 64;
  const pair = square(size, []);
  for (let y = 30; y < 34; y++) for (let x = 30; x < 34; x++) pair.labels.data[y * size + x] = 1;
  pair.labels.count = 1;
  const options = { ...defaultAugmentOptions, size: 128, inputSize: 64, rotateProbability: 0, cropProbability: 0,
    flipLeftRightProbability: 0, flipUpDownProbability: 0, rotate90Probability: 0 };
  for (let seed = 0; seed < 5; seed++) {
    const sample = augmentSample(pair, seedrandom(`s${seed}`), options);
    assert.equal(sample.image.width, 64);
    assert.equal(sample.labels.count, 1, sample.applied.join(', '));
    const area = sample.labels.data.reduce((n, v) => n + (v === 1 ? 1 : 0), 0);
    assert.ok(area > 16, `area ${area}: the nucleus must be upscaled (2x: up to 64 px)`);
    assert.ok(sample.applied.some((a) => a.startsWith('input 64 at')), sample.applied.join(', '));
  }
});
