import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { boxRegressionLoss, maskLoss, sigmoidCrossEntropy, smoothL1, softmaxCrossEntropy, weightDecayLoss } from '../../stages/model/losses.js';

await tf.setBackend('cpu');
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-5, `${a} vs ${b}`);

test('softmax cross-entropy matches hand computation and is zero for no samples', () => {
  const logits = tf.tensor2d([0, 0, 2, 0], [2, 2]);
  const expected = (Math.log(2) + Math.log(1 + Math.exp(-2))) / 2;
  close(softmaxCrossEntropy(logits, new Int32Array([1, 0])).dataSync()[0]!, expected);
  assert.equal(softmaxCrossEntropy(tf.zeros([0, 2]) as tf.Tensor2D, new Int32Array(0)).dataSync()[0], 0);
});

test('smooth-L1 is quadratic below 1 and linear above', () => {
  close(smoothL1(tf.tensor1d([0.5, 3, 0, 0]), tf.tensor1d([0, 0, 0, 0])).dataSync()[0]!, (0.125 + 2.5) / 4);
});

test('binary cross-entropy on logits is stable for large logits', () => {
  close(sigmoidCrossEntropy(tf.tensor1d([0]), tf.tensor1d([1])).dataSync()[0]!, Math.log(2));
  close(sigmoidCrossEntropy(tf.tensor1d([100, -100]), tf.tensor1d([1, 0])).dataSync()[0]!, 0);
  assert.ok(Number.isFinite(sigmoidCrossEntropy(tf.tensor1d([-100]), tf.tensor1d([1])).dataSync()[0]!));
});

test('the box loss uses only the deltas of each ROI class', () => {
  // 1 ROI, 2 classes: class 0 deltas are wildly wrong but must be ignored.
  const deltas = tf.tensor3d([9, 9, 9, 9, 0.5, 0, 0, 0], [1, 2, 4]);
  close(boxRegressionLoss(deltas, new Int32Array([1]), new Float32Array([0, 0, 0, 0])).dataSync()[0]!, 0.125 / 4);
});

test('empty ground truth gives zero box and mask losses, not NaN, and no gradient trouble', () => {
  const w = tf.variable(tf.ones([3]));
  const { value, grads } = tf.variableGrads(() => {
    const box = boxRegressionLoss(tf.zeros([0, 2, 4]) as tf.Tensor3D, new Int32Array(0), new Float32Array(0));
    const mask = maskLoss(tf.zeros([0, 4, 4, 2]) as tf.Tensor4D, new Int32Array(0), new Float32Array(0));
    return box.add(mask).add(w.sum().mul(0)) as tf.Scalar;
  }, [w]);
  assert.equal(value.dataSync()[0], 0);
  assert.deepEqual(Array.from(grads[w.name]!.dataSync()), [0, 0, 0]);
});

test('the mask loss reads the channel of each ROI class', () => {
  // 1 ROI, 2x2 mask, 2 classes: class-1 channel logits are +100 where the target is 1, -100 elsewhere.
  const logits = tf.tensor4d([5, 100, 5, -100, 5, -100, 5, 100], [1, 2, 2, 2]);
  close(maskLoss(logits, new Int32Array([1]), new Float32Array([1, 0, 0, 1])).dataSync()[0]!, 0);
});

test('weight decay is the decay times the sum of each weight mean square', () => {
  const a = tf.variable(tf.tensor1d([1, 3]));
  const b = tf.variable(tf.tensor1d([2]));
  close(weightDecayLoss([a, b], 1e-4).dataSync()[0]!, 1e-4 * (5 + 4));
});

test('the weight decay gradient is 2 * decay * w / size(w) for every weight', () => {
  const a = tf.variable(tf.tensor2d([[1, -2], [3, 0.5]]));
  const b = tf.variable(tf.tensor1d([4, -1, 2]));
  const { grads } = tf.variableGrads(() => weightDecayLoss([a, b], 1e-2), [a, b]);
  const expectA = [1, -2, 3, 0.5].map((v) => (2 * 1e-2 * v) / 4);
  const expectB = [4, -1, 2].map((v) => (2 * 1e-2 * v) / 3);
  grads[a.name]!.dataSync().forEach((g, i) => close(g, expectA[i]!));
  grads[b.name]!.dataSync().forEach((g, i) => close(g, expectB[i]!));
});
