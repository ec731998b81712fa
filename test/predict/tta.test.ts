import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cropArea, cropBox, cropFromFullMask, cropToFullMask, type CropMask } from '../../stages/evaluate/crop-mask.js';
import { flipBoxHorizontally, flipCropHorizontally, flipInstancesBack, mergeFlipUnion, unionCrops } from '../../stages/predict/tta.js';
import type { MaskInstance } from '../../stages/predict/predictions.js';

const W = 12;
const H = 6;

function rect(x: number, y: number, w: number, h: number): CropMask {
  const mask = new Uint8Array(W * H);
  for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) mask[j * W + i] = 1;
  return cropFromFullMask(mask, W, H);
}

function instance(mask: CropMask, score = 0.9): MaskInstance {
  return { score, box: cropBox(mask), mask };
}

test('flipping a crop mirrors it within the image and flipping twice restores it', () => {
  const crop = cropFromFullMask(Uint8Array.from([1, 1, 0, 0, 1, 0, 0, 0, 0]), 3, 3); // rows: 1 1 0 / 0 1 0 / 0 0 0
  const flipped = flipCropHorizontally(crop, 3);
  assert.deepEqual(Array.from(cropToFullMask(flipped, 3, 3)), [0, 1, 1, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(flipCropHorizontally(flipped, 3), crop);
  assert.deepEqual(flipBoxHorizontally([0, 0, 2, 2], 3), [0, 1, 2, 3]);
});

test('a plain mask matched by a flipped mask with IoU > 0.1 becomes their union', () => {
  const plain = [instance(rect(0, 0, 4, 4), 0.95)];
  const flipped = [instance(rect(2, 0, 4, 4), 0.5)]; // IoU 8/24 = 1/3
  const merged = mergeFlipUnion(plain, flipped, W, H);
  assert.equal(merged.length, 1);
  assert.deepEqual(merged[0]!.mask, rect(0, 0, 6, 4));
  assert.equal(merged[0]!.score, 0.95);
  assert.deepEqual(merged[0]!.box, [0, 0, 4, 6]);
});

test('a plain mask with no flipped partner above IoU 0.1 is deleted, and flipped-only masks are dropped', () => {
  const plain = [instance(rect(0, 0, 5, 2)), instance(rect(8, 0, 4, 4))];
  // partner of the first: IoU 1/10 exactly (not > 0.1); a flipped-only mask far away
  const flipped = [instance(rect(4, 1, 1, 1)), instance(rect(8, 5, 4, 1))];
  assert.deepEqual(mergeFlipUnion(plain, flipped, W, H), []);
  // just above: IoU 2/10
  const merged = mergeFlipUnion(plain, [instance(rect(3, 1, 2, 1))], W, H);
  assert.equal(merged.length, 1);
  assert.equal(cropArea(merged[0]!.mask), 10);
});

test('each plain mask takes its best flipped partner, and a partner may serve two plain masks', () => {
  const plain = [instance(rect(0, 0, 4, 4)), instance(rect(4, 0, 4, 4))];
  const flipped = [instance(rect(0, 0, 3, 4)), instance(rect(2, 0, 5, 4))];
  const merged = mergeFlipUnion(plain, flipped, W, H);
  // plain 0: IoU with f0 = 12/16, with f1 = 8/28 -> f0; plain 1: f1 (12/20)
  assert.deepEqual(merged.map((m) => cropBox(m.mask)), [[0, 0, 4, 4], [0, 2, 4, 8]]);
});

test('ties go to the first flipped mask, like numpy argmax', () => {
  const plain = [instance(rect(4, 0, 2, 1))];
  const flipped = [instance(rect(3, 0, 2, 1)), instance(rect(5, 0, 2, 1))]; // both IoU 1/3
  const merged = mergeFlipUnion(plain, flipped, W, H);
  assert.deepEqual(cropBox(merged[0]!.mask), [0, 3, 1, 6]);
});

test('the mirror pass is flipped back before merging', () => {
  const truth = rect(1, 1, 3, 3);
  const mirrored = instance(flipCropHorizontally(truth, W));
  const back = flipInstancesBack([mirrored], W);
  assert.deepEqual(back[0]!.mask, truth);
  assert.deepEqual(back[0]!.box, cropBox(truth));
  assert.deepEqual(unionCrops(truth, back[0]!.mask), truth);
});
