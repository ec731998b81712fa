import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { boxHead, maskHead } from '../../stages/model/heads.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('the box head gives class logits [N, K] and per-class deltas [N, K, 4] with Matterport names', () => {
  const store = new ParameterStore(1);
  const pooled = tf.randomNormal([5, 7, 7, 8], 0, 1, 'float32', 1) as tf.Tensor4D;
  const { classLogits, deltas } = boxHead(store, pooled, 2, 32, false);
  assert.deepEqual(classLogits.shape, [5, 2]);
  assert.deepEqual(deltas.shape, [5, 2, 4]);
  assert.deepEqual(store.get('mrcnn_class_conv1/kernel')!.shape, [7, 7, 8, 32]);
  assert.deepEqual(store.get('mrcnn_class_conv2/kernel')!.shape, [1, 1, 32, 32]);
  assert.deepEqual(store.get('mrcnn_class_logits/kernel')!.shape, [32, 2]);
  assert.deepEqual(store.get('mrcnn_bbox_fc/kernel')!.shape, [32, 8]);
  assert.ok(store.has('mrcnn_class_bn1/moving_mean') && store.has('mrcnn_class_bn2/gamma'));
  store.dispose();
});

test('the box head "FC" layer equals a 7x7 valid convolution', () => {
  const store = new ParameterStore(1);
  const pooled = tf.randomNormal([3, 7, 7, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
  const { classLogits } = boxHead(store, pooled, 2, 6, false);
  // Reference built from the same variables with a real convolution.
  const v = (name: string) => store.get(name)!;
  const bn = (x: tf.Tensor, name: string) => tf.batchNorm(x, v(`${name}/moving_mean`), v(`${name}/moving_variance`), v(`${name}/beta`), v(`${name}/gamma`), 1e-3);
  let x: tf.Tensor = tf.conv2d(pooled, v('mrcnn_class_conv1/kernel') as tf.Tensor4D, 1, 'valid').add(v('mrcnn_class_conv1/bias'));
  x = tf.relu(bn(x, 'mrcnn_class_bn1'));
  x = tf.conv2d(x as tf.Tensor4D, v('mrcnn_class_conv2/kernel') as tf.Tensor4D, 1, 'valid').add(v('mrcnn_class_conv2/bias'));
  x = tf.relu(bn(x, 'mrcnn_class_bn2')).reshape([3, 6]);
  const expected = x.matMul(v('mrcnn_class_logits/kernel') as tf.Tensor2D).add(v('mrcnn_class_logits/bias'));
  assert.ok(classLogits.sub(expected).abs().max().dataSync()[0]! < 1e-4);
  store.dispose();
});

test('the mask head turns [N, 14, 14, C] into [N, 28, 28, K] logits', () => {
  const store = new ParameterStore(1);
  const pooled = tf.randomNormal([2, 14, 14, 8], 0, 1, 'float32', 3) as tf.Tensor4D;
  const logits = maskHead(store, pooled, 2, 16, false);
  assert.deepEqual(logits.shape, [2, 28, 28, 2]);
  for (let i = 1; i <= 4; i++) assert.ok(store.has(`mrcnn_mask_conv${i}/kernel`) && store.has(`mrcnn_mask_bn${i}/beta`));
  assert.deepEqual(store.get('mrcnn_mask_deconv/kernel')!.shape, [2, 2, 16, 16]);
  assert.deepEqual(store.get('mrcnn_mask/kernel')!.shape, [1, 1, 16, 2]);
  store.dispose();
});

test('both heads train: every trainable head variable gets a gradient, in frozen and training BN modes', () => {
  for (const training of [false, true]) {
    const store = new ParameterStore(1);
    const box = tf.randomNormal([4, 7, 7, 4], 0, 1, 'float32', 4) as tf.Tensor4D;
    const mask = tf.randomNormal([3, 14, 14, 4], 0, 1, 'float32', 5) as tf.Tensor4D;
    const loss = () => {
      const { classLogits, deltas } = boxHead(store, box, 2, 8, training);
      const masks = maskHead(store, mask, 2, 8, training);
      return classLogits.square().sum().add(deltas.square().sum()).add(masks.sigmoid().sum()) as tf.Scalar;
    };
    loss();
    const { grads } = tf.variableGrads(loss, store.trainableVariables());
    for (const v of store.trainableVariables()) {
      assert.ok(grads[v.name]!.abs().max().dataSync()[0]! > 0, `${store.nameOf(v)} (training=${training})`);
    }
    store.dispose();
  }
});

test('zero ROIs give empty outputs and leave batch-norm statistics finite', () => {
  const store = new ParameterStore(1);
  const { classLogits, deltas } = boxHead(store, tf.zeros([0, 7, 7, 4]) as tf.Tensor4D, 2, 8, true);
  assert.deepEqual(classLogits.shape, [0, 2]);
  assert.deepEqual(deltas.shape, [0, 2, 4]);
  assert.deepEqual(maskHead(store, tf.zeros([0, 14, 14, 4]) as tf.Tensor4D, 2, 8, true).shape, [0, 28, 28, 2]);
  assert.ok(store.get('mrcnn_class_bn1/moving_mean')!.dataSync().every(Number.isFinite));
  store.dispose();
});
