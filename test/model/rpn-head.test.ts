import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { rpnHead } from '../../stages/model/rpn-head.js';
import { conv2d } from '../../stages/model/layers.js';
import { anchorCount } from '../../stages/model/anchors.js';

before(async () => {
  await tf.setBackend('cpu');
});

const sides = [16, 8, 4, 2, 1]; // a 64x64 image at strides 4..64
const pyramid = (batch: number, channels: number) =>
  sides.map((s, i) => tf.randomNormal([batch, s, s, channels], 0, 1, 'float32', i + 1) as tf.Tensor4D);

test('rpn outputs have A = sum(h*w*3) rows, the same count as the anchors of a 64x64 image', () => {
  const store = new ParameterStore(1);
  const { logits, deltas } = rpnHead(store, pyramid(2, 8), 3, 16);
  const a = sides.reduce((sum, s) => sum + s * s * 3, 0);
  assert.equal(a, 1023);
  assert.deepEqual(logits.shape, [2, a, 2]);
  assert.deepEqual(deltas.shape, [2, a, 4]);
  const spec = { imageSize: 64, scales: [8, 16, 32, 64, 128], ratios: [0.5, 1, 2], featureStrides: [4, 8, 16, 32, 64], anchorStride: 1 };
  assert.equal(anchorCount(spec), a);
  assert.deepEqual(store.get('rpn_class_raw/kernel')!.shape, [1, 1, 16, 6]);
  assert.deepEqual(store.get('rpn_bbox_pred/kernel')!.shape, [1, 1, 16, 12]);
  assert.deepEqual(store.get('rpn_conv_shared/kernel')!.shape, [3, 3, 8, 16]);
  store.dispose();
});

test('rows are ordered level-major, then y, x, then anchor, exactly as Matterport reshapes its 1x1 conv outputs', () => {
  const store = new ParameterStore(1);
  const features = pyramid(2, 4);
  const { logits, deltas } = rpnHead(store, features, 3, 8);
  tf.tidy(() => {
    store.assign('rpn_class_raw/bias', tf.randomNormal([6], 0, 1, 'float32', 9));
    store.assign('rpn_bbox_pred/bias', tf.randomNormal([12], 0, 1, 'float32', 10));
  });
  const after = rpnHead(store, features, 3, 8);
  // Reference: separate convs per level, reshaped to [B, -1, 2] / [B, -1, 4] and concatenated (rpn_graph).
  const reference = (name: string, depth: number) =>
    tf.concat(
      features.map((f) => {
        const shared = conv2d(store, 'rpn_conv_shared', f, { filters: 8, kernelSize: 3, activation: 'relu' });
        return conv2d(store, name, shared, { filters: 3 * depth, kernelSize: 1 }).reshape([2, -1, depth]);
      }),
      1,
    );
  const close = (a: tf.Tensor, b: tf.Tensor) => assert.ok(a.sub(b).abs().max().dataSync()[0]! < 1e-5);
  close(after.logits, reference('rpn_class_raw', 2));
  close(after.deltas, reference('rpn_bbox_pred', 4));
  assert.notDeepEqual(Array.from(after.logits.dataSync()), Array.from(logits.dataSync()));
  assert.equal(deltas.shape[1], after.deltas.shape[1]);
  store.dispose();
});

test('the head has gradients for its shared conv and both 1x1 convs', () => {
  const store = new ParameterStore(1);
  const features = pyramid(1, 4);
  rpnHead(store, features, 3, 8);
  const vars = ['rpn_conv_shared/kernel', 'rpn_class_raw/kernel', 'rpn_bbox_pred/bias'].map((n) => store.get(n)!);
  const { grads } = tf.variableGrads(() => {
    const { logits, deltas } = rpnHead(store, features, 3, 8);
    return logits.square().sum().add(deltas.sum()) as tf.Scalar;
  }, vars);
  for (const v of vars) assert.ok(grads[v.name]!.dataSync().some((g) => g !== 0), v.name);
  store.dispose();
});

test('feature maps with different channel counts are refused', () => {
  const store = new ParameterStore(1);
  assert.throws(() => rpnHead(store, [tf.zeros([1, 4, 4, 8]) as tf.Tensor4D, tf.zeros([1, 2, 2, 4]) as tf.Tensor4D], 3, 8), /level 1 has 4 channels/);
  store.dispose();
});
