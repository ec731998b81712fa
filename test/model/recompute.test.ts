import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { resnetFeatures } from '../../stages/model/backbone.js';
import { recomputed } from '../../stages/model/recompute.js';

before(async () => {
  await tf.setBackend('cpu');
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Gradients of a loss over every backbone output w.r.t. the store's trainable variables. */
function backboneGradients(store: ParameterStore, images: tf.Tensor4D, recompute: boolean): Record<string, tf.Tensor> {
  const { grads } = tf.variableGrads(() => {
    const { c2, c3, c4, c5 } = resnetFeatures(store, images, 'small', false, { recompute });
    // Different weights per output so every block's gradient differs from a plain sum's.
    return tf.addN([c2.square().mean(), c3.mul(2).mean(), c4.sin().sum(), c5.square().sum().mul(0.01)]) as tf.Scalar;
  }, store.trainableVariables());
  return grads;
}

test('recomputing the backbone blocks in the backward pass gives the same gradients as keeping them', () => {
  const store = new ParameterStore(3);
  const images = tf.randomNormal([2, 64, 64, 3], 0, 50, 'float32', 2) as tf.Tensor4D;
  resnetFeatures(store, images, 'small', false); // creates the variables (the first pass never recomputes)
  const kept = backboneGradients(store, images, false);
  const recomputedGrads = backboneGradients(store, images, true);
  assert.deepEqual(Object.keys(recomputedGrads).sort(), Object.keys(kept).sort());
  assert.ok(Object.keys(kept).some((name) => name.includes('res2a_branch2a')), 'block variables receive gradients');
  for (const [name, grad] of Object.entries(kept)) {
    const scale = Math.max(1e-6, tf.tidy(() => tf.max(tf.abs(grad)).dataSync()[0]!));
    assert.ok(maxAbsDiff(grad, recomputedGrads[name]!) / scale < 1e-4, `gradient of ${name}`);
  }
  store.dispose();
});

test('a recomputed segment keeps no intermediates after its forward pass and frees the recompute after backprop', () => {
  const w = tf.variable(tf.randomNormal([8, 8], 0, 1, 'float32', 4));
  const x = tf.randomNormal([4, 8], 0, 1, 'float32', 5) as tf.Tensor2D;
  const segment = (input: tf.Tensor2D) => tf.relu(tf.matMul(tf.tanh(tf.matMul(input, w)), w)) as tf.Tensor2D;
  const plain = tf.variableGrads(() => segment(x).sum() as tf.Scalar, [w]);
  const plainValue = plain.value.dataSync()[0]!;
  const plainGrad = plain.grads[w.name]!.dataSync();
  tf.dispose([plain.value, ...Object.values(plain.grads)]);
  const before = tf.memory().numTensors;
  let afterForward = 0;
  const viaRecompute = tf.variableGrads(() => {
    const y = recomputed(segment, x, [w]);
    afterForward = tf.memory().numTensors;
    return y.sum() as tf.Scalar;
  }, [w]);
  // The op's output and the tape's saved copy of its input: nothing of tanh/matMul/relu inside.
  assert.ok(afterForward - before <= 3, `${afterForward - before} tensors alive after the forward pass`);
  viaRecompute.grads[w.name]!.dataSync().forEach((g, i) => assert.ok(Math.abs(g - plainGrad[i]!) < 1e-5));
  assert.ok(Math.abs(plainValue - viaRecompute.value.dataSync()[0]!) < 1e-5);
  tf.dispose([viaRecompute.value, ...Object.values(viaRecompute.grads)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor of the recompute outlives the gradient computation');
  // The engine's tape survived the nested gradient computation: a further gradient still works.
  const again = tf.grad((v: tf.Tensor) => v.square().sum())(x);
  assert.equal(again.shape[0], 4);
});
