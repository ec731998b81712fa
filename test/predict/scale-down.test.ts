import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cropBox, cropFromFullMask } from '../../stages/evaluate/crop-mask.js';
import { cropBackInstances, needsScaleDownRetry, pasteTopLeft } from '../../stages/predict/scale-down.js';
import type { MaskInstance } from '../../stages/predict/predictions.js';

test('the image lands in the top-left corner of a black canvas 4x as tall and wide', () => {
  const image = { width: 2, height: 1, channels: 3 as const, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
  const canvas = pasteTopLeft(image);
  assert.equal(canvas.width, 8);
  assert.equal(canvas.height, 4);
  assert.deepEqual(Array.from(canvas.data.subarray(0, 6)), [1, 2, 3, 4, 5, 6]);
  const sum = canvas.data.reduce((a, b) => a + b, 0);
  assert.equal(sum, 21, 'everything else is black');
  assert.throws(() => pasteTopLeft(image, 0), /whole number >= 1/);
});

function instanceAt(width: number, height: number, pixels: Array<[number, number]>): MaskInstance {
  const mask = new Uint8Array(width * height);
  for (const [x, y] of pixels) mask[y * width + x] = 1;
  const crop = cropFromFullMask(mask, width, height);
  return { score: 0.8, box: cropBox(crop), mask: crop };
}

test('masks predicted on the canvas are cut back to the image; ones wholly outside are dropped', () => {
  // canvas 8x4, image 2x1
  const inside = instanceAt(8, 4, [[1, 0]]);
  const straddling = instanceAt(8, 4, [[0, 0], [0, 1], [3, 0]]);
  const outside = instanceAt(8, 4, [[5, 3]]);
  const back = cropBackInstances([inside, straddling, outside], 2, 1);
  assert.equal(back.length, 2);
  assert.deepEqual(cropBox(back[0]!.mask), [0, 1, 1, 2]);
  assert.deepEqual(cropBox(back[1]!.mask), [0, 0, 1, 1]);
  assert.deepEqual(back[1]!.box, [0, 0, 1, 2]);
});

test('the retry is needed when fewer than 2 mask pixels remain, or below a fraction of the image when asked', () => {
  const one = instanceAt(10, 10, [[1, 1]]);
  const two = instanceAt(10, 10, [[1, 1], [2, 1]]);
  assert.equal(needsScaleDownRetry([], 10, 10), true);
  assert.equal(needsScaleDownRetry([one], 10, 10), true);
  assert.equal(needsScaleDownRetry([two], 10, 10), false);
  assert.equal(needsScaleDownRetry([two], 10, 10, { minPixels: 2, minFraction: 0.05 }), true);
  assert.equal(needsScaleDownRetry([two, two, instanceAt(10, 10, [[5, 5]])], 10, 10, { minPixels: 2, minFraction: 0.05 }), false);
});
