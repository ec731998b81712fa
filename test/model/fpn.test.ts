import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { resnetFeatures } from '../../stages/model/backbone.js';
import { fpn } from '../../stages/model/fpn.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('on a 64x64 input the small backbone + FPN gives p2..p6 at strides 4..64 with the FPN width', () => {
  const store = new ParameterStore(1);
  const images = tf.randomNormal([1, 64, 64, 3], 0, 50, 'float32', 1) as tf.Tensor4D;
  const pyramid = fpn(store, resnetFeatures(store, images, 'small', false), 64);
  assert.deepEqual(pyramid.map((p) => p.shape), [
    [1, 16, 16, 64],
    [1, 8, 8, 64],
    [1, 4, 4, 64],
    [1, 2, 2, 64],
    [1, 1, 1, 64],
  ]);
  assert.ok(['fpn_c5p5', 'fpn_c2p2', 'fpn_p2', 'fpn_p5'].every((n) => store.has(`${n}/kernel`)));
  assert.deepEqual(store.get('fpn_p3/kernel')!.shape, [3, 3, 64, 64]);
  store.dispose();
});

test('p6 takes every other pixel of p5 starting at the top-left', () => {
  const store = new ParameterStore(1);
  const images = tf.randomNormal([1, 128, 128, 3], 0, 50, 'float32', 1) as tf.Tensor4D;
  const [, , , p5, p6] = fpn(store, resnetFeatures(store, images, 'small', false), 8);
  const expected = tf.stridedSlice(p5, [0, 0, 0, 0], [1, 4, 4, 8], [1, 2, 2, 1]);
  assert.deepEqual(p6.shape, [1, 2, 2, 8]);
  assert.deepEqual(Array.from(p6.dataSync()), Array.from(expected.dataSync()));
  store.dispose();
});

test('gradients flow from every pyramid level back to c5, and from the pyramid to the first convolution', () => {
  const store = new ParameterStore(1);
  const images = tf.randomNormal([1, 64, 64, 3], 0, 50, 'float32', 1) as tf.Tensor4D;
  const features = resnetFeatures(store, images, 'small', false);
  for (let level = 0; level < 5; level++) {
    const g = tf.grad((c5: tf.Tensor) => fpn(store, { ...features, c5: c5 as tf.Tensor4D }, 16)[level]!.square().sum())(features.c5);
    assert.ok(g.dataSync().some((v) => v !== 0), `level p${level + 2}`);
  }
  const conv1 = store.get('conv1/kernel')!;
  const { grads } = tf.variableGrads(() => {
    const pyramid = fpn(store, resnetFeatures(store, images, 'small', false), 16);
    return tf.addN(pyramid.map((p) => p.square().sum())) as tf.Scalar;
  }, [conv1]);
  const g = grads[conv1.name]!.dataSync();
  assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite));
  store.dispose();
});

test('levels that do not halve exactly are refused with their sizes', () => {
  const store = new ParameterStore(1);
  const c = (side: number, ch: number) => tf.zeros([1, side, side, ch]) as tf.Tensor4D;
  assert.throws(() => fpn(store, { c2: c(16, 4), c3: c(8, 4), c4: c(4, 4), c5: c(3, 4) }, 8), /c4 is 4x4 but c5 is 3x3/);
  store.dispose();
});
