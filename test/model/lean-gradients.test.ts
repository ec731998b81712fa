import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { leanVariableGrads } from '../../stages/model/lean-gradients.js';
import { recomputed } from '../../stages/model/recompute.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** A small net with what the Mask R-CNN has: convs, a shared weight used twice, a residual add, a recomputed
 *  segment, reshapes and slices, an unused output branch and a frozen (non-trainable) variable. */
let nets = 0;
function makeNet() {
  const id = `lean${nets++}`;
  const w1 = tf.variable(tf.randomNormal([3, 3, 2, 4], 0, 0.5, 'float32', 1), true, `${id}/w1`);
  const w2 = tf.variable(tf.randomNormal([3, 3, 4, 4], 0, 0.5, 'float32', 2), true, `${id}/w2`);
  const dense = tf.variable(tf.randomNormal([4, 3], 0, 0.5, 'float32', 3), true, `${id}/dense`);
  const frozen = tf.variable(tf.randomNormal([4], 0, 0.5, 'float32', 4), false, `${id}/frozen`);
  const unused = tf.variable(tf.randomNormal([3], 0, 0.5, 'float32', 5), true, `${id}/unused`);
  const x = tf.randomNormal([2, 8, 8, 2], 0, 1, 'float32', 6) as tf.Tensor4D;
  const loss = () => {
    const k1 = w1 as tf.Tensor as tf.Tensor4D;
    const k2 = w2 as tf.Tensor as tf.Tensor4D;
    const a = tf.relu(tf.conv2d(x, k1, 1, 'same'));
    const b = recomputed((t: tf.Tensor4D) => tf.tanh(tf.conv2d(t, k2, 1, 'same')).add(frozen) as tf.Tensor4D, a, [w2]);
    const c = tf.conv2d(b.add(a) as tf.Tensor4D, k2, 1, 'same'); // w2 used twice, residual add
    const pooled = c.mean([1, 2]) as tf.Tensor2D; // [2, 4]
    const logits = tf.matMul(pooled, dense);
    const [first] = tf.split(logits.reshape([6]), [4, 2]);
    return first!.square().sum().add(tf.sum(dense.square()).mul(0.1)) as tf.Scalar;
  };
  return { variables: [w1, w2, dense, frozen, unused], loss, dispose: () => tf.dispose([w1, w2, dense, frozen, unused, x]) };
}

test('lean gradients equal tf.variableGrads and leave no tensor behind', async () => {
  const net = makeNet();
  const reference = tf.variableGrads(net.loss, net.variables);
  const expected = Object.fromEntries(
    Object.entries(reference.grads).filter(([, g]) => g != null).map(([name, g]) => [name, g.dataSync().slice()]),
  );
  const expectedLoss = reference.value.dataSync()[0]!;
  tf.dispose([reference.value, ...Object.values(reference.grads).filter((g) => g != null)]);

  const before = tf.memory().numTensors;
  const lean = await leanVariableGrads(net.loss, net.variables);
  assert.deepEqual(Object.keys(lean.grads).sort(), Object.keys(expected).sort());
  assert.ok(Object.keys(lean.grads).every((name) => !/frozen|unused/.test(name)), 'no gradient for frozen or unused variables');
  assert.equal(lean.value.dataSync()[0], expectedLoss);
  for (const [name, g] of Object.entries(lean.grads)) assert.deepEqual(g.dataSync(), expected[name], `gradient of ${name}`);
  tf.dispose([lean.value, ...Object.values(lean.grads)]);
  assert.equal(tf.memory().numTensors, before);
  net.dispose();
});

test('lean gradients hold less memory during the backward pass than tf.variableGrads', async () => {
  const net = makeNet();
  const peakOf = async (run: () => { value: tf.Tensor; grads: Record<string, tf.Tensor> } | Promise<{ value: tf.Tensor; grads: Record<string, tf.Tensor> }>): Promise<number> => {
    const engine = tf.engine() as unknown as { state: { numBytes: number }; trackTensor: (...args: unknown[]) => unknown };
    const track = engine.trackTensor;
    let peak = 0;
    engine.trackTensor = function (this: unknown, ...args: unknown[]) {
      const result = track.apply(this, args);
      peak = Math.max(peak, engine.state.numBytes);
      return result;
    };
    try {
      const { value, grads } = await run();
      tf.dispose([value, ...Object.values(grads).filter((g) => g != null)]);
    } finally {
      engine.trackTensor = track;
    }
    return peak;
  };
  const stock = await peakOf(() => tf.variableGrads(net.loss, net.variables));
  const lean = await peakOf(() => leanVariableGrads(net.loss, net.variables));
  assert.ok(lean < stock, `peak bytes: lean ${lean}, tf.variableGrads ${stock}`);
  net.dispose();
});

test('a loss that is not a scalar is a clear error', async () => {
  const v = tf.variable(tf.ones([2]), true, 'lean/vector');
  await assert.rejects(leanVariableGrads(() => v.mul(2) as unknown as tf.Scalar, [v]), /must return a scalar/);
  v.dispose();
});
