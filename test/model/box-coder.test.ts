import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { clipBoxes, decodeBoxes, decodeBoxesTensor, encodeBoxes } from '../../stages/model/box-coder.js';

await tf.setBackend('cpu');
const std = [0.1, 0.1, 0.2, 0.2] as const;

test('encoding a box against itself gives zero deltas, and a known shift gives the hand-computed deltas', () => {
  const ref = new Float32Array([10, 20, 30, 60]);
  assert.deepEqual(Array.from(encodeBoxes(ref, ref, std)), [0, 0, 0, 0]);
  // h=20, w=40, centre (20, 40). GT: centre (22, 36), h=40, w=20.
  const d = encodeBoxes(ref, new Float32Array([2, 26, 42, 46]), std);
  const expected = [2 / 20 / 0.1, -4 / 40 / 0.1, Math.log(2) / 0.2, Math.log(0.5) / 0.2];
  d.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `delta ${i}: ${v} vs ${expected[i]}`));
});

test('decode inverts encode, in plain arrays and in tensors', () => {
  const refs = new Float32Array([0, 0, 10, 10, 5, 7, 50, 20, -3, -3, 3, 3]);
  const boxes = new Float32Array([1, 2, 12, 9, 10, 0, 40, 30, -1, -2, 5, 1]);
  const deltas = encodeBoxes(refs, boxes, std);
  const back = decodeBoxes(refs, deltas, std);
  back.forEach((v, i) => assert.ok(Math.abs(v - boxes[i]!) < 1e-4, `coordinate ${i}: ${v} vs ${boxes[i]}`));
  const backTensor = decodeBoxesTensor(tf.tensor2d(refs, [3, 4]), tf.tensor2d(deltas, [3, 4]), std).dataSync();
  backTensor.forEach((v, i) => assert.ok(Math.abs(v - boxes[i]!) < 1e-4, `tensor coordinate ${i}: ${v} vs ${boxes[i]}`));
});

test('huge predicted size deltas are capped so decoding stays finite', () => {
  const out = decodeBoxes(new Float32Array([0, 0, 10, 10]), new Float32Array([0, 0, 1e6, 1e6]), std);
  assert.ok(out.every(Number.isFinite));
});

test('clipping keeps boxes inside the window', () => {
  assert.deepEqual(Array.from(clipBoxes(new Float32Array([-5, 3, 300, 260]), [0, 0, 256, 256])), [0, 3, 256, 256]);
});
