// What we register and run on the webgpu backend, against the cpu backend, on whatever WebGPU device this
// machine has: the lent GPU, or a software Vulkan device (Mesa >= 24's lavapipe: CI installs it, see
// docs/backend.md), where the same WGSL runs on the CPU. Without a device the tests skip with the reason.
//
// The two backends never share a tensor (webgpu in Node cannot hand data to the cpu backend synchronously):
// each side builds its inputs from the same JS arrays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { addAll } from '../../stages/model/add-all.js';
import { selectBackend } from '../../stages/model/backend.js';
import { clipFactor } from '../../stages/model/clip-factor.js';
import { batchNorm, upsample2x } from '../../stages/model/layers.js';
import { ParameterStore } from '../../stages/model/params.js';
import { weightDecayLoss } from '../../stages/model/losses.js';
import { MaskRcnn } from '../../stages/model/mask-rcnn.js';
import { buildTrainBatch } from '../../stages/model/molding.js';
import { awaitedReadBack, synchronousReadBack } from '../../stages/model/read-back.js';
import { seededRng } from '../../stages/model/sampler.js';
import { KernelCalls } from '../../stages/model/kernels/kernel-calls.js';
import { filterGradientByPatches, inputGradientByPatches } from '../../stages/model/kernels/webgpu/conv-gradients.js';
import { patchGeometry } from '../../stages/model/kernels/webgpu/conv-patches.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { squares } from '../helpers/square-nuclei.js';
import { TINY_SIZE, tinyMaskRcnnConfig } from '../helpers/tiny-mask-rcnn.js';

const noDevice = await (async () => {
  try {
    await selectBackend('webgpu', () => {});
    return false;
  } catch (error) {
    return `no WebGPU device here (${(error as Error).message.split('\n')[0]}); CI installs Mesa's lavapipe for these tests (docs/backend.md)`;
  }
})();

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const random = seededRng(seed);
  return Float32Array.from({ length: n }, () => 2 * random() - 1);
}

/** Runs `build` on the cpu backend, then on webgpu, and returns both results' values. */
async function onBoth(build: () => tf.Tensor): Promise<{ cpu: Float32Array; gpu: Float32Array }> {
  await tf.setBackend('cpu');
  const onCpu = build();
  const cpu = onCpu.dataSync() as Float32Array;
  onCpu.dispose();
  await tf.setBackend('webgpu');
  const onGpu = build();
  const gpu = (await onGpu.data()) as Float32Array;
  onGpu.dispose();
  return { cpu, gpu };
}

/** Every element within `relative` of the reference, elements smaller than `floor` compared at the floor. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, relative = 1e-4, floor = 1e-2): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!) / Math.max(Math.abs(expected[i]!), floor);
    if (!(error <= worst)) [worst, at] = [error, i];
  }
  assert.ok(worst <= relative, `${what}: element ${at} is ${actual[at]} on webgpu, ${expected[at]} on cpu (relative error ${worst.toExponential(2)})`);
}

const convCases = [
  { x: [2, 9, 11, 3], filter: [3, 3, 3, 5], stride: 1, pad: 'same' },
  { x: [1, 8, 8, 4], filter: [1, 1, 4, 6], stride: 1, pad: 'valid' }, // 1x1: a matMul on webgpu
  { x: [2, 7, 5, 16], filter: [1, 1, 16, 8], stride: 1, pad: 'same' },
  { x: [1, 10, 7, 2], filter: [5, 3, 2, 3], stride: 1, pad: 'valid' },
  { x: [1, 6, 7, 3], filter: [2, 4, 3, 2], stride: 1, pad: 'same' }, // even taps: unequal padding before and after
  { x: [2, 12, 12, 3], filter: [3, 3, 3, 4], stride: 2, pad: 'same' },
  { x: [1, 13, 9, 4], filter: [7, 7, 4, 2], stride: 2, pad: 'same' },
  { x: [1, 16, 16, 8], filter: [1, 1, 8, 4], stride: 2, pad: 'valid' },
  { x: [2, 15, 13, 6], filter: [1, 1, 6, 5], stride: 2, pad: 'same' }, // odd sizes: the last row/column unread
  { x: [1, 11, 12, 3], filter: [3, 3, 3, 4], stride: 3, pad: 'valid' },
  { x: [2, 8, 8, 4], filter: [2, 2, 4, 3], stride: 2, pad: 'valid' }, // the mask head's transposed conv
  { x: [2, 32, 32, 8], filter: [3, 3, 8, 8], stride: 1, pad: 'same' }, // 2,048 rows: split-K in 8 slices
  { x: [2, 40, 24, 16], filter: [1, 1, 16, 8], stride: 1, pad: 'valid' }, // 1,920 rows, 1x1: split-K without patches
] as const;

for (const c of convCases) {
  const label = `x [${c.x}] filter [${c.filter}] stride ${c.stride} ${c.pad}`;
  test(`Conv2DBackpropFilter and Conv2DBackpropInput on webgpu equal the cpu backend's, ${label}`, { skip: noDevice }, async () => {
    const x = values(tf.util.sizeFromShape([...c.x]), 1);
    const w = values(tf.util.sizeFromShape([...c.filter]), 2);
    const outShape = tf.conv2d(tf.zeros([...c.x]) as tf.Tensor4D, tf.zeros([...c.filter]) as tf.Tensor4D, c.stride, c.pad).shape;
    const dy = values(tf.util.sizeFromShape(outShape), 3);
    const attrs = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const filterGrad = await onBoth(() =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor(x, [...c.x]), dy: tf.tensor(dy, outShape) }, { ...attrs, filterShape: [...c.filter] } as unknown as tf.NamedAttrMap) as tf.Tensor);
    // A gradient element sums up to thousands of products: its rounding error scales with the largest sums,
    // so elements below 1% of the largest are compared at that floor.
    const floor = (v: Float32Array) => Math.max(1e-2, 1e-2 * v.reduce((m, e) => Math.max(m, Math.abs(e)), 0));
    assertClose(filterGrad.gpu, filterGrad.cpu, 'filter gradient', 1e-4, floor(filterGrad.cpu));
    const inputGrad = await onBoth(() =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: tf.tensor(dy, outShape), filter: tf.tensor(w, [...c.filter]) }, { ...attrs, inputShape: [...c.x] } as unknown as tf.NamedAttrMap) as tf.Tensor);
    assertClose(inputGrad.gpu, inputGrad.cpu, 'input gradient', 1e-4, floor(inputGrad.cpu));
  });
}

test('the filter gradient in patch-matrix chunks (8 chunks, summed in two AddN levels) equals the cpu backend\'s', { skip: noDevice }, async () => {
  const xShape = [2, 20, 20, 4] as const;
  const filterShape = [3, 3, 4, 6];
  const x = values(tf.util.sizeFromShape([...xShape]), 5);
  const dy = values(2 * 20 * 20 * 6, 6);
  const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape };
  await tf.setBackend('cpu');
  const onCpu = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor(x, [...xShape]), dy: tf.tensor(dy, [2, 20, 20, 6]) }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const cpu = onCpu.dataSync() as Float32Array;
  await tf.setBackend('webgpu');
  const xt = tf.tensor(x, [...xShape]);
  const dyt = tf.tensor(dy, [2, 20, 20, 6]);
  const info = tf.backend_util.computeConv2DInfo([...xShape], filterShape as [number, number, number, number], [1, 1], 1, 'same', undefined, false, 'channelsLast');
  const geometry = patchGeometry(info);
  const run = () => {
    const calls = new KernelCalls('webgpu', tf.backend());
    const result = filterGradientByPatches(calls, xt, dyt, geometry, filterShape, 4 * 36 * 100); // 100 rows a chunk
    calls.dispose(result);
    return tf.engine().makeTensorFromTensorInfo(result);
  };
  run().dispose(); // the first run makes the kept rows of ones
  const before = tf.backend().numDataIds();
  const gpu = run();
  assertClose(await gpu.data() as Float32Array, cpu, 'chunked filter gradient');
  gpu.dispose();
  assert.equal(tf.backend().numDataIds(), before, 'no intermediate left behind');
  tf.dispose([xt, dyt, onCpu]);
});

test('the strided input gradient in image chunks (5 images, 2 a chunk, concatenated) equals the cpu backend\'s', { skip: noDevice }, async () => {
  const xShape = [5, 9, 8, 3] as [number, number, number, number];
  const filterShape = [3, 3, 3, 4] as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, [2, 2], 1, 'same', undefined, false, 'channelsLast');
  const dyShape = [5, info.outHeight, info.outWidth, 4];
  const dy = values(tf.util.sizeFromShape(dyShape), 11);
  const w = values(tf.util.sizeFromShape(filterShape), 12);
  const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: xShape };
  await tf.setBackend('cpu');
  const onCpu = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: tf.tensor(dy, dyShape), filter: tf.tensor(w, filterShape) }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const cpu = onCpu.dataSync() as Float32Array;
  await tf.setBackend('webgpu');
  const dyt = tf.tensor(dy, dyShape);
  const wt = tf.tensor(w, filterShape);
  const oneImage = 4 * info.outHeight * info.outWidth * 3 * 3 * 3;
  const run = (maxBytes: number) => {
    const calls = new KernelCalls('webgpu', tf.backend());
    const result = inputGradientByPatches(calls, dyt, wt, patchGeometry(info), maxBytes);
    calls.dispose(result);
    return result && tf.engine().makeTensorFromTensorInfo(result);
  };
  assert.equal(run(oneImage - 1), undefined, 'one image over the limit: the caller takes another route');
  const before = tf.backend().numDataIds();
  const gpu = run(2 * oneImage)!;
  assert.deepEqual(gpu.shape, xShape);
  assertClose(await gpu.data() as Float32Array, cpu, 'chunked input gradient');
  gpu.dispose();
  assert.equal(tf.backend().numDataIds(), before, 'no intermediate left behind');
  tf.dispose([dyt, wt, onCpu]);
});

test('strided conv gradients on webgpu run as matMuls over patches, not the stock direct loops', { skip: noDevice }, async () => {
  await tf.setBackend('webgpu');
  const backend = tf.backend() as unknown as { runWebGPUProgram: (program: { shaderKey?: string; constructor: { name: string } }, ...rest: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  const programs: string[] = [];
  backend.runWebGPUProgram = function (program, ...rest) {
    programs.push(program.constructor.name);
    return run.call(this, program, ...rest);
  };
  try {
    const x = tf.tensor(values(2 * 12 * 12 * 3, 7), [2, 12, 12, 3]) as tf.Tensor4D;
    const w = tf.tensor(values(3 * 3 * 3 * 4, 8), [3, 3, 3, 4]) as tf.Tensor4D;
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same').sum())([x, w]);
    await Promise.all(grads.map((g) => g.data()));
    tf.dispose([x, w, ...grads]);
  } finally {
    backend.runWebGPUProgram = run;
  }
  assert.ok(programs.includes('Im2colProgram') && programs.includes('Col2imProgram'), `programs run: ${programs.join(', ')}`);
  assert.ok(!programs.some((p) => p.startsWith('Conv2DDer')), `a stock conv-gradient program ran: ${programs.join(', ')}`);
});

test('Sum and Mean gradients (our broadcastTo form) on webgpu equal the cpu backend\'s', { skip: noDevice }, async () => {
  const x = values(4 * 5 * 6, 4);
  for (const [reduce, axis] of [[tf.sum, 1], [tf.mean, [0, 2]], [tf.sum, undefined], [tf.mean, -1]] as const) {
    const grads = await onBoth(() => tf.grad((t: tf.Tensor) => tf.mul(reduce(t, axis as number | number[] | undefined), 3))(tf.tensor(x, [4, 5, 6])));
    assertClose(grads.gpu, grads.cpu, `${reduce === tf.sum ? 'sum' : 'mean'} over ${String(axis)}`);
  }
});

test('the Relu gradient on webgpu is one dispatch and equals the cpu backend\'s, zeros and NaN included', { skip: noDevice }, async () => {
  const x = Array.from(values(3 * 50, 95));
  x[0] = 0;
  x[1] = Number.NaN;
  x[2] = -0;
  const dy = values(3 * 50, 96);
  const grads = await onBoth(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), tf.tensor(dy, [3, 50]))))(tf.tensor(x, [3, 50])));
  assert.ok(Number.isNaN(grads.cpu[1]!) && Number.isNaN(grads.gpu[1]!), 'NaN passes through on both');
  grads.cpu[1] = grads.gpu[1] = 0;
  assertClose(grads.gpu, grads.cpu, 'relu gradient', 0);
  await tf.setBackend('webgpu');
  const input = tf.tensor(x, [3, 50]);
  const upstream = tf.tensor(dy, [3, 50]);
  const backend = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
  const original = backend.runWebGPUProgram;
  let dispatches = 0;
  backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) { dispatches++; return original.apply(this, args); };
  const dx = tf.grad((t: tf.Tensor) => tf.relu(t))(input, upstream);
  backend.runWebGPUProgram = original;
  assert.equal(dispatches, 2, 'the forward relu and one program for its gradient');
  tf.dispose([input, upstream, dx]);
});

test('addAll of more inputs than a webgpu shader can bind, and upsample2x, equal the cpu backend\'s', { skip: noDevice }, async () => {
  const parts = Array.from({ length: 11 }, (_, k) => values(3 * 7, 10 + k));
  const sum = await onBoth(() => addAll(parts.map((p) => tf.tensor(p, [3, 7]))));
  assertClose(sum.gpu, sum.cpu, 'addAll of 11');
  const image = values(2 * 5 * 3 * 4, 30);
  const up = await onBoth(() => upsample2x(tf.tensor(image, [2, 5, 3, 4]) as tf.Tensor4D));
  assertClose(up.gpu, up.cpu, 'upsample2x', 0);
});

test('float32, int32 and bool tensors uploaded through writeBuffer read back unchanged', { skip: noDevice }, async () => {
  await tf.setBackend('webgpu');
  for (const [dtype, n] of [['float32', 1], ['float32', 100003], ['int32', 4097], ['bool', 1001]] as const) {
    const source = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : dtype === 'int32' ? i * 7 - 50 : Math.fround(Math.sin(i) * 1e3)));
    const t = tf.tensor(source, [n], dtype);
    assert.deepEqual(Array.from(await t.data()), source, `${dtype} x ${n}`);
    t.dispose();
  }
});

test('the fused AMSGrad update on webgpu equals the op-by-op update on cpu over three steps (one with a clip factor), also for a variable of 5M elements', { skip: noDevice }, async () => {
  const shapes = [[3, 5], [257], [5_000_000]]; // the last exceeds 65,535 workgroups of 64: a reshaped dispatch
  const starts = shapes.map((s, k) => values(tf.util.sizeFromShape(s), 40 + k));
  const gradients = [0, 1, 2].map((step) => shapes.map((s, k) => values(tf.util.sizeFromShape(s), 50 + 3 * k + step)));
  const train = async (backend: 'cpu' | 'webgpu') => {
    await tf.setBackend(backend);
    const optimizer = new Amsgrad({ learningRate: 1e-2 });
    const variables = tf.tidy(() => Object.fromEntries(starts.map((s, k) => [`v${k}`, tf.variable(tf.tensor(s, shapes[k]), true, `amsgradCheck_${backend}_${k}`)])));
    for (const [index, step] of gradients.entries()) {
      const grads = Object.fromEntries(step.map((g, k) => [`v${k}`, tf.tensor(g, shapes[k])]));
      const clip = index === 1 ? tf.scalar(0.37) : undefined; // the second step's gradients clipped
      optimizer.applyGradients(grads, variables, clip);
      tf.dispose([...Object.values(grads), ...(clip ? [clip] : [])]);
    }
    const out = await Promise.all(Object.values(variables).map((v) => v.data() as Promise<Float32Array>));
    const state = await optimizer.withState((tensors) => Promise.all(Object.values(tensors).map((t) => t.data())));
    tf.dispose(Object.values(variables));
    optimizer.dispose();
    return { out, state };
  };
  const reference = await train('cpu');
  // Two programs per variable on webgpu (packed m, v, vhat; the variable), against thirteen ops on cpu.
  await tf.setBackend('webgpu');
  const backend = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  const probe = tf.variable(tf.zeros([1000]), true, 'amsgradDispatchProbe');
  const probeGradient = tf.ones([1000]);
  const probeOptimizer = new Amsgrad({ learningRate: 1e-2 });
  probeOptimizer.applyGradients({ p: probeGradient }, { p: probe }); // the first also fills the slots with zeros
  let dispatches = 0;
  backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) { dispatches++; return run.apply(this, args); };
  probeOptimizer.applyGradients({ p: probeGradient }, { p: probe });
  backend.runWebGPUProgram = run;
  assert.equal(dispatches, 2, 'dispatches of one fused update');
  tf.dispose([probe, probeGradient]);
  probeOptimizer.dispose();
  const numTensorsBefore = (await tf.setBackend('webgpu'), tf.memory().numTensors);
  const fused = await train('webgpu');
  assert.equal(tf.memory().numTensors, numTensorsBefore, 'no tensor leaked by the fused update');
  fused.out.forEach((values, k) => assertClose(values, reference.out[k]!, `variable ${k}`, 1e-5));
  // The state at the scale of its largest element: m = beta1 * m + (1 - beta1) * g cancels to near zero in some of
  // 5M elements, and a GPU that contracts it into one fma (the H100 does, lavapipe does not) rounds it at the scale
  // of its operands, not of the result (8e-8 off by 8e-9 there: one float32 ulp of 0.1).
  fused.state.forEach((values, k) => {
    const expected = Array.from(reference.state[k]!);
    assertClose(Array.from(values), expected, `optimizer state ${k}`, 1e-5, expected.reduce((most, x) => Math.max(most, Math.abs(x)), 0));
  });
});

test('AMSGrad state packed on webgpu round-trips through withState/restore: a resumed optimizer continues identically', { skip: noDevice }, async () => {
  await tf.setBackend('webgpu');
  const start = values(2 * 3 * 4, 90);
  const steps = [91, 92, 93].map((seed) => values(2 * 3 * 4, seed));
  const a = tf.variable(tf.tensor(start, [2, 3, 4]), true, 'resumeA');
  const b = tf.variable(tf.tensor(start, [2, 3, 4]), true, 'resumeB');
  const straight = new Amsgrad({ learningRate: 1e-2 });
  const first = new Amsgrad({ learningRate: 1e-2 });
  const apply = (optimizer: Amsgrad, variable: tf.Variable, g: Float32Array) => tf.tidy(() => optimizer.applyGradients({ w: tf.tensor(g, [2, 3, 4]) }, { w: variable }));
  for (const g of steps.slice(0, 2)) {
    apply(straight, a, g);
    apply(first, b, g);
  }
  const saved = await first.withState((state) => Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v.clone()])));
  assert.deepEqual(Object.keys(saved).sort(), ['amsgrad/iterations', 'amsgrad/m/w', 'amsgrad/v/w', 'amsgrad/vhat/w']);
  assert.deepEqual(saved['amsgrad/m/w']!.shape, [2, 3, 4]);
  first.dispose();
  const resumed = new Amsgrad({ learningRate: 1e-2 });
  resumed.restore(saved); // separate slots, packed again by the next update
  apply(straight, a, steps[2]!);
  apply(resumed, b, steps[2]!);
  assert.deepEqual(Array.from(await b.data()), Array.from(await a.data()));
  tf.dispose([a, b, ...Object.values(saved)]);
  straight.dispose();
  resumed.dispose();
});

// The recipe's settings; batch norm training; and a weight decay large enough to matter in one step (1e-4 moves
// the gradients by ~1e-7: a decay folded wrongly into the webgpu optimizer would not show).
for (const { trainBatchNorm, weightDecay } of [{ trainBatchNorm: false, weightDecay: 1e-4 }, { trainBatchNorm: true, weightDecay: 1e-4 }, { trainBatchNorm: false, weightDecay: 30 }]) {
test(`one Mask R-CNN training step on webgpu (awaited read-back) gives the cpu backend's losses and weights, batch norm ${trainBatchNorm ? 'training' : 'frozen (the recipe)'}, weight decay ${weightDecay}`, { skip: noDevice }, async () => {
  const size = TINY_SIZE;
  const config = tinyMaskRcnnConfig({ detection: { minConfidence: 0 }, backbone: { fpnChannels: 8, trainBatchNorm }, train: { weightDecay, clipNorm: 5 } });
  const samples = [squares(size, size, [[5, 5], [30, 35]])];
  await tf.setBackend('cpu');
  const onCpu = new MaskRcnn(config, { readBack: { ...synchronousReadBack, roiAlign: awaitedReadBack.roiAlign } }); // the awaited read-back's ROIAlign: the same arithmetic
  onCpu.build();
  const initial = new Map(onCpu.store.names().map((name) => [name, onCpu.store.get(name)!.dataSync().slice()]));
  const cpuBatch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
  const expected = await onCpu.trainStep(new Amsgrad({ learningRate: 1e-3 }), cpuBatch);
  assert.ok(expected.loss_mask > 0, 'GT boxes as proposals give positive ROIs, so the heads are exercised');

  await tf.setBackend('webgpu');
  const onGpu = new MaskRcnn(config);
  onGpu.build();
  for (const [name, value] of initial) onGpu.store.get(name)!.assign(tf.tensor(value, onGpu.store.get(name)!.shape));
  const gpuBatch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
  const actual = await onGpu.trainStep(new Amsgrad({ learningRate: 1e-3 }), gpuBatch);
  for (const [name, value] of Object.entries(expected)) {
    assertClose([actual[name as keyof typeof actual]], [value], `loss ${name}`, 1e-4, 1e-3);
  }
  // Weights within 1% of one step (the learning rate): AMSGrad's first step moves every weight by ~lr * sign(g),
  // so a float32 difference in a gradient near zero moves a weight by a little; a wrong gradient moves it by ~lr.
  // (Measured with lavapipe: 8 of 338,190 weights differ by over 1e-6, the worst by 5.5e-6.)
  for (const name of onCpu.store.names()) {
    const gpu = (await onGpu.store.get(name)!.data()) as Float32Array;
    const cpu = onCpu.store.get(name)!.dataSync();
    // The moving statistics (batch norm in training) are batch means and variances: relative to their size.
    // With batch statistics the gradient into a conv before a batch norm is a difference of near-equal terms, and
    // tfjs' own ops on webgpu differ from cpu by up to 1.4e-5 after the step (measured, stock kernels): 10% of a
    // step there (a wrong gradient flips signs: ~2 steps). The layer's gradients themselves are compared to 1e-4
    // relative in the batch-norm test above.
    const tolerance = trainBatchNorm ? 1e-4 : 1e-5;
    const scale = (i: number) => (name.includes('/moving_') ? Math.max(1, Math.abs(cpu[i]!)) : 1);
    for (let i = 0; i < cpu.length; i++) {
      assert.ok(Math.abs(gpu[i]! - cpu[i]!) <= tolerance * scale(i), `weight ${name}[${i}]: ${gpu[i]} on webgpu, ${cpu[i]} on cpu`);
    }
  }
  onGpu.dispose();
  onCpu.dispose();
});
}

for (const [training, relu] of [[false, false], [false, true], [true, false], [true, true]] as const) {
  test(`the model's batch norm (${training ? 'training: batch statistics' : 'frozen statistics, as the recipe'}${relu ? ', then ReLU' : ''}) on webgpu equals the cpu backend's: output, dx, dgamma, dbeta, moving statistics`, { skip: noDevice }, async () => {
    const shape = [2, 5, 6, 7];
    const x = values(tf.util.sizeFromShape(shape), 70).map((v, i) => 3 * v + (i % 7));
    const weight = values(tf.util.sizeFromShape(shape), 71);
    const start = { gamma: values(7, 72).map((v) => 1 + v / 2), beta: values(7, 73), mean: values(7, 74), variance: values(7, 75).map((v) => 1.5 + v) };
    const run = async (backend: 'cpu' | 'webgpu') => {
      await tf.setBackend(backend);
      const store = new ParameterStore(1);
      const input = tf.tensor(x, shape);
      const w = tf.tensor(weight, shape);
      const loss = (t: tf.Tensor) => tf.sum(tf.mul(batchNorm(store, 'bn', t, { training, relu }), w)) as tf.Scalar;
      tf.dispose(loss(input)); // creates the variables
      for (const [key, v] of Object.entries({ gamma: start.gamma, beta: start.beta, moving_mean: start.mean, moving_variance: start.variance })) store.get(`bn/${key}`)!.assign(tf.tensor(v));
      const gamma = store.get('bn/gamma')!;
      const beta = store.get('bn/beta')!;
      const { value, grads } = tf.variableGrads(() => loss(input), [gamma, beta]);
      const dgamma = grads[gamma.name];
      const dbeta = grads[beta.name];
      const dx = tf.grad(loss)(input); // (each call updates the moving statistics in training mode: same calls on both)
      value.dispose();
      const read = async (t: tf.Tensor) => Float32Array.from(await t.data());
      const y = batchNorm(store, 'bn', input, { training: false, relu }); // with the moving statistics
      const out = { y: await read(y), dx: await read(dx), dgamma: await read(dgamma!), dbeta: await read(dbeta!), movingMean: await read(store.get('bn/moving_mean')!), movingVariance: await read(store.get('bn/moving_variance')!) };
      if (backend === 'webgpu' && !training) {
        // The frozen gradient's dispatches: forward 1 (with the ReLU), the loss's mul and sum 2, their gradients 2,
        // ours 4 (5 with the ReLU's mask).
        const counted = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
        const original = counted.runWebGPUProgram;
        let dispatches = 0;
        counted.runWebGPUProgram = function (this: unknown, ...args: unknown[]) { dispatches++; return original.apply(this, args); };
        const again = tf.grad(loss)(input);
        counted.runWebGPUProgram = original;
        await again.data();
        again.dispose();
        assert.ok(dispatches <= (relu ? 10 : 9), `${dispatches} dispatches for a frozen batch norm's forward and backward with the loss`);
      }
      tf.dispose([input, w, y, dx, dgamma!, dbeta!]);
      store.dispose();
      return out;
    };
    const expected = await run('cpu');
    const actual = await run('webgpu');
    for (const key of Object.keys(expected) as (keyof typeof expected)[]) assertClose(actual[key], expected[key], key);
    if (relu) assert.ok(expected.y.some((v) => v === 0) && expected.y.some((v) => v > 0), 'the ReLU cuts some outputs and passes others');
  });
}

test('the fused batch norm (training) on webgpu equals tf.layers\' batchNormalization on cpu: output, gradients, moving statistics, in ten dispatches', { skip: noDevice }, async () => {
  const shape = [2, 5, 6, 7];
  const x = values(tf.util.sizeFromShape(shape), 60).map((v, i) => 3 * v + (i % 7)); // channels off zero mean
  const weight = values(tf.util.sizeFromShape(shape), 61);
  const gamma = values(7, 62).map((v) => 1 + v / 2);
  const beta = values(7, 63);
  const run = async (backend: 'cpu' | 'webgpu', layer: tf.layers.Layer) => {
    await tf.setBackend(backend);
    layer.build(shape);
    layer.setWeights([tf.tensor(gamma), tf.tensor(beta), tf.zeros([7]), tf.ones([7])]);
    const input = tf.tensor(x, shape);
    const w = tf.tensor(weight, shape);
    // d/d(x, gamma, beta) of sum(y * w): a non-uniform dy, so every term of the gradient matters.
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, w)) as tf.Scalar);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t, { training: true }) as tf.Tensor, w)))(input);
    const y = layer.apply(input, { training: false }) as tf.Tensor; // after three training calls: the moving statistics
    const out = {
      loss: (await value.data())[0]!,
      dx: (await dx.data()) as Float32Array,
      dgamma: (await grads[layer.weights[0]!.name]!.data()) as Float32Array,
      dbeta: (await grads[layer.weights[1]!.name]!.data()) as Float32Array,
      inference: (await y.data()) as Float32Array,
    };
    tf.dispose([input, w, value, dx, y, ...Object.values(grads)]);
    return out;
  };
  const { FusedBatchNormalization } = await import('../../bench/device/fused-batch-norm-layer.js');
  const expected = await run('cpu', tf.layers.batchNormalization({ name: 'bnReference' }));
  const fused = new FusedBatchNormalization({ name: 'bnFused' });
  const actual = await run('webgpu', fused);
  assertClose([actual.loss], [expected.loss], 'loss');
  assertClose(actual.dx, expected.dx, 'dx');
  assertClose(actual.dgamma, expected.dgamma, 'dgamma');
  assertClose(actual.dbeta, expected.dbeta, 'dbeta');
  assertClose(actual.inference, expected.inference, 'inference with the moving statistics');

  const backend = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
  const original = backend.runWebGPUProgram;
  let dispatches = 0;
  backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) { dispatches++; return original.apply(this, args); };
  const input = tf.tensor(x, shape); // uploaded before counting
  await input.data();
  dispatches = 0;
  const dxOnly = tf.grad((t: tf.Tensor) => tf.sum(fused.apply(t, { training: true }) as tf.Tensor))(input);
  backend.runWebGPUProgram = original;
  tf.dispose([input, dxOnly]);
  // forward: mean, centred squares, variance, normalise, two moving averages; backward: two sums, dy*xhat, dx;
  // plus the loss's sum and its gradient's fill.
  assert.ok(dispatches <= 13, `${dispatches} dispatches for one layer's forward and backward`);
});

test('a dispatch whose uniforms were seen before writes no uniform buffer, and its result is still right', { skip: noDevice }, async () => {
  await tf.setBackend('webgpu');
  const backend = tf.backend() as unknown as { queue: { writeBuffer: (...args: unknown[]) => unknown } };
  const a = tf.tensor(values(1000, 70), [10, 100]);
  const b = tf.tensor(values(1000, 71), [10, 100]);
  await Promise.all([a.data(), b.data()]); // uploaded before counting
  const original = backend.queue.writeBuffer;
  let writes = 0;
  backend.queue.writeBuffer = function (this: unknown, ...args: unknown[]) { writes++; return original.apply(this, args); };
  try {
    const first = tf.mul(a, b);
    const firstWrites = writes;
    const second = tf.mul(b, a); // same shapes: the same uniform bytes
    assert.equal(writes, firstWrites, 'the second multiply wrote no uniforms');
    const scaled = tf.mul(a, 2.5); // a scalar operand: an upload, and other uniforms
    assert.ok(writes > firstWrites, 'new uniforms are written');
    assert.deepEqual(await second.data(), await first.data());
    const expected = (await a.data()).map((v) => Math.fround(v * 2.5));
    assert.deepEqual(await scaled.data(), expected);
    tf.dispose([first, second, scaled]);
  } finally {
    backend.queue.writeBuffer = original;
    tf.dispose([a, b]);
  }
});

test('the weight decay on webgpu (sums of squares 7 weights a dispatch, one program per gradient) equals the cpu backend\'s value and gradients', { skip: noDevice }, async () => {
  const shapes = [[3, 3, 4, 8], [8], [1, 1, 8, 16], [5, 7], [2], [3, 3, 16, 2], [9, 4], [4, 4], [6]]; // 9: two groups
  const starts = shapes.map((shape, k) => values(tf.util.sizeFromShape(shape), 60 + k));
  const both = async (backend: 'cpu' | 'webgpu') => {
    await tf.setBackend(backend);
    const weights = shapes.map((shape, k) => tf.variable(tf.tensor(starts[k]!, shape), true, `decay_${backend}_${k}`));
    const { value, grads } = tf.variableGrads(() => weightDecayLoss(weights, 1e-4).mul(3) as tf.Scalar, weights);
    const read = [Float32Array.from(await value.data()), ...(await Promise.all(weights.map(async (w) => Float32Array.from(await grads[w.name]!.data()))))];
    tf.dispose([value, ...Object.values(grads), ...weights]);
    return read;
  };
  const cpu = await both('cpu');
  const gpu = await both('webgpu');
  assertClose(gpu[0]!, cpu[0]!, 'decay value', 1e-5, 1e-8);
  for (let k = 1; k < cpu.length; k++) assertClose(gpu[k]!, cpu[k]!, `gradient of weight ${k - 1}`, 1e-5, 1e-8);
});

test('the clip factor (global norm) on webgpu, sums of squares 7 gradients a dispatch, equals the cpu backend\'s', { skip: noDevice }, async () => {
  // 10 gradients: two dispatches, the second with 3 of its 7 terms used; sizes under, at and over the 256 threads
  // of a workgroup, and one of 5M elements (each term then split over 128 workgroups, 152 elements a thread).
  const shapes = [[3, 3, 8, 16], [16], [5_000_000], [1], [256], [257], [7, 300], [2, 2, 2], [1000], [64, 64]];
  const grads = shapes.map((s, k) => values(tf.util.sizeFromShape(s), 80 + k));
  for (const clipNorm of [5, 1e6]) { // clipped (the norm is ~1,300) and not
    const factor = await onBoth(() => clipFactor(grads.map((g, k) => tf.tensor(g, shapes[k])), clipNorm));
    assertClose(factor.gpu, factor.cpu, `clip factor, clipNorm ${clipNorm}`, 1e-5);
    if (clipNorm === 5) assert.ok(factor.cpu[0]! < 0.01, 'this case is clipped');
    else assert.equal(factor.cpu[0], 1);
  }
  // With weight-decay gradients c * w still to be added to some of them (two buffers a term in the programs).
  const weights = shapes.map((s, k) => values(tf.util.sizeFromShape(s), 120 + k));
  const decayed = (k: number) => k % 3 !== 1;
  const withDecay = await onBoth(() => clipFactor(grads.map((g, k) => tf.tensor(g, shapes[k])), 5,
    shapes.map((s, k) => (decayed(k) ? { weight: tf.tensor(weights[k]!, s), coefficient: 0.3 + k / 10 } : undefined))));
  assertClose(withDecay.gpu, withDecay.cpu, 'clip factor with decay terms', 1e-5);
  assert.ok(Math.abs(withDecay.cpu[0]! - (await onBoth(() => clipFactor(grads.map((g, k) => tf.tensor(g, shapes[k])), 5))).cpu[0]!) > 1e-6, 'the decay terms change the norm');
});

test('Sum over the leading axes (a bias gradient) runs as one matMul without a transpose and equals the cpu backend\'s', { skip: noDevice }, async () => {
  const cases: Array<{ shape: number[]; axis: number | number[]; keepDims: boolean }> = [
    { shape: [2, 9, 11, 5], axis: [0, 1, 2], keepDims: false },
    { shape: [2, 9, 11, 5], axis: [2, 0, 1], keepDims: true },
    { shape: [300, 7], axis: 0, keepDims: false },
    { shape: [300, 7], axis: -1, keepDims: false }, // not the leading axes: the stock kernel
    { shape: [3, 4, 5], axis: [0, 1], keepDims: false }, // 12 rows: under the threshold, stock
  ];
  for (const c of cases) {
    const x = values(tf.util.sizeFromShape(c.shape), 90);
    const result = await onBoth(() => tf.sum(tf.tensor(x, c.shape), c.axis, c.keepDims));
    assertClose(result.gpu, result.cpu, `sum of [${c.shape}] over ${JSON.stringify(c.axis)}`, 1e-5, 1e-3);
  }
  const backend = tf.backend() as unknown as { runWebGPUProgram: (program: { constructor: { name: string } }, ...rest: unknown[]) => unknown };
  const original = backend.runWebGPUProgram;
  const programs: string[] = [];
  backend.runWebGPUProgram = function (this: unknown, program, ...rest) { programs.push(program.constructor.name); return original.call(this, program, ...rest); };
  const input = tf.tensor(values(2 * 16 * 16 * 8, 91), [2, 16, 16, 8]);
  await input.data();
  tf.sum(input, [0, 1, 2]).dispose(); // the first sum over 512 rows also fills the row of ones it keeps
  programs.length = 0;
  const sum = tf.sum(input, [0, 1, 2]);
  backend.runWebGPUProgram = original;
  assert.ok(sum.shape.length === 1 && sum.shape[0] === 8);
  assert.ok(programs.length === 1 && programs[0]!.startsWith('MatMul'), `one matMul, got ${programs.join(', ')}`);
  tf.dispose([input, sum]);
});
