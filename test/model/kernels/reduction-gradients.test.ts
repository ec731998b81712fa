// Our Sum and Mean gradients (stages/model/kernels/reduction-gradients.ts) give exactly the stock values on
// cpu and wasm — same bits, no tolerance — while building no ones tensor on the CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../stages/model/backend.js';
import { registerReductionGradients } from '../../../stages/model/kernels/reduction-gradients.js';
import { randomInput } from './compare-backends.js';

// Captured before any registration of ours (selectBackend registers them).
const stock = [tf.getGradient(tf.Sum)!, tf.getGradient(tf.Mean)!];

const cases: Array<{ name: string; shape: number[]; f: (x: tf.Tensor) => tf.Tensor }> = [
  { name: 'mean over all axes', shape: [2, 3, 4], f: (x) => tf.mean(x) },
  { name: 'mean over batch-norm axes [0, 1, 2]', shape: [2, 5, 3, 4], f: (x) => tf.mean(x, [0, 1, 2]) },
  { name: 'mean over the last axis, keepDims', shape: [3, 7], f: (x) => tf.mean(x, -1, true) },
  { name: 'moments (batch-norm in training mode)', shape: [2, 3, 3, 5], f: (x) => tf.moments(x, [0, 1, 2]).variance },
  { name: 'sum over axis 1', shape: [4, 6, 2], f: (x) => tf.sum(x, 1) },
  { name: 'sum over all axes', shape: [5, 3], f: (x) => tf.sum(x) },
  { name: 'sum over [0, 2], keepDims', shape: [3, 2, 4], f: (x) => tf.sum(x, [0, 2], true) },
];

/** d/dx of sum(f(x) * w) for fixed random w: every element of dx is exercised. */
function gradientOf(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): Float32Array {
  return tf.tidy(() => {
    const w = tf.randomUniform(f(x).shape, -1, 1, 'float32', 7);
    return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), w)))(x).dataSync() as Float32Array;
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`Sum and Mean gradients on ${backend} are bit-identical to the stock ones`, async () => {
    await selectBackend(backend, () => {}, { threads: 1 });
    for (const { name, shape, f } of cases) {
      const x = tf.tensor(randomInput(shape, name).values, shape);
      stock.forEach((config) => tf.registerGradient(config));
      const expected = gradientOf(f, x);
      registerReductionGradients();
      const actual = gradientOf(f, x);
      x.dispose();
      assert.deepEqual(Array.from(actual), Array.from(expected), `${name} on ${backend}`);
    }
  });
}

test('selectBackend puts our Sum and Mean gradients in place', async () => {
  stock.forEach((config) => tf.registerGradient(config));
  await selectBackend('cpu', () => {});
  assert.notEqual(tf.getGradient(tf.Sum), stock[0]);
  assert.notEqual(tf.getGradient(tf.Mean), stock[1]);
});
