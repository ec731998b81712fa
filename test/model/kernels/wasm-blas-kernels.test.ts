// The OpenBLAS kernels of the wasm backend (stages/model/kernels/native/) give the cpu backend's values: every
// conv the model runs (strides, 'same' / 'valid' / explicit pads, 1x1, the 7x7 stem, dilation, batch > 1, fused
// bias + relu), its gradients through tf.grad, and matrix products with transposes, batches and fused bias.
// Skipped, saying why, where the addon cannot be built (no C compiler, Node headers or OpenBLAS).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { selectBackend } from '../../../stages/model/backend.js';
import { loadBlasKernels, nativeKernelsDisabled, type BlasKernels } from '../../../stages/model/kernels/native/blas-kernels.js';
import { registerWasmTrainingKernels } from '../../../stages/model/kernels/wasm/register.js';
import { nativeKernelNames, nativeTransposedProducts } from '../../../stages/model/kernels/native/wasm-blas-kernels.js';
import { linear } from '../../../stages/model/layers.js';
import { assertAllClose, gradientsOn, randomInput, runOn, type Input } from './compare-backends.js';

const load = loadBlasKernels();
const skip = load.kind === 'loaded' ? false : `OpenBLAS kernels not in use here: ${load.reason}`;

before(async () => {
  if (!skip) await selectBackend('wasm', () => {}, { threads: 1 });
});

function sameAsCpu(inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tolerance: number, what: string): void {
  assertAllClose(runOn('wasm', inputs, f), runOn('cpu', inputs, f), tolerance, what);
}

function sameGradientsAsCpu(inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor, tolerance: number, what: string): void {
  assertAllClose(gradientsOn('wasm', inputs, f), gradientsOn('cpu', inputs, f), tolerance, `${what} (gradients)`);
}

test('the native kernels are the ones wasm runs, and selectBackend says so', { skip }, async () => {
  const logs: string[] = [];
  const selected = await selectBackend('wasm', (m) => logs.push(m), { threads: 1 });
  assert.match(selected.nativeKernels ?? '', /^OpenBLAS \d/);
  assert.match(logs[0] ?? '', /^backend: wasm \(1 thread\) \+ OpenBLAS kernels \(OpenBLAS \d/);
  for (const name of nativeKernelNames) assert.match(tf.getKernel(name, 'wasm')?.kernelFunc.name ?? '', /^native/, name);
  // nativeKernels: false puts the wasm kernels back.
  const plain = await selectBackend('wasm', () => {}, { threads: 1, nativeKernels: false });
  assert.equal(plain.nativeKernels, undefined);
  for (const name of nativeKernelNames) assert.doesNotMatch(tf.getKernel(name, 'wasm')?.kernelFunc.name ?? '', /^native/, name);
  await selectBackend('wasm', () => {}, { threads: 1 });
});

test('the model\'s calls reach the addon, not the fallback: 2-D and batched products, fused and plain convs, both gradients', { skip }, () => {
  if (load.kind !== 'loaded') return;
  const calls: Record<string, number> = {};
  const names = ['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter', 'matMul', 'setThreads', 'threads', 'version'] as const;
  const kernels = load.kernels as unknown as Record<string, (...xs: unknown[]) => unknown>;
  const counting = Object.fromEntries(names.map((name) =>
    [name, (...args: unknown[]) => { calls[name] = (calls[name] ?? 0) + 1; return kernels[name]!(...args); }])) as unknown as BlasKernels;
  registerWasmTrainingKernels({ blas: counting });
  try {
    tf.setBackend('wasm');
    const expectCalls = (name: keyof BlasKernels, what: string, f: () => tf.Tensor | tf.Tensor[]) => {
      const before = calls[name] ?? 0;
      tf.dispose(tf.tidy(f));
      assert.ok((calls[name] ?? 0) > before, `${what} ran ${name} on the addon`);
    };
    const x2 = tf.ones([6, 5]) as tf.Tensor2D;
    const w2 = tf.ones([5, 4]) as tf.Tensor2D;
    expectCalls('matMul', '2-D matMul', () => tf.matMul(x2, w2));
    expectCalls('matMul', '2-D matMul, transposed', () => tf.matMul(x2, x2, true, false));
    expectCalls('matMul', 'fused 2-D matMul', () => tf.fused.matMul({ a: x2, b: w2, bias: tf.ones([4]), activation: 'relu' }));
    expectCalls('matMul', 'batched matMul', () => tf.matMul(tf.ones([3, 6, 5]), tf.ones([3, 5, 4])));
    const x = tf.ones([2, 8, 8, 3]) as tf.Tensor4D;
    const w = tf.ones([3, 3, 3, 4]) as tf.Tensor4D;
    expectCalls('conv2d', 'conv2d', () => tf.conv2d(x, w, 2, 'same'));
    expectCalls('conv2d', 'fused conv2d', () => tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias: tf.ones([4]), activation: 'relu' }));
    expectCalls('conv2dBackpropInput', 'the input gradient', () => tf.grad((t: tf.Tensor) => tf.conv2d(t as tf.Tensor4D, w, 2, 'same').sum())(x));
    expectCalls('conv2dBackpropFilter', 'the filter gradient', () => tf.grad((t: tf.Tensor) => tf.conv2d(x, t as tf.Tensor4D, 2, 'same').sum())(w));
    tf.dispose([x2, w2, x, w]);
  } finally {
    registerWasmTrainingKernels({ blas: load.kernels });
  }
});

test('a hand-computed conv: 2x2 ones over a 3x3 ramp, valid and same, and its filter gradient', { skip }, () => {
  tf.setBackend('wasm');
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
  const w = tf.ones([2, 2, 1, 1]) as tf.Tensor4D;
  assert.deepEqual(Array.from(tf.conv2d(x, w, 1, 'valid').dataSync()), [12, 16, 24, 28]);
  // 'same' with an even filter pads after: the last row and column see zeros.
  assert.deepEqual(Array.from(tf.conv2d(x, w, 1, 'same').dataSync()), [12, 16, 9, 24, 28, 15, 15, 17, 9]);
  // d(sum of the valid conv)/dw[i, j] = sum of the 2x2 window of x starting at (i, j).
  const dw = tf.grad((f: tf.Tensor) => tf.conv2d(x, f as tf.Tensor4D, 1, 'valid').sum())(w);
  assert.deepEqual(Array.from(dw.dataSync()), [12, 16, 24, 28]);
  // d/dx: how many output windows cover each pixel.
  const dx = tf.grad((t: tf.Tensor) => tf.conv2d(t as tf.Tensor4D, w, 1, 'valid').sum())(x);
  assert.deepEqual(Array.from(dx.dataSync()), [1, 2, 1, 2, 4, 2, 1, 2, 1]);
  const product = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2]), false, true);
  assert.deepEqual(Array.from(product.dataSync()), [17, 23, 39, 53]);
  tf.dispose([x, w, dw, dx, product]);
});

interface ConvCase {
  what: string;
  x: number[];
  filter: number[];
  strides: number;
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dilations?: number;
}

const convCases: ConvCase[] = [
  { what: '3x3 same, the mask head (ROIs as the batch)', x: [6, 14, 14, 8], filter: [3, 3, 8, 8], strides: 1, pad: 'same' },
  { what: '3x3 stride 2 same', x: [2, 9, 9, 4], filter: [3, 3, 4, 6], strides: 2, pad: 'same' },
  { what: '3x3 stride 2 valid', x: [2, 10, 9, 3], filter: [3, 3, 3, 5], strides: 2, pad: 'valid' },
  { what: '1x1 stride 1 (a matrix product)', x: [3, 7, 7, 16], filter: [1, 1, 16, 12], strides: 1, pad: 'same' },
  { what: '1x1 stride 2 (a bottleneck shortcut)', x: [2, 8, 8, 6], filter: [1, 1, 6, 10], strides: 2, pad: 'valid' },
  { what: '7x7 stride 2 same, the stem', x: [2, 32, 32, 3], filter: [7, 7, 3, 8], strides: 2, pad: 'same' },
  { what: 'explicit pads, uneven', x: [1, 8, 7, 3], filter: [3, 2, 3, 4], strides: 1, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  { what: 'numeric pad 1, stride 2', x: [2, 7, 7, 2], filter: [3, 3, 2, 3], strides: 2, pad: 1 },
  { what: '2x2 stride 3 same (stride > kernel)', x: [1, 10, 10, 2], filter: [2, 2, 2, 3], strides: 3, pad: 'same' },
  { what: 'batch 1, one channel in and out', x: [1, 5, 6, 1], filter: [3, 3, 1, 1], strides: 1, pad: 'valid' },
];

test('conv2d forward on the native kernel matches cpu (strides, pads, 1x1, 7x7, dilation)', { skip }, () => {
  for (const c of convCases) {
    const inputs = [randomInput(c.x, `x ${c.what}`), randomInput(c.filter, `w ${c.what}`)];
    sameAsCpu(inputs, (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad as 'same'), 1e-5, c.what);
  }
  const dilated = [randomInput([2, 12, 12, 3], 'dilated x'), randomInput([3, 3, 3, 4], 'dilated w')];
  sameAsCpu(dilated, (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same', 'NHWC', 2), 1e-5, 'dilation 2, same');
  sameAsCpu(dilated, (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid', 'NHWC', [2, 3]), 1e-5, 'dilation [2, 3], valid');
});

test('conv2d gradients (input and filter) on the native kernels match cpu', { skip }, () => {
  for (const c of convCases) {
    const inputs = [randomInput(c.x, `x ${c.what}`), randomInput(c.filter, `w ${c.what}`)];
    sameGradientsAsCpu(inputs, (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad as 'same'), 1e-5, c.what);
  }
  // conv2dTranspose runs Conv2DBackpropInput forward (the mask head's upsampling if it were not a matMul).
  const dy = randomInput([2, 5, 5, 6], 'transpose x');
  const w = randomInput([3, 3, 4, 6], 'transpose w');
  sameAsCpu([dy, w], (a, b) => tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [2, 10, 10, 4], 2, 'same'), 1e-5, 'conv2dTranspose stride 2');
});

test('conv2d forward and gradients on the native kernels match cpu for random shapes, kernels 1-4, strides 1-3', { skip }, () => {
  const random = seedrandom('native conv cases');
  const pick = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  for (let i = 0; i < 24; i++) {
    const [kh, kw, stride] = [pick(1, 4), pick(1, 4), 1 + (i % 3)];
    const x = [pick(1, 3), pick(kh + 1, 13), pick(kw + 1, 13), pick(1, 6)];
    const pad = i % 2 === 0 ? 'same' : 'valid';
    const what = `random case ${i}: x [${x}] filter ${kh}x${kw} stride ${stride} ${pad}`;
    const inputs = [randomInput(x, `rx ${i}`), randomInput([kh, kw, x[3]!, pick(1, 6)], `rw ${i}`)];
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
    sameAsCpu(inputs, f, 1e-5, what);
    sameGradientsAsCpu(inputs, f, 1e-5, what);
  }
});

test('the native kernels leave no wasm tensors behind after a backward pass', { skip }, () => {
  const inputs = [randomInput([2, 9, 9, 3], 'leak x'), randomInput([3, 3, 3, 4], 'leak w'), randomInput([4], 'leak b')];
  const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
    tf.matMul(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias: b, activation: 'relu' }).reshape([2, -1]), tf.ones([100, 3]));
  tf.setBackend('wasm');
  gradientsOn('wasm', inputs, f); // warm up
  const tensors = tf.memory().numTensors;
  const dataIds = tf.backend().numDataIds();
  gradientsOn('wasm', inputs, f);
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.backend().numDataIds(), dataIds);
});

test('fused conv2d with bias and relu / linear matches cpu, forward and gradients; unsupported activations fall back', { skip }, () => {
  for (const activation of ['relu', 'linear'] as const) {
    for (const c of [convCases[0]!, convCases[1]!, convCases[3]!]) {
      const inputs = [randomInput(c.x, `x ${c.what}`), randomInput(c.filter, `w ${c.what}`), randomInput([c.filter[3]!], `b ${c.what}`)];
      const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: c.strides, pad: c.pad as 'same', bias: b, activation });
      sameAsCpu(inputs, f, 1e-5, `${c.what}, bias + ${activation}`);
      sameGradientsAsCpu(inputs, f, 1e-5, `${c.what}, bias + ${activation}`);
    }
  }
  const c = convCases[1]!;
  const inputs = [randomInput(c.x, 'fallback x'), randomInput(c.filter, 'fallback w'), randomInput([c.filter[3]!], 'fallback b')];
  for (const activation of ['elu', 'relu6'] as const) {
    sameAsCpu(inputs, (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias: b, activation }), 1e-5, `fused ${activation} (fallback)`);
  }
  sameAsCpu(inputs, (x, w) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same' }), 1e-5, 'no bias');
});

test('matMul on the native kernel: transposes, batches, broadcast batch, fused bias + relu, gradients', { skip }, () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const a = randomInput(ta ? [9, 7] : [7, 9], `a ${ta}`);
    const b = randomInput(tb ? [5, 9] : [9, 5], `b ${tb}`);
    const bias = randomInput([5], 'bias');
    sameAsCpu([a, b], (x, y) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), 1e-5, `matMul ${ta} ${tb}`);
    const fused = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeA: ta, transposeB: tb, bias: z, activation: 'relu' });
    sameAsCpu([a, b, bias], fused, 1e-5, `fused matMul ${ta} ${tb}`);
    sameGradientsAsCpu([a, b, bias], fused, 1e-5, `fused matMul ${ta} ${tb}`);
  }
  const batchedA = randomInput([3, 4, 6], 'batched a');
  const batchedB = randomInput([3, 5, 6], 'batched b');
  sameAsCpu([batchedA, batchedB], (x, y) => tf.matMul(x, y, false, true), 1e-5, 'batched, b transposed');
  const one = randomInput([1, 6, 5], 'broadcast b');
  sameAsCpu([batchedA, one], (x, y) => tf.matMul(x, y), 1e-5, 'batch 3 x batch 1');
  sameAsCpu([one, randomInput([4, 5, 2], 'broadcast a')], (x, y) => tf.matMul(x, y), 1e-5, 'batch 1 x batch 4');
  sameAsCpu([randomInput([2, 3, 4, 6], 'rank 4 a'), randomInput([2, 3, 6, 5], 'rank 4 b')], (x, y) => tf.matMul(x, y), 1e-5, 'rank 4 x rank 4');
  sameAsCpu([randomInput([2, 3, 4, 6], 'rank 4 a'), randomInput([6, 5], 'rank 2 b')], (x, y) => tf.matMul(x, y), 1e-5, 'rank 4 x rank 2');
  sameAsCpu([randomInput([1, 4, 6], 'rank 3 one'), randomInput([2, 3, 6, 5], 'rank 4 many')], (x, y) => tf.matMul(x, y), 1e-5, '[1] x [2, 3] batches');
  sameAsCpu([randomInput([2, 1, 4, 6], 'mixed a'), randomInput([1, 3, 6, 5], 'mixed b')], (x, y) => tf.matMul(x, y), 1e-5, '[2, 1] x [1, 3] batches (wasm kernel)');
  const dense = [randomInput([32, 60], 'dense x'), randomInput([60, 24], 'dense w')];
  sameGradientsAsCpu(dense, (x, w) => tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), 1e-5, 'dense layer');
  // prelu goes to the wasm kernel.
  const a = randomInput([4, 3], 'm a');
  const b = randomInput([3, 5], 'm b');
  sameAsCpu([a, b, randomInput([5], 'alpha')], (x, y, z) => tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, activation: 'prelu', preluActivationWeights: z }), 1e-5, 'prelu (fallback)');
});

/** Shapes big enough to be cut into blocks and shared among threads (blas-kernels.c: block_rows, MIN_PARALLEL_FLOPS). */
const blockedConvCases: ConvCase[] = [
  { what: '3x3 same, ROIs as the batch, 8 blocks', x: [6, 14, 14, 16], filter: [3, 3, 16, 16], strides: 1, pad: 'same' },
  // A block of the input gradient is 5 output rows by size, 7 by the window: blocks two apart must not meet.
  { what: '7x7 same over a wide image, one image, blocks of window height', x: [1, 40, 64, 4], filter: [7, 7, 4, 8], strides: 1, pad: 'same' },
  { what: '3x3 stride 2 valid, blocks across the image boundary', x: [3, 33, 30, 8], filter: [3, 3, 8, 16], strides: 2, pad: 'valid' },
  { what: '5x5 stride 2 same', x: [2, 48, 48, 8], filter: [5, 5, 8, 8], strides: 2, pad: 'same' },
  { what: '1x1 (a product in row blocks)', x: [2, 32, 32, 32], filter: [1, 1, 32, 48], strides: 1, pad: 'same' },
  // Columns of 8 MiB hold 1820 rows of K = 1152: 10 blocks, more than the filter gradient's 8 partials.
  { what: 'more blocks than the filter gradient has partials', x: [1, 128, 128, 128], filter: [3, 3, 128, 2], strides: 1, pad: 'same' },
];

test('on two threads, work cut into blocks matches cpu, and equals one thread\'s to the bit (convs, both gradients, products)', { skip }, () => {
  if (load.kind !== 'loaded') return;
  const cases: Array<{ what: string; inputs: Input[]; f: (...xs: tf.Tensor[]) => tf.Tensor }> = blockedConvCases.map((c) => ({
    what: c.what,
    inputs: [randomInput(c.x, `bx ${c.what}`), randomInput(c.filter, `bw ${c.what}`), randomInput([c.filter[3]!], `bb ${c.what}`)],
    f: (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: c.strides, pad: c.pad as 'same', bias: b, activation: 'relu' }),
  }));
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    // 600 rows: row blocks; 64 rows by 1000 columns: column blocks.
    for (const [m, n, k] of [[600, 40, 300], [64, 1000, 200]] as const) {
      cases.push({
        what: `matMul ${m}x${k} by ${k}x${n}, transposes ${ta} ${tb}`,
        inputs: [randomInput(ta ? [k, m] : [m, k], `ma ${m} ${ta}`), randomInput(tb ? [n, k] : [k, n], `mb ${n} ${tb}`), randomInput([n], `mbias ${n}`)],
        f: (a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: ta, transposeB: tb, bias, activation: 'relu' }),
      });
    }
  }
  const onWasm = (threads: number) => {
    load.kernels.setThreads(threads);
    try {
      return cases.map(({ inputs, f }) => [...runOn('wasm', inputs, f), ...gradientsOn('wasm', inputs, f)]);
    } finally {
      load.kernels.setThreads(1);
    }
  };
  const [one, two] = [onWasm(1), onWasm(2)];
  cases.forEach(({ what, inputs, f }, i) => {
    assertAllClose(two[i]!, [...runOn('cpu', inputs, f), ...gradientsOn('cpu', inputs, f)], 1e-5, `${what}, 2 threads`);
    two[i]!.forEach((values, j) => assert.deepEqual(values, one[i]![j], `${what}: output ${j} on 2 threads differs from 1 thread's`));
  });
});

test('linear\'s gradient takes the transpose flags on the native kernels (no explicit transposes), with cpu\'s values', { skip }, async () => {
  tf.setBackend('wasm');
  assert.equal(nativeTransposedProducts(), true);
  const inputs = [randomInput([300, 96], 'linear x'), randomInput([96, 40], 'linear w'), randomInput([40], 'linear b')];
  const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D);
  const { kernelNames } = await tf.profile(() => tf.tidy(() => tf.grads((x: tf.Tensor, w: tf.Tensor) => f(x, w, tf.zeros([40])).sum())([tf.ones([300, 96]), tf.ones([96, 40])])));
  assert.ok(!kernelNames.includes('Transpose'), `kernels: ${kernelNames.join(', ')}`);
  sameGradientsAsCpu(inputs, f, 1e-5, 'linear');
  sameGradientsAsCpu(inputs.slice(0, 2), (x, w) => linear(x as tf.Tensor2D, w as tf.Tensor2D), 1e-5, 'linear without bias');
  tf.setBackend('cpu');
  assert.equal(nativeTransposedProducts(), false);
});

test('RUNNER_NATIVE_KERNELS=off (or 0, false, no) turns the native kernels off; unset or anything else leaves them on', () => {
  for (const value of ['off', 'OFF', '0', 'false', 'no']) assert.equal(nativeKernelsDisabled({ RUNNER_NATIVE_KERNELS: value }), true, value);
  for (const value of [undefined, '', 'on', '1']) assert.equal(nativeKernelsDisabled({ RUNNER_NATIVE_KERNELS: value }), false, String(value));
});
