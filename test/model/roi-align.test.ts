import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { loadRoiBlend } from '../../stages/model/kernels/native/roi-blend.js';
import { cropAndResizeDifferentiable, gatherLimits, roiAlign, roiLevels } from '../../stages/model/roi-align.js';

before(async () => {
  await tf.setBackend('cpu');
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]!);
}

// Boxes inside, partly outside (extrapolated samples), tiny, flipped and exactly on the border of the image.
const boxes = tf.tensor2d(
  [
    [0.1, 0.2, 0.6, 0.9],
    [-0.2, 0.5, 0.4, 1.3],
    [0.3, 0.3, 0.31, 0.32],
    [0.8, 0.7, 0.2, 0.1],
    [0, 0, 1, 1],
    [0.5, 0.25, 1, 0.75],
    [0.05, 0.6, 0.27, 0.82],
  ],
  [7, 4],
);
const boxIndex = tf.tensor1d([0, 1, 1, 0, 1, 0, 1], 'int32');

const implementations = ['gather', 'js'] as const;

test('forward pass equals tf.image.cropAndResize for square, non-square and 1x1 crops (both implementations)', () => {
  const image = tf.randomNormal([2, 9, 13, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  for (const implementation of implementations) {
    for (const size of [[7, 7], [14, 5], [1, 1], [1, 4]] as [number, number][]) {
      const ours = cropAndResizeDifferentiable(image, boxes, boxIndex, size, implementation);
      const reference = tf.image.cropAndResize(image, boxes, boxIndex, size, 'bilinear', 0);
      assert.ok(maxAbsDiff(ours, reference) < 1e-5, `${implementation}: crop ${size}`);
    }
  }
});

test('levels follow PyramidROIAlign: 224 pixels of a 224-pixel-area image is level 4, halving the side goes one level down', () => {
  const side = (pixels: number, image: number) => pixels / image;
  const box = (s: number) => [0, 0, s, s];
  const levels = roiLevels([...box(side(224, 512)), ...box(side(448, 512)), ...box(side(112, 512)), ...box(side(56, 512)), ...box(side(20, 512)), ...box(1), 0, 0, 0, 0], [512, 512]);
  assert.deepEqual(Array.from(levels), [4, 5, 3, 2, 2, 5, 2]);
  // log2 exactly -0.5 rounds half to even (to 0): level 4.
  assert.deepEqual(Array.from(roiLevels(box(side(224 * Math.SQRT1_2, 512)), [512, 512])), [4]);
});

const pyramid = (channels: number) =>
  [32, 16, 8, 4].map((s, i) => tf.randomNormal([2, s, s, channels], 0, 1, 'float32', 10 + i) as tf.Tensor4D);

test('roiAlign pools each box from its level and keeps the input order (both implementations)', () => {
  const maps = pyramid(3);
  const imageSize: [number, number] = [512, 512];
  const levels = roiLevels(boxes.dataSync(), imageSize);
  assert.equal(new Set(levels).size, 4, `test boxes should span all four levels, got ${levels}`);
  for (const implementation of implementations) {
    const pooled = roiAlign(maps, boxes, boxIndex, 7, imageSize, implementation);
    assert.deepEqual(pooled.shape, [7, 7, 7, 3]);
    for (let i = 0; i < 7; i++) {
      const one = tf.image.cropAndResize(maps[levels[i]! - 2]!, boxes.slice([i, 0], [1, 4]), boxIndex.slice([i], [1]), [7, 7], 'bilinear', 0);
      assert.ok(maxAbsDiff(pooled.slice([i, 0, 0, 0], [1, 7, 7, 3]), one) < 1e-5, `${implementation}: box ${i} (level ${levels[i]})`);
    }
  }
});

for (const implementation of implementations) {
test(`roiAlign gradients w.r.t. every feature map match finite differences (${implementation})`, () => {
  const maps = pyramid(2);
  const imageSize: [number, number] = [512, 512];
  const weights = tf.randomNormal([7, 4, 4, 2], 0, 1, 'float32', 99);
  const loss = (ms: tf.Tensor4D[]) => roiAlign(ms, boxes, boxIndex, 4, imageSize, implementation).mul(weights).sum() as tf.Scalar;
  const grads = tf.grads((...ms: tf.Tensor[]) => loss(ms as tf.Tensor4D[]))(maps);
  const eps = 1e-2;
  let checked = 0;
  for (let level = 0; level < 4; level++) {
    const map = maps[level]!;
    const values = map.dataSync();
    const grad = grads[level]!.dataSync();
    // Entries with the largest gradients plus a few with none, so both used and unused pixels are checked.
    const order = Array.from(grad.keys()).sort((a, b) => Math.abs(grad[b]!) - Math.abs(grad[a]!));
    for (const index of [...order.slice(0, 4), ...order.slice(-2)]) {
      const shifted = (delta: number) => {
        const copy = values.slice();
        copy[index] = copy[index]! + delta;
        const ms = maps.slice();
        ms[level] = tf.tensor4d(copy, map.shape);
        return loss(ms).dataSync()[0]!;
      };
      const numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
      assert.ok(Math.abs(numeric - grad[index]!) < 2e-3, `p${level + 2}[${index}]: analytic ${grad[index]} vs numeric ${numeric}`);
      checked++;
    }
  }
  assert.equal(checked, 24);
  assert.ok(grads.some((g) => g.abs().max().dataSync()[0]! > 0));
});
}

test('both implementations give the same gradients, also when a level has no box', () => {
  const maps = pyramid(3);
  const few = boxes.slice([0, 0], [3, 4]) as tf.Tensor2D; // levels 4, 5, 2: p3 unused
  const index = boxIndex.slice([0], [3]) as tf.Tensor1D;
  const weights = tf.randomNormal([3, 5, 5, 3], 0, 1, 'float32', 7);
  const gradsOf = (implementation: 'gather' | 'js') =>
    // (+ 0 * sum(p3): tf.grads refuses an input the result does not depend on)
    tf.grads((...ms: tf.Tensor[]) => roiAlign(ms as tf.Tensor4D[], few, index, 5, [512, 512], implementation).mul(weights).sum().add(ms[1]!.sum().mul(0)))(maps);
  const a = gradsOf('gather');
  const b = gradsOf('js');
  for (let level = 0; level < 4; level++) assert.ok(maxAbsDiff(a[level]!, b[level]!) < 1e-5, `p${level + 2}`);
  assert.equal(b[1]!.abs().max().dataSync()[0], 0);
  assert.ok(b[0]!.abs().max().dataSync()[0]! > 0);
});

test('the gather implementation in chunks of samples gives the unchunked values and gradients', () => {
  const maps = pyramid(3);
  const weights = tf.randomNormal([7, 5, 5, 3], 0, 1, 'float32', 8);
  const run = () => tf.grads((...ms: tf.Tensor[]) => roiAlign(ms as tf.Tensor4D[], boxes, boxIndex, 5, [512, 512], 'gather').mul(weights).sum())(maps);
  const values = () => roiAlign(maps, boxes, boxIndex, 5, [512, 512], 'gather');
  const whole = { grads: run(), values: values() };
  const saved = gatherLimits.maxElements;
  gatherLimits.maxElements = 4 * 3 * 7; // 7 samples (of 25 per box) per chunk: chunks end mid-box
  try {
    const chunked = { grads: run(), values: values() };
    assert.ok(maxAbsDiff(chunked.values, whole.values) === 0, 'values');
    for (let level = 0; level < 4; level++) assert.ok(maxAbsDiff(chunked.grads[level]!, whole.grads[level]!) < 1e-6, `p${level + 2}`);
  } finally {
    gatherLimits.maxElements = saved;
  }
});

test('no boxes give an empty [0, P, P, C] result', () => {
  const pooled = roiAlign(pyramid(5), tf.zeros([0, 4]) as tf.Tensor2D, tf.zeros([0], 'int32') as tf.Tensor1D, 14, [512, 512]);
  assert.deepEqual(pooled.shape, [0, 14, 14, 5]);
});

test('a batch index outside the batch or a non-finite box is an error naming the box', () => {
  const maps = pyramid(1);
  assert.throws(() => roiAlign(maps, boxes, tf.tensor1d([0, 1, 2, 0, 0, 0, 0], 'int32'), 7, [512, 512]), /box 2 has batch index 2, outside 0..1/);
  const bad = tf.tensor2d([0, 0, NaN, 1], [1, 4]);
  assert.throws(() => roiAlign(maps, bad, tf.tensor1d([0], 'int32'), 7, [512, 512]), /box 0 has a non-finite coordinate/);
});

test('the C blend (kernels/native/roi-blend.c) gives the JavaScript loops\' values to the bit, forward and gradients', { skip: loadRoiBlend() ? false : 'the roi-blend addon cannot be built here (no C compiler or Node headers), or RUNNER_NATIVE_KERNELS=off' }, () => {
  const maps = ([[1, 16, 16, 5], [1, 8, 8, 5], [1, 4, 4, 5], [1, 2, 2, 5]] as const).map((shape, i) => tf.randomNormal([...shape], 0, 1, 'float32', i + 1) as tf.Tensor4D);
  const boxes = tf.tensor2d([0.1, 0.1, 0.6, 0.7, 0, 0, 1, 1, 0.3, 0.2, 0.35, 0.9, -0.2, 0.5, 0.4, 1.3], [4, 4]);
  const index = tf.tensor1d([0, 0, 0, 0], 'int32');
  const weights = tf.randomNormal([4, 6, 6, 5], 0, 1, 'float32', 9);
  const run = () => {
    const pooled = roiAlign(maps, boxes, index, 6, [64, 64], 'js');
    const grads = tf.grads((...ms: tf.Tensor[]) => roiAlign(ms as tf.Tensor4D[], boxes, index, 6, [64, 64], 'js').mul(weights).sum())(maps);
    return [pooled, ...grads].map((t) => Array.from(t.dataSync()));
  };
  const native = run();
  const previous = process.env['RUNNER_NATIVE_KERNELS'];
  process.env['RUNNER_NATIVE_KERNELS'] = 'off';
  try {
    assert.deepEqual(native, run());
  } finally {
    if (previous === undefined) delete process.env['RUNNER_NATIVE_KERNELS'];
    else process.env['RUNNER_NATIVE_KERNELS'] = previous;
  }
});
