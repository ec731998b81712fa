// Frozen batch norm (+ ReLU) on wasm's native kernels (stages/model/kernels/native/batch-norm-frozen.ts) gives the
// cpu backend's tf.batchNorm (then tf.relu): values and the gradients for x, gamma and beta, on shapes the model
// meets (the mask head's ROIs, the backbone's maps, a dense layer's rows), on one thread and two (the same values
// to the bit), and the layer uses it. Skipped, saying why, where the addon cannot be built.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../stages/model/backend.js';
import { batchNormFrozenWasm, batchNormFrozenWasmAvailable, registerBatchNormFrozen } from '../../../stages/model/kernels/native/batch-norm-frozen.js';
import { nativeKernelsDisabled } from '../../../stages/model/kernels/native/blas-kernels.js';
import { batchNorm } from '../../../stages/model/layers.js';
import { ParameterStore } from '../../../stages/model/params.js';
import { assertAllClose, gradientsOn, randomInput, runOn, type Input } from './compare-backends.js';

const skip = nativeKernelsDisabled() ? 'RUNNER_NATIVE_KERNELS is off'
  : registerBatchNormFrozen(true, 1) ? false : 'the batch-norm-frozen addon cannot be built here';

before(async () => {
  if (!skip) await selectBackend('wasm', () => {}, { threads: 1 });
});

/** The statistics as the trained layer holds them: variance > 0, and a gamma with a negative entry. */
function statistics(channels: number, seed: string): [Input, Input, Input, Input] {
  const [mean, variance, gamma, beta] = ['mean', 'variance', 'gamma', 'beta'].map((name) => randomInput([channels], `${seed} ${name}`)) as [Input, Input, Input, Input];
  variance.values = variance.values.map((v) => v * v + 0.05);
  return [mean, variance, gamma, beta];
}

const shapes = [
  { what: 'mask head ROIs (rows split among threads)', shape: [12, 14, 14, 16] },
  { what: 'a backbone map', shape: [2, 16, 16, 32] },
  { what: 'rows of a dense layer', shape: [40, 24] },
  { what: 'one row, one channel', shape: [1, 1] },
];

/** f(x, gamma, beta) on the active backend: the native op on wasm, tfjs' ops on cpu. */
function frozen(mean: Input, variance: Input, relu: boolean) {
  return (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor => {
    const [m, v] = [tf.tensor(mean.values, mean.shape), tf.tensor(variance.values, variance.shape)];
    if (tf.getBackend() === 'wasm') return batchNormFrozenWasm(x, m, v, gamma, beta, 1e-3, relu);
    const y = tf.batchNorm(x, m as tf.Tensor1D, v as tf.Tensor1D, beta as tf.Tensor1D, gamma as tf.Tensor1D, 1e-3);
    return relu ? tf.relu(y) : y;
  };
}

test('frozen batch norm, with and without ReLU: values and gradients match cpu, on one thread and two alike', { skip }, () => {
  for (const { what, shape } of shapes) {
    const channels = shape.at(-1)!;
    const [mean, variance, gamma, beta] = statistics(channels, what);
    const x = randomInput(shape, `x ${what}`);
    for (const relu of [false, true]) {
      const f = frozen(mean, variance, relu);
      const label = `${what}, relu ${relu}`;
      const onWasm = (threads: number) => {
        registerBatchNormFrozen(true, threads);
        try {
          return [...runOn('wasm', [x, gamma, beta], f), ...gradientsOn('wasm', [x, gamma, beta], f)];
        } finally {
          registerBatchNormFrozen(true, 1);
        }
      };
      const [one, two] = [onWasm(1), onWasm(2)];
      assertAllClose(one, [...runOn('cpu', [x, gamma, beta], f), ...gradientsOn('cpu', [x, gamma, beta], f)], 1e-5, label);
      two.forEach((values, i) => assert.deepEqual(values, one[i], `${label}: output ${i} on 2 threads differs from 1 thread's`));
    }
  }
});

test('the ReLU\'s gradient is 0 where the normalised value is negative, and flows where positive', { skip }, () => {
  tf.setBackend('wasm');
  // gamma 1, beta 0, mean 0, variance 1 - eps: z = x exactly.
  const x = tf.tensor2d([[-2, 3], [0.5, -0.25]]);
  const [gamma, beta] = [tf.ones([2]), tf.zeros([2])];
  const stats = [tf.zeros([2]), tf.fill([2], 1 - 1e-3)];
  const f = (t: tf.Tensor) => batchNormFrozenWasm(t, stats[0]!, stats[1]!, gamma, beta, 1e-3, true).sum();
  assert.deepEqual(Array.from(batchNormFrozenWasm(x, stats[0]!, stats[1]!, gamma, beta, 1e-3, true).dataSync()), [0, 3, 0.5, 0]);
  assert.deepEqual(Array.from(tf.grad(f)(x).dataSync()), [0, 1, 1, 0]);
  tf.dispose([x, gamma, beta, ...stats]);
});

test('the layer runs on the native kernels on wasm (frozen statistics), not with training statistics or RUNNER_NATIVE_KERNELS=off', { skip }, async () => {
  tf.setBackend('wasm');
  const store = new ParameterStore(1);
  const x = tf.randomNormal([2, 4, 4, 8], 0, 1, 'float32', 3);
  const kernelsOf = async (f: () => tf.Tensor): Promise<string[]> => (await tf.profile(() => tf.tidy(() => f()))).kernelNames;
  assert.ok((await kernelsOf(() => batchNorm(store, 'bn', x, { training: false, relu: true }))).includes('BatchNormFrozen'));
  assert.ok(!(await kernelsOf(() => batchNorm(store, 'bn', x, { training: true, relu: true }))).includes('BatchNormFrozen'));
  registerBatchNormFrozen(false, 1);
  try {
    assert.ok(!(await kernelsOf(() => batchNorm(store, 'bn', x, { training: false, relu: true }))).includes('BatchNormFrozen'));
  } finally {
    registerBatchNormFrozen(true, 1);
  }
  x.dispose();
  store.dispose();
});
