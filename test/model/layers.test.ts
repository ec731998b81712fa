import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { batchNorm, conv2d, conv2dTranspose, dense, linear, upsample2x } from '../../stages/model/layers.js';

before(async () => {
  await tf.setBackend('cpu');
});

function close(actual: ArrayLike<number>, expected: number[], tolerance = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('a 1x1 conv with known weights mixes channels per pixel and adds the bias', () => {
  const store = new ParameterStore(1);
  const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 1, 2]); // two pixels, channels (1,2) and (3,4)
  conv2d(store, 'c', x, { filters: 1, kernelSize: 1 });
  store.assign('c/kernel', tf.tensor4d([10, 100], [1, 1, 2, 1]));
  store.assign('c/bias', tf.tensor1d([0.5]));
  const y = conv2d(store, 'c', x, { filters: 1, kernelSize: 1 });
  assert.deepEqual(y.shape, [1, 2, 1, 1]);
  close(y.dataSync(), [210.5, 430.5]);
  const relu = conv2d(store, 'c', x.neg() as tf.Tensor4D, { filters: 1, kernelSize: 1, activation: 'relu' });
  close(relu.dataSync(), [0, 0]);
  store.dispose();
});

test('conv2d padding and strides give the Keras output sizes', () => {
  const store = new ParameterStore(1);
  const x = tf.zeros([2, 9, 9, 3]) as tf.Tensor4D;
  assert.deepEqual(conv2d(store, 'a', x, { filters: 4, kernelSize: 3, strides: 2 }).shape, [2, 5, 5, 4]);
  assert.deepEqual(conv2d(store, 'b', x, { filters: 4, kernelSize: 3, padding: 'valid' }).shape, [2, 7, 7, 4]);
  conv2d(store, 'n', x, { filters: 4, kernelSize: 1, useBias: false });
  assert.deepEqual(store.names(), ['a/bias', 'a/kernel', 'b/bias', 'b/kernel', 'n/kernel']);
  store.dispose();
});

test('frozen batch norm uses the moving statistics and leaves them unchanged', () => {
  const store = new ParameterStore(1);
  const x = tf.tensor4d([1, 3, 5, 7], [1, 2, 2, 1]);
  batchNorm(store, 'bn', x, { training: false });
  store.assign('bn/moving_mean', tf.tensor1d([1]));
  store.assign('bn/moving_variance', tf.tensor1d([4 - 1e-3])); // sqrt(var + eps) = 2
  store.assign('bn/gamma', tf.tensor1d([3]));
  store.assign('bn/beta', tf.tensor1d([1]));
  const y = batchNorm(store, 'bn', x, { training: false });
  close(y.dataSync(), [1, 4, 7, 10]); // 3 * (x - 1) / 2 + 1
  close(store.get('bn/moving_mean')!.dataSync(), [1]);
  store.dispose();
});

test('training batch norm normalises with batch statistics and moves the moving averages', () => {
  const store = new ParameterStore(1);
  const x = tf.tensor4d([1, 3, 5, 7], [1, 2, 2, 1]); // mean 4, biased variance 5, unbiased 20/3
  const y = batchNorm(store, 'bn', x, { training: true, momentum: 0.9, epsilon: 0 });
  const s = Math.sqrt(5);
  close(y.dataSync(), [-3 / s, -1 / s, 1 / s, 3 / s]);
  close(store.get('bn/moving_mean')!.dataSync(), [0.4]);
  close(store.get('bn/moving_variance')!.dataSync(), [0.9 + 0.1 * (20 / 3)]);
  store.dispose();
});

test('batch norm gamma and beta get gradients in training and frozen modes', () => {
  for (const training of [true, false]) {
    const store = new ParameterStore(1);
    const x = tf.tensor2d([1, 2, 3, 5], [2, 2]);
    batchNorm(store, 'bn', x, { training });
    const gamma = store.get('bn/gamma')!;
    const beta = store.get('bn/beta')!;
    const { grads } = tf.variableGrads(() => batchNorm(store, 'bn', x, { training }).mul(tf.tensor2d([1, 2, 3, 4], [2, 2])).sum() as tf.Scalar, [gamma, beta]);
    close(grads[beta.name]!.dataSync(), [4, 6]);
    assert.ok(grads[gamma.name]!.dataSync().every((v) => Number.isFinite(v) && v !== 0), `training=${training}`);
    store.dispose();
  }
});

test('dense multiplies by the kernel and adds the bias', () => {
  const store = new ParameterStore(1);
  const x = tf.tensor2d([1, 2], [1, 2]);
  dense(store, 'fc', x, { units: 3 });
  store.assign('fc/kernel', tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]));
  store.assign('fc/bias', tf.tensor1d([1, 1, 1]));
  close(dense(store, 'fc', x, { units: 3 }).dataSync(), [10, 13, 16]);
  store.dispose();
});

test('a 2x2 stride-2 transposed conv doubles the size and paints each input pixel as a kernel-weighted 2x2 block', () => {
  const store = new ParameterStore(1);
  const x = tf.tensor4d([1, 2], [1, 1, 2, 1]);
  conv2dTranspose(store, 'up', x, { filters: 1, kernelSize: 2, strides: 2 });
  assert.deepEqual(store.get('up/kernel')!.shape, [2, 2, 1, 1]); // Keras layout [k, k, out, in]
  store.assign('up/kernel', tf.tensor4d([1, 2, 3, 4], [2, 2, 1, 1]));
  store.assign('up/bias', tf.tensor1d([0.5]));
  const y = conv2dTranspose(store, 'up', x, { filters: 1, kernelSize: 2, strides: 2 });
  assert.deepEqual(y.shape, [1, 2, 4, 1]);
  close(y.dataSync(), [1.5, 2.5, 2.5, 4.5, 3.5, 4.5, 6.5, 8.5]);
  const big = conv2dTranspose(store, 'mask', tf.zeros([3, 14, 14, 8]) as tf.Tensor4D, { filters: 5, kernelSize: 2, strides: 2 });
  assert.deepEqual(big.shape, [3, 28, 28, 5]);
  store.dispose();
});

test('upsample2x repeats each pixel into a 2x2 block and its gradient sums the block', () => {
  const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  const y = upsample2x(x);
  assert.deepEqual(y.shape, [1, 4, 4, 1]);
  close(y.dataSync(), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  const weights = tf.range(0, 16).reshape([1, 4, 4, 1]);
  const grad = tf.grad((input: tf.Tensor) => upsample2x(input as tf.Tensor4D).mul(weights).sum())(x);
  close(grad.dataSync(), [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]);
});

test('linear has the same value and gradients as tfjs matMul + bias', () => {
  const x = tf.randomNormal([5, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
  const w = tf.randomNormal([3, 4], 0, 1, 'float32', 2) as tf.Tensor2D;
  const b = tf.randomNormal([4], 0, 1, 'float32', 3) as tf.Tensor1D;
  const dy = tf.randomNormal([5, 4], 0, 1, 'float32', 4);
  const ours = tf.grads((a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => linear(a as tf.Tensor2D, k as tf.Tensor2D, c as tf.Tensor1D).mul(dy).sum())([x, w, b]);
  const theirs = tf.grads((a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => tf.matMul(a, k).add(c).mul(dy).sum())([x, w, b]);
  ours.forEach((g, i) => close(g.dataSync(), Array.from(theirs[i]!.dataSync())));
  close(linear(x, w).dataSync(), Array.from(tf.matMul(x, w).dataSync()));
  const noBias = tf.grads((a: tf.Tensor, k: tf.Tensor) => linear(a as tf.Tensor2D, k as tf.Tensor2D).mul(dy).sum())([x, w]);
  close(noBias[1]!.dataSync(), Array.from(theirs[1]!.dataSync()));
});

test('the block path of conv2dTranspose (kernel = stride) equals tf.conv2dTranspose, values and gradients', () => {
  const store = new ParameterStore(1);
  const x = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = conv2dTranspose(store, 'up', x, { filters: 6, kernelSize: 2, strides: 2 });
  store.assign('up/bias', tf.randomNormal([6], 0, 1, 'float32', 2));
  const kernel = store.get('up/kernel')! as tf.Tensor4D;
  const bias = store.get('up/bias')!;
  const dy = tf.randomNormal([2, 6, 8, 6], 0, 1, 'float32', 3);
  const reference = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => tf.conv2dTranspose(a as tf.Tensor4D, k as tf.Tensor4D, [2, 6, 8, 6], 2, 'valid').add(b);
  assert.deepEqual(y.shape, [2, 6, 8, 6]);
  close(conv2dTranspose(store, 'up', x, { filters: 6, kernelSize: 2, strides: 2 }).dataSync(), Array.from(reference(x, kernel, bias).dataSync()));
  const ours = tf.grads((a: tf.Tensor) => conv2dTranspose(store, 'up', a as tf.Tensor4D, { filters: 6, kernelSize: 2, strides: 2 }).mul(dy).sum())([x]);
  const { grads } = tf.variableGrads(() => conv2dTranspose(store, 'up', x, { filters: 6, kernelSize: 2, strides: 2 }).mul(dy).sum() as tf.Scalar, [kernel as unknown as tf.Variable]);
  const theirs = tf.grads((a: tf.Tensor, k: tf.Tensor) => reference(a, k, bias).mul(dy).sum())([x, kernel]);
  close(ours[0]!.dataSync(), Array.from(theirs[0]!.dataSync()), 1e-4);
  close(grads[(kernel as unknown as tf.Variable).name]!.dataSync(), Array.from(theirs[1]!.dataSync()), 1e-4);
  store.dispose();
});

test('conv2d with constantInput gives the fused conv\'s output and gradients (weights, bias and, when asked, input)', () => {
  const store = new ParameterStore(3);
  const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  const options = { filters: 4, kernelSize: 3, strides: 2, padding: 'valid' as const, activation: 'relu' as const };
  const run = (constantInput: boolean) => {
    const loss = (input: tf.Tensor) => conv2d(store, 'c', input as tf.Tensor4D, { ...options, constantInput }).square().sum() as tf.Scalar;
    const [kernel, bias] = store.trainableVariables() as [tf.Variable, tf.Variable];
    const { value, grads } = tf.variableGrads(() => loss(x), [kernel, bias]);
    const dx = tf.grad(loss)(x);
    return { value: value.dataSync()[0]!, kernel: grads[kernel.name]!.dataSync(), bias: grads[bias.name]!.dataSync(), dx: dx.dataSync() };
  };
  conv2d(store, 'c', x, options); // creates the variables
  const fused = run(false);
  const plain = run(true);
  assert.ok(Math.abs(plain.value - fused.value) <= 1e-5 * Math.abs(fused.value));
  close(plain.kernel, Array.from(fused.kernel), 1e-4);
  close(plain.bias, Array.from(fused.bias), 1e-4);
  close(plain.dx, Array.from(fused.dx), 1e-4);
});
