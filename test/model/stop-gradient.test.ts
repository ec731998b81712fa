import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { stopGradient } from '../../stages/model/stop-gradient.js';

await tf.setBackend('cpu');

test('stopGradient passes values through and blocks the gradient', () => {
  const x = tf.tensor1d([1, 2, 3]);
  assert.deepEqual(Array.from(stopGradient(x).dataSync()), [1, 2, 3]);
  const g = tf.grad((v: tf.Tensor) => v.mul(stopGradient(v.square())).sum())(x);
  // d/dv [v * stop(v^2)] = stop(v^2) = v^2 (the v^2 path contributes nothing).
  assert.deepEqual(Array.from(g.dataSync()), [1, 4, 9]);
});
