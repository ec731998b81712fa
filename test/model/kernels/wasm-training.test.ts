// UnsortedSegmentSum on wasm, and the end-to-end check: a tiny conv net's variable gradients (conv, BN,
// relu, maxpool, nearest upsampling, deconv, gather, losses) on wasm equal those on cpu.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../stages/model/backend.js';
import { assertAllClose, intInput, randomInput, runOn } from './compare-backends.js';

before(async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
});

test('unsortedSegmentSum on wasm sums rows into their segments and drops out-of-range ids, like cpu', () => {
  const x = randomInput([6, 2, 3], 'seg');
  const ids = intInput([6], [2, 0, 2, -1, 4, 0]);
  const f = (xt: tf.Tensor, it: tf.Tensor) => tf.unsortedSegmentSum(xt, it as tf.Tensor1D, 4);
  const [wasm] = runOn('wasm', [x, ids], f);
  assertAllClose([wasm as Float32Array], runOn('cpu', [x, ids], f), 1e-6, 'unsortedSegmentSum');
  // segment 3 received nothing; id 4 is out of range for 4 segments and id -1 is negative
  assert.deepEqual(Array.from((wasm as Float32Array).slice(18, 24)), [0, 0, 0, 0, 0, 0]);
});

test('int32 unsortedSegmentSum on wasm is exact', () => {
  const x = intInput([5], [1, 2, 3, 4, 5]);
  const ids = intInput([5], [1, 1, 0, 2, 1]);
  const [sums] = runOn('wasm', [x, ids], (xt, it) => tf.unsortedSegmentSum(xt, it as tf.Tensor1D, 3));
  assert.deepEqual(Array.from(sums as Float32Array), [3, 8, 4]);
});

/** A miniature of the model's training graph: every op family, trainable weights in a fixed order. */
function tinyNetLoss(weights: tf.Variable[], image: tf.Tensor4D, targets: tf.Tensor, pick: tf.Tensor1D): tf.Scalar {
  const [stem, bnGamma, bnBeta, body, deconv, head] = weights as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
  let x: tf.Tensor4D = tf.conv2d(image, stem as tf.Tensor4D, 2, 'same'); // [2, 8, 8, 4]
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  x = tf.relu(tf.batchNorm(x, mean, variance, bnBeta, bnGamma, 1e-3)) as tf.Tensor4D;
  x = tf.maxPool(x, 3, 2, 'same'); // [2, 4, 4, 4]
  const c3 = tf.conv2d(x, body as tf.Tensor4D, 1, 'same'); // [2, 4, 4, 6]
  const p = tf.add(tf.image.resizeNearestNeighbor(tf.maxPool(c3, 1, 2, 'valid'), [4, 4]), c3) as tf.Tensor4D; // FPN-like
  const up = tf.relu(tf.conv2dTranspose(p, deconv as tf.Tensor4D, [2, 8, 8, 3], 2, 'valid')); // [2, 8, 8, 3]
  const logits = tf.conv2d(up, head as tf.Tensor4D, 1, 'valid'); // [2, 8, 8, 2]
  const maskLoss = tf.losses.sigmoidCrossEntropy(targets, logits);
  const rows = tf.gather(tf.reshape(logits, [-1, 2]), pick); // [k, 2], ROI-like sampling
  const classLoss = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.zeros([pick.shape[0]], 'int32'), 2), rows);
  return tf.add(maskLoss, classLoss) as tf.Scalar;
}

test('a tiny conv net trained on wasm gets the same variable gradients as on cpu', () => {
  const shapes = [[3, 3, 3, 4], [4], [4], [3, 3, 4, 6], [2, 2, 3, 6], [1, 1, 3, 2]];
  const weightInputs = shapes.map((shape, i) => randomInput(shape, `net${i}`));
  const image = randomInput([2, 16, 16, 3], 'image');
  const targets = randomInput([2, 8, 8, 2], 'targets');
  targets.values = targets.values.map((v) => (v > 0 ? 1 : 0));
  const pick = intInput([5], [0, 17, 17, 100, 127]);
  const gradientsOn = (backend: string) => runOn(backend, [image, targets, pick, ...weightInputs], (img, tgt, idx, ...ws) => {
    const variables = ws.map((w) => tf.variable(w));
    const { value, grads } = tf.variableGrads(() => tinyNetLoss(variables, img as tf.Tensor4D, tgt as tf.Tensor, idx as tf.Tensor1D), variables);
    const out = [value, ...variables.map((v) => grads[v.name] as tf.Tensor)];
    const copies = out.map((t) => tf.clone(t));
    variables.forEach((v) => v.dispose());
    return copies;
  });
  const onWasm = gradientsOn('wasm');
  const onCpu = gradientsOn('cpu');
  assertAllClose(onWasm, onCpu, 1e-5, 'tiny net loss and variable gradients');
  assert.ok(onCpu.slice(1).every((g) => g.some((v) => v !== 0)), 'every variable gets a gradient');
});
