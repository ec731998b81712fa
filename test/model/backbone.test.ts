import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { backboneChannels, backboneLayerNames, resnetFeatures } from '../../stages/model/backbone.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('the small backbone gives c2..c5 at strides 4, 8, 16, 32 with 32..256 channels', () => {
  const store = new ParameterStore(1);
  const images = tf.randomNormal([2, 64, 128, 3], 0, 50, 'float32', 1) as tf.Tensor4D;
  const { c2, c3, c4, c5 } = resnetFeatures(store, images, 'small', false);
  assert.deepEqual(c2.shape, [2, 16, 32, 32]);
  assert.deepEqual(c3.shape, [2, 8, 16, 64]);
  assert.deepEqual(c4.shape, [2, 4, 8, 128]);
  assert.deepEqual(c5.shape, [2, 2, 4, 256]);
  assert.deepEqual(backboneChannels('small'), [32, 64, 128, 256]);
  assert.ok(c5.dataSync().every(Number.isFinite));
  store.dispose();
});

test('the medium backbone: ResNet50 at half width with 2, 3, 4, 2 blocks — 38 convs, 4,156,032 weights', () => {
  // Per conv: k*k*in*out kernel + out bias + 4 * out batch-norm values (gamma, beta, moving mean and variance).
  // Stem 7x7 3->32; each block 1x1 in->w, 3x3 w->w, 1x1 w->4w, the first of a stage also a 1x1 in->4w shortcut.
  const store = new ParameterStore(1);
  const { c2, c3, c4, c5 } = resnetFeatures(store, tf.zeros([1, 64, 64, 3]) as tf.Tensor4D, 'medium', false);
  assert.deepEqual([c2.shape, c3.shape, c4.shape, c5.shape], [[1, 16, 16, 128], [1, 8, 8, 256], [1, 4, 4, 512], [1, 2, 2, 1024]]);
  assert.deepEqual(backboneChannels('medium'), [128, 256, 512, 1024]);
  assert.equal(store.names().length, 38 * 2 + 38 * 4);
  assert.equal(store.size(), 4_156_032);
  store.dispose();
});

test('resnet50 has Keras ResNet50 (no top) variables: 53 convs with biases, 53 batch norms, 23,587,712 weights', () => {
  const store = new ParameterStore(1);
  const images = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
  const { c5 } = resnetFeatures(store, images, 'resnet50', false);
  assert.deepEqual(c5.shape, [1, 2, 2, 2048]);
  assert.equal(store.names().length, 53 * 2 + 53 * 4);
  assert.equal(store.size(), 23_587_712);
  assert.deepEqual(store.get('conv1/kernel')!.shape, [7, 7, 3, 64]);
  assert.deepEqual(store.get('res2a_branch2a/kernel')!.shape, [1, 1, 64, 64]);
  assert.deepEqual(store.get('res2a_branch1/kernel')!.shape, [1, 1, 64, 256]);
  assert.deepEqual(store.get('res4f_branch2b/kernel')!.shape, [3, 3, 256, 256]);
  assert.deepEqual(store.get('bn5c_branch2c/moving_variance')!.shape, [2048]);
  assert.equal(store.get('res4g_branch2a/kernel'), undefined);
  const layers = new Set(store.names().map((n) => n.split('/')[0]));
  assert.deepEqual([...layers].sort(), backboneLayerNames('resnet50').sort());
  store.dispose();
});

test('resnet101 shares resnet50 layer names and extends stage 4 to block w', () => {
  const r50 = backboneLayerNames('resnet50');
  const r101 = backboneLayerNames('resnet101');
  assert.equal(r101.length, r50.length + 17 * 6);
  for (const name of r50) assert.ok(r101.includes(name), name);
  assert.ok(r101.includes('res4w_branch2c') && r101.includes('bn4w_branch2c'));
  assert.ok(!r101.includes('res4x_branch2a'));
});

test('batch-norm statistics move only when training is true', () => {
  const store = new ParameterStore(1);
  const images = tf.randomNormal([1, 64, 64, 3], 0, 50, 'float32', 2) as tf.Tensor4D;
  resnetFeatures(store, images, 'small', false);
  const before = store.get('bn_conv1/moving_mean')!.dataSync().slice();
  resnetFeatures(store, images, 'small', false);
  assert.deepEqual(store.get('bn_conv1/moving_mean')!.dataSync(), before);
  resnetFeatures(store, images, 'small', true);
  assert.notDeepEqual(store.get('bn_conv1/moving_mean')!.dataSync(), before);
  store.dispose();
});

test('an image size that is not a multiple of 64 is refused with the size in the message', () => {
  const store = new ParameterStore(1);
  assert.throws(() => resnetFeatures(store, tf.zeros([1, 96, 64, 3]) as tf.Tensor4D, 'small', false), /96x64 must be a multiple of 64/);
  store.dispose();
});
