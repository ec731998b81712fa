import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildTrainBatch, imageMeta, moldImages, moldInstances, unmoldBoxes, unmoldMasks } from '../../stages/model/molding.js';
import { seededRng } from '../../stages/model/sampler.js';

await tf.setBackend('cpu');
const mean = [123.7, 116.8, 103.9] as const;

test('an image is scaled to fit the square by its long side and centred', () => {
  const meta = imageMeta(100, 50, 64);
  assert.equal(meta.scale, 0.64);
  assert.deepEqual(meta.window, [0, 16, 64, 48]);
  assert.deepEqual(imageMeta(256, 320, 512).window, [51, 0, 461, 512]);
});

test('molding subtracts the mean pixel and pads with zeros before it', () => {
  const image = { width: 4, height: 2, channels: 4 as const, data: new Uint8Array(4 * 2 * 4).fill(200) };
  const molded = moldImages([image], 8, mean);
  const pixels = molded.images.dataSync();
  const meta = molded.metas[0]!;
  molded.images.dispose();
  assert.deepEqual(meta.window, [2, 0, 6, 8]);
  // Row 0 is padding: 0 - mean; row 3 is image: 200 - mean.
  assert.ok(Math.abs(pixels[0]! + 123.7) < 1e-4);
  assert.ok(Math.abs(pixels[3 * 8 * 3]! - (200 - 123.7)) < 1e-4);
  assert.ok(Math.abs(pixels[3 * 8 * 3 + 2]! - (200 - 103.9)) < 1e-4);
});

function twoNuclei(): { width: number; height: number; data: Uint16Array; count: number } {
  // 40 x 20 label map: nucleus 1 fills rows 2..5, cols 4..11; nucleus 2 is an L shape.
  const width = 20;
  const height = 40;
  const data = new Uint16Array(width * height);
  for (let y = 2; y < 6; y++) for (let x = 4; x < 12; x++) data[y * width + x] = 1;
  for (let y = 20; y < 30; y++) data[y * width + 10] = 2;
  for (let x = 10; x < 16; x++) data[29 * width + x] = 2;
  return { width, height, data, count: 2 };
}

test('instances become boxes in the network frame and mini-masks', () => {
  const labels = twoNuclei();
  const meta = imageMeta(40, 20, 64); // scale 1.6, window [0, 16, 64, 48]
  const gt = moldInstances(labels, meta, 8, 256, seededRng(1));
  assert.deepEqual(Array.from(gt.classIds), [1, 1]);
  const expected = [2 * 1.6, 16 + 4 * 1.6, 6 * 1.6, 16 + 12 * 1.6, 20 * 1.6, 16 + 10 * 1.6, 30 * 1.6, 16 + 16 * 1.6];
  gt.boxes.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-4, `box coordinate ${i}: ${v} vs ${expected[i]}`));
  assert.ok(gt.miniMasks.subarray(0, 64).every((v) => v === 1), 'a full rectangle gives a full mini-mask');
  const l = gt.miniMasks.subarray(64, 128);
  assert.equal(l[0], 1, 'top-left of the L');
  assert.equal(l[7], 0, 'top-right of the L is empty');
  assert.equal(l[63], 1, 'bottom-right of the L');
});

test('more instances than the cap are randomly subsampled', () => {
  const gt = moldInstances(twoNuclei(), imageMeta(40, 20, 64), 8, 1, seededRng(1));
  assert.equal(gt.classIds.length, 1);
  assert.equal(gt.miniMasks.length, 64);
});

test('unmolding maps boxes and masks back onto the original image', () => {
  const labels = twoNuclei();
  const meta = imageMeta(40, 20, 64);
  const gt = moldInstances(labels, meta, 8, 256, seededRng(1));
  const boxes = unmoldBoxes(gt.boxes, meta);
  const expected = [2, 4, 6, 12, 20, 10, 30, 16];
  boxes.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-4));
  const masks = unmoldMasks(gt.boxes, Float32Array.from(gt.miniMasks), 8, meta, 0.5);
  assert.equal(masks.length, 2);
  // The rectangle comes back exactly.
  for (let p = 0; p < 40 * 20; p++) assert.equal(masks[0]![p], labels.data[p] === 1 ? 1 : 0, `pixel ${p}`);
});

test('a train batch stacks molded images and their ground truth', () => {
  const labels = twoNuclei();
  const image = { width: 20, height: 40, channels: 3 as const, data: new Uint8Array(20 * 40 * 3) };
  const batch = buildTrainBatch([{ image, labels }, { image, labels }], { size: 64, meanPixel: mean, miniMaskSize: 8, maxGtInstances: 256 }, seededRng(1));
  assert.deepEqual(batch.images.shape, [2, 64, 64, 3]);
  assert.equal(batch.gtBoxes.length, 2);
  assert.equal(batch.gtMasks[1]!.length, 2 * 64);
  batch.images.dispose();
});
