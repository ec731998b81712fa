// Our resize gradients (stages/model/kernels/resize-gradients.ts) on cpu and wasm equal the transpose of
// the forward resize — an independent reference, since the stock gradient kernels are wrong.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../stages/model/backend.js';
import { assertAllClose, gradientsOn, linearOpGradient, randomInput, type Input } from './compare-backends.js';

const tolerance = 1e-5;
const r = randomInput;
const t4 = (x: tf.Tensor) => x as tf.Tensor4D;

before(async () => {
  await selectBackend('wasm', () => {}, { threads: 1 }); // also puts our cpu kernels in place
});

const resizeOps: Array<{ name: string; input: Input; f: (x: tf.Tensor) => tf.Tensor }> = [
  { name: 'resizeNearestNeighbor x2 (FPN top-down)', input: r([2, 3, 4, 2], 'c'), f: (x) => tf.image.resizeNearestNeighbor(t4(x), [6, 8]) },
  { name: 'resizeNearestNeighbor to 5x7', input: r([2, 3, 4, 2], 'c2'), f: (x) => tf.image.resizeNearestNeighbor(t4(x), [5, 7]) },
  { name: 'resizeNearestNeighbor align corners', input: r([1, 3, 4, 2], 'c3'), f: (x) => tf.image.resizeNearestNeighbor(t4(x), [5, 7], true) },
  { name: 'resizeNearestNeighbor half-pixel', input: r([2, 3, 4, 1], 'c4'), f: (x) => tf.image.resizeNearestNeighbor(t4(x), [7, 5], false, true) },
  { name: 'resizeBilinear to 7x9', input: r([2, 4, 5, 2], 'd'), f: (x) => tf.image.resizeBilinear(t4(x), [7, 9]) },
  { name: 'resizeBilinear align corners', input: r([1, 4, 5, 2], 'd1'), f: (x) => tf.image.resizeBilinear(t4(x), [7, 9], true) },
  { name: 'resizeBilinear half-pixel', input: r([2, 4, 5, 2], 'd2'), f: (x) => tf.image.resizeBilinear(t4(x), [8, 10], false, true) },
];

for (const backend of ['wasm', 'cpu']) {
  test(`resize gradients on ${backend} equal the transpose of the forward resize, for batches and non-square images`, () => {
    const failures: string[] = [];
    for (const op of resizeOps) {
      try {
        assertAllClose(gradientsOn(backend, [op.input], op.f), linearOpGradient(backend, op.input, op.f), tolerance, op.name);
      } catch (error) {
        failures.push(`${op.name}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failures, []);
  });
}
