// Every op the Mask R-CNN uses, differentiated on wasm (with our kernels registered) and compared with cpu:
// a missing kernel shows up here as "kernel X not registered for backend wasm", a wrong one as a mismatch.
// This is the list that decided which kernels stages/model/kernels/wasm/ provides. (Not here: stridedSlice,
// which has no gradient in tfjs on any backend — the model slices with tf.slice; and the resize ops, whose
// cpu gradients are wrong: resize-gradients.test.ts checks them against the forward pass instead.)
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../stages/model/backend.js';
import { assertAllClose, gradientsOn, intInput, randomInput, runOn, type Input } from './compare-backends.js';

const tolerance = 1e-5;

before(async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
});

interface OpCase {
  name: string;
  inputs: Input[];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

const r = randomInput;
const t4 = (x: tf.Tensor) => x as tf.Tensor4D;
const t2 = (x: tf.Tensor) => x as tf.Tensor2D;
/** A copy outside the gradient tape (targets and masks are constants in the model too). */
const constant = (x: tf.Tensor) => tf.tensor(x.dataSync(), x.shape, x.dtype);

/** The differentiable ops of backbone, FPN, RPN, ROI Align, heads and losses. */
const differentiableOps: OpCase[] = [
  { name: 'maxPool 3x3/2 same (ResNet stem)', inputs: [r([2, 9, 9, 3], 'a')], f: (x) => tf.maxPool(t4(x), 3, 2, 'same') },
  { name: 'maxPool 1x1/2 valid (FPN p6)', inputs: [r([2, 8, 8, 3], 'b')], f: (x) => tf.maxPool(t4(x), 1, 2, 'valid') },
  { name: 'maxPool 1x1/2 same', inputs: [r([2, 7, 7, 3], 'b2')], f: (x) => tf.maxPool(t4(x), 1, 2, 'same') },
  {
    name: 'batchNorm (frozen statistics)', inputs: [r([2, 4, 4, 3], 'e'), r([3], 'e1'), r([3], 'e2'), r([3], 'e3')],
    f: (x, m, g, b) => tf.batchNorm(x, m, tf.add(tf.square(m), 1), b, g, 1e-3),
  },
  {
    name: 'batchNorm (training: moments of the batch)', inputs: [r([2, 4, 4, 3], 'f'), r([3], 'f1'), r([3], 'f2')],
    f: (x, g, b) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, b, g, 1e-3);
    },
  },
  { name: 'relu', inputs: [r([3, 5], 'g')], f: (x) => tf.relu(x) },
  { name: 'sigmoid', inputs: [r([3, 5], 'h')], f: (x) => tf.sigmoid(x) },
  { name: 'softmax', inputs: [r([4, 3], 'i')], f: (x) => tf.softmax(x) },
  { name: 'logSoftmax', inputs: [r([4, 3], 'j')], f: (x) => tf.logSoftmax(x) },
  { name: 'sigmoid cross-entropy (mask loss)', inputs: [r([2, 6, 6], 'k')], f: (x) => tf.losses.sigmoidCrossEntropy(constant(tf.greater(x, 0.3)).toFloat(), x, undefined, tf.Reduction.NONE) },
  {
    name: 'softmax cross-entropy (class loss)', inputs: [r([5, 3], 'l')],
    f: (x) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 2, 1, 1, 0], 'int32'), 3), x, undefined, 0, tf.Reduction.NONE),
  },
  { name: 'gather axis 0 (UnsortedSegmentSum)', inputs: [r([6, 3], 'm'), intInput([5], [0, 2, 2, 5, 0])], f: (x, i) => tf.gather(x, i) },
  { name: 'gather axis 1', inputs: [r([3, 6, 2], 'n'), intInput([4], [1, 1, 5, 0])], f: (x, i) => tf.gather(x, i, 1) },
  { name: 'gather 2-D indices', inputs: [r([7, 4], 'n2'), intInput([2, 3], [0, 6, 6, 1, 2, 0])], f: (x, i) => tf.gather(x, i) },
  { name: 'concat', inputs: [r([2, 3], 'o'), r([2, 2], 'p')], f: (a, b) => tf.concat([a, b], 1) },
  { name: 'slice', inputs: [r([4, 5, 3], 'q')], f: (x) => tf.slice(x, [1, 0, 1], [2, 4, 2]) },
  { name: 'pad', inputs: [r([2, 3, 3, 2], 't')], f: (x) => tf.pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]]) },
  { name: 'reshape + transpose', inputs: [r([2, 3, 4], 'u')], f: (x) => tf.transpose(tf.reshape(x, [6, 4]), [1, 0]) },
  { name: 'matMul', inputs: [r([4, 5], 'v'), r([5, 3], 'w')], f: (a, b) => tf.matMul(t2(a), t2(b)) },
  { name: 'matMul transposed', inputs: [r([5, 4], 'v2'), r([3, 5], 'w2')], f: (a, b) => tf.matMul(t2(a), t2(b), true, true) },
  { name: 'batched matMul', inputs: [r([2, 4, 5], 'v3'), r([2, 5, 3], 'w3')], f: (a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D) },
  { name: 'mean and sum', inputs: [r([3, 4, 5], 'x')], f: (x) => tf.add(tf.mean(x, [1, 2]), tf.sum(x, 0).sum(1).slice(0, 3)) },
  {
    name: 'smooth L1 (abs, less, where, square)', inputs: [r([6, 4], 'y'), r([6, 4], 'z')],
    f: (a, b) => {
      const diff = tf.abs(tf.sub(a, b));
      // the branch condition is a constant, as in the model (tfjs has no gradient for Less)
      return tf.where(constant(tf.less(diff, 1)), tf.mul(0.5, tf.square(diff)), tf.sub(diff, 0.5));
    },
  },
  { name: 'clipByValue', inputs: [r([4, 4], 'aa')], f: (x) => tf.clipByValue(x, -0.5, 0.7) },
  { name: 'exp, log, sqrt, div', inputs: [r([3, 4], 'bb')], f: (x) => tf.div(tf.log(tf.add(tf.exp(x), 1)), tf.sqrt(tf.add(tf.square(x), 1))) },
  { name: 'maximum, minimum (box clipping)', inputs: [r([5, 4], 'cc')], f: (x) => tf.minimum(tf.maximum(x, -0.2), 0.9) },
  { name: 'stack, unstack, tile, expandDims', inputs: [r([3, 4], 'dd')], f: (x) => tf.tile(tf.expandDims(tf.stack(tf.unstack(x, 1), 0), 0), [2, 1, 1]) },
  { name: 'broadcast add/mul (bias, anchors)', inputs: [r([2, 3, 4], 'ee'), r([4], 'ff')], f: (a, b) => tf.mul(tf.add(a, b), b) },
  { name: 'square difference / l2 (weight decay)', inputs: [r([3, 3, 2, 2], 'gg')], f: (x) => tf.mul(tf.sum(tf.square(x)), 1e-4) },
  { name: 'log (box coder dh, dw)', inputs: [r([4, 2], 'hh')], f: (x) => tf.log(tf.add(tf.abs(x), 0.1)) },
];

test('every differentiable op the model uses has a gradient on wasm that matches cpu', () => {
  const failures: string[] = [];
  for (const op of differentiableOps) {
    try {
      assertAllClose(gradientsOn('wasm', op.inputs, op.f), gradientsOn('cpu', op.inputs, op.f), tolerance, op.name);
    } catch (error) {
      failures.push(`${op.name}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('the forward-only ops (cropAndResize, nonMaxSuppression, topk) run on wasm and match cpu', async () => {
  const image = r([2, 10, 12, 3], 'img');
  const boxes = { shape: [3, 4], values: Float32Array.from([0.1, 0.1, 0.6, 0.7, 0, 0.2, 1, 0.9, 0.3, 0.3, 0.5, 0.45]), dtype: 'float32' as const };
  const boxIndices = intInput([3], [0, 1, 1]);
  const crop = (x: tf.Tensor, b: tf.Tensor, i: tf.Tensor) => tf.image.cropAndResize(t4(x), t2(b), i as tf.Tensor1D, [7, 7]);
  assertAllClose(runOn('wasm', [image, boxes, boxIndices], crop), runOn('cpu', [image, boxes, boxIndices], crop), tolerance, 'cropAndResize');

  const nmsBoxes = { shape: [4, 4], values: Float32Array.from([0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 9, 10]), dtype: 'float32' as const };
  const scores = { shape: [4], values: Float32Array.from([0.9, 0.8, 0.7, 0.95]), dtype: 'float32' as const };
  const nms = (b: tf.Tensor, s: tf.Tensor) => tf.image.nonMaxSuppression(t2(b), s as tf.Tensor1D, 3, 0.5, 0.1);
  assert.deepEqual(runOn('wasm', [nmsBoxes, scores], nms), runOn('cpu', [nmsBoxes, scores], nms));
  tf.setBackend('wasm');
  const asyncPicked = await tf.image.nonMaxSuppressionAsync(tf.tensor2d(nmsBoxes.values, [4, 4]), tf.tensor1d(scores.values), 3, 0.5);
  assert.deepEqual(Array.from(await asyncPicked.data()), [3, 2]);

  const topk = (x: tf.Tensor) => {
    const { values, indices } = tf.topk(x, 3);
    return tf.concat([values, tf.cast(indices, 'float32')], 1);
  };
  const logits = r([2, 9], 'topk');
  assertAllClose(runOn('wasm', [logits], topk), runOn('cpu', [logits], topk), 0, 'topk');
});
