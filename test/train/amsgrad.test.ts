import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Amsgrad } from '../../stages/train/amsgrad.js';

await tf.setBackend('cpu');

test('the first amsgrad step moves a parameter by about the learning rate against the gradient sign', () => {
  const p = tf.variable(tf.tensor1d([1, -2]), true, 'p1');
  const opt = new Amsgrad({ learningRate: 0.1 });
  opt.applyGradients({ p1: tf.tensor1d([0.5, -3]) }, { p1: p });
  // Bias-corrected first step: m/sqrt(vhat) = sign(g), so |step| = lr (up to epsilon).
  const [a, b] = p.dataSync();
  assert.ok(Math.abs(a! - 0.9) < 1e-5, `got ${a}`);
  assert.ok(Math.abs(b! - -1.9) < 1e-5, `got ${b}`);
});

test('amsgrad keeps the largest second moment where plain adam would let it decay', () => {
  const p = tf.variable(tf.scalar(0), true, 'p2');
  const opt = new Amsgrad({ learningRate: 0.1 });
  opt.applyGradients({ p2: tf.scalar(1) }, { p2: p });
  opt.applyGradients({ p2: tf.scalar(0) }, { p2: p });
  // Hand computation: m2 = 0.09, v2 = 0.000999 < vhat = 0.001, lr_2 = 0.1 * sqrt(1 - 0.999^2) / (1 - 0.9^2)
  const lr2 = (0.1 * Math.sqrt(1 - 0.999 ** 2)) / (1 - 0.9 ** 2);
  const step2 = (lr2 * 0.09) / (Math.sqrt(0.001) + 1e-7);
  const adamStep2 = (lr2 * 0.09) / (Math.sqrt(0.000999) + 1e-7);
  const expected = -0.1 - step2;
  const got = p.dataSync()[0]!;
  assert.ok(Math.abs(got - expected) < 1e-6, `got ${got}, expected ${expected}`);
  assert.ok(Math.abs(got - (-0.1 - adamStep2)) > 1e-5, 'must differ from plain adam');
});

test('optimizer state round-trips so a resumed phase continues identically', async () => {
  const a = tf.variable(tf.tensor1d([1, 2, 3]), true, 'pa');
  const b = tf.variable(tf.tensor1d([1, 2, 3]), true, 'pb');
  const optA = new Amsgrad({ learningRate: 0.01 });
  const optB = new Amsgrad({ learningRate: 0.01 });
  const g1 = tf.tensor1d([0.3, -0.2, 0.1]);
  const g2 = tf.tensor1d([-0.1, 0.4, 0.0]);
  optA.applyGradients({ w: g1 }, { w: a });
  optB.applyGradients({ w: g1 }, { w: b });
  const saved = await optB.withState((state) => Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v.clone()])));
  const optB2 = new Amsgrad({ learningRate: 0.01 });
  optB2.restore(saved);
  assert.equal(optB2.iterations, 1);
  optA.applyGradients({ w: g2 }, { w: a });
  optB2.applyGradients({ w: g2 }, { w: b });
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
});

test('a decay coefficient adds c * variable to the gradient before the update (and before the clip scale)', () => {
  const a = tf.variable(tf.tensor1d([1, -2, 3]), true, 'decayA');
  const b = tf.variable(tf.tensor1d([1, -2, 3]), true, 'decayB');
  const g = tf.tensor1d([0.3, -0.2, 0.1]);
  const scale = tf.scalar(0.5);
  new Amsgrad({ learningRate: 0.01 }).applyGradients({ w: g }, { w: a }, scale, { w: 0.25 });
  const summed = tf.add(g, tf.mul(tf.tensor1d([1, -2, 3]), 0.25));
  new Amsgrad({ learningRate: 0.01 }).applyGradients({ w: summed }, { w: b }, scale);
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  tf.dispose([a, b, g, scale, summed]);
});

test('on wasm, the one-pass update (kernels/native/amsgrad-update.c) gives the op-by-op update\'s values to the bit', async (t) => {
  const { selectBackend } = await import('../../stages/model/backend.js');
  const { AMSGRAD_UPDATE } = await import('../../stages/model/kernels/native/amsgrad-update.js');
  await selectBackend('wasm', () => {}, { threads: 1 });
  if (!tf.getKernel(AMSGRAD_UPDATE, 'wasm')) {
    t.skip('the amsgrad-update addon cannot be built here (no C compiler or Node headers), or RUNNER_NATIVE_KERNELS=off');
    await tf.setBackend('cpu');
    return;
  }
  /** Five steps on two variables (one decayed, one not), with a clip scale; every slot and variable read out. */
  const run = (): number[][] => {
    const random = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
    const w = tf.variable(random([3, 5], 1), true, `w${Math.random()}`);
    const b = tf.variable(random([5], 2), true, `b${Math.random()}`);
    const opt = new Amsgrad({ learningRate: 1e-3 });
    for (let step = 0; step < 5; step++) {
      tf.tidy(() => {
        const scale = tf.scalar(0.7 + 0.1 * step);
        opt.applyGradients({ w: random([3, 5], 10 + step), b: random([5], 20 + step) }, { w, b }, step === 2 ? undefined : scale, { w: 0.03 });
      });
    }
    return tf.tidy(() => [w, b].map((x) => Array.from(x.dataSync())));
  };
  const used = tf.getKernel(AMSGRAD_UPDATE, 'wasm')!;
  let calls = 0;
  tf.unregisterKernel(AMSGRAD_UPDATE, 'wasm');
  tf.registerKernel({ ...used, kernelFunc: (args) => { calls += 1; return used.kernelFunc(args); } });
  const fused = run();
  assert.equal(calls, 5 * 2, 'one kernel call per variable and step');
  await selectBackend('wasm', () => {}, { threads: 1, nativeKernels: false });
  assert.equal(tf.getKernel(AMSGRAD_UPDATE, 'wasm'), undefined);
  assert.deepEqual(fused, run());
  await tf.setBackend('cpu');
});
