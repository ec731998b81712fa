// On the lent GPU (WebGPU through Dawn over Vulkan): (a) our webgpu conv-backprop kernels against the cpu
// backend, (b) a ResNet-50 B=2 512x512 training step with stock kernels vs ours, (c) per-kernel time of one
// step with tf.profile. Writes $OUT/webgpu-step.json. Bundle and run as docs/backend.md describes:
//   node_modules/.bin/esbuild bench/device/webgpu-step.ts --bundle --platform=node --format=esm \
//     --external:webgpu --outfile=.device/webgpu-step.mjs
//   run: bash .device/gpu-env.sh node .device/webgpu-step.mjs   (carry [".device"])
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerWebgpuTrainingKernels, restoreStockWebgpuKernels, type WebgpuKernelOptions } from '../../stages/model/kernels/webgpu/register.js';
import { median, resnet50Classifier, startWebgpu } from './webgpu-setup.js';

const outDir = process.env['OUT'] ?? '.';
const results: Record<string, unknown> = { started: new Date().toISOString() };
const save = () => {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'webgpu-step.json'), JSON.stringify(results, null, 1));
};

results['adapter'] = await startWebgpu();
if (!results['adapter']) {
  save();
  throw new Error('no WebGPU adapter');
}

// (a) correctness: gradients of conv2d w.r.t. input and filter, webgpu (stock and ours) vs cpu.
function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}
// Read back with data(), not dataSync(): webgpu's synchronous read path needs OffscreenCanvas, absent in Node.
async function convGrads(backend: string, xs: Float32Array, ws: Float32Array, xShape: number[], wShape: number[], stride: number, pad: 'same' | 'valid'): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const grads = tf.tidy(() => {
    const x = tf.tensor4d(xs, xShape as [number, number, number, number]);
    const w = tf.tensor4d(ws, wShape as [number, number, number, number]);
    const y = tf.conv2d(x, w, stride, pad);
    const weights = tf.tensor(seeded(y.size, 7), y.shape);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), weights)))([x, w]);
    return grads;
  });
  const values = await Promise.all(grads.map(async (g) => Float32Array.from(await g.data())));
  tf.dispose(grads);
  return values;
}
const maxAbsRelative = (a: Float32Array, e: Float32Array) => {
  let worst = 0;
  let scale = 0;
  e.forEach((v, i) => { scale = Math.max(scale, Math.abs(v)); worst = Math.max(worst, Math.abs((a[i] ?? NaN) - v)); });
  return Number.isFinite(worst) ? worst / Math.max(scale, 1e-4) : Infinity;
};
const cases: Array<[number[], number[], number, 'same' | 'valid']> = [];
for (let i = 0; i < 18; i++) {
  const k = 1 + (i % 4);
  const stride = 1 + (i % 3);
  cases.push([[1 + (i % 2), 7 + i, 9 + (i % 5), 1 + (i % 5)], [k, Math.max(1, k - (i % 2)), 1 + (i % 5), 2 + (i % 4)], stride, i % 2 ? 'valid' : 'same']);
}
cases.push([[2, 64, 64, 64], [3, 3, 64, 64], 1, 'same'], [[2, 64, 64, 64], [1, 1, 64, 128], 2, 'valid'], [[2, 128, 128, 3], [7, 7, 3, 64], 2, 'same']);
const correctness: unknown[] = [];
for (const [xShape, wShape, stride, pad] of cases) {
  const xs = seeded(xShape.reduce((a, b) => a * b), 1);
  const ws = seeded(wShape.reduce((a, b) => a * b), 2);
  const expected = await convGrads('cpu', xs, ws, xShape, wShape, stride, pad);
  const row: Record<string, unknown> = { x: xShape, filter: wShape, stride, pad };
  for (const [variant, options] of [['stock', null], ['ours', { input: 'all' }]] as Array<[string, WebgpuKernelOptions | null]>) {
    if (options) registerWebgpuTrainingKernels(options);
    else restoreStockWebgpuKernels();
    const actual = await convGrads('webgpu', xs, ws, xShape, wShape, stride, pad);
    row[variant] = { dx: maxAbsRelative(actual[0]!, expected[0]!), dw: maxAbsRelative(actual[1]!, expected[1]!) };
  }
  correctness.push(row);
}
results['correctness'] = correctness;
results['correctnessWorstOurs'] = Math.max(...correctness.map((r) => {
  const ours = (r as { ours: { dx: number; dw: number } }).ours;
  return Math.max(ours.dx, ours.dw);
}));
save();
console.log('correctness worst (ours):', results['correctnessWorstOurs']);

// (b) ResNet-50 (bottleneck [3, 4, 6, 3]) B=2 512x512, global pool + dense(2), Adam: the example's model.
await tf.setBackend('webgpu');
const B = Number(process.argv[2] ?? 2);
const S = Number(process.argv[3] ?? 512);
const model = resnet50Classifier(S);
const X = tf.randomUniform([B, S, S, 3]);
const Y = tf.oneHot(tf.tensor1d([0, 1].slice(0, B), 'int32'), 2);
results['resnet50'] = { batch: B, size: S, params: model.countParams() };

const variants: Array<[string, WebgpuKernelOptions | null]> = [
  ['stock', null], ['ours: filter(stride 1) + input(all strides)', { input: 'all' }], ['ours: filter + input (stride 1 each)', { input: 'stride1' }],
  ['ours: filter (stride 1) only', { input: 'none' }],
];
const steps: Record<string, unknown> = {};
for (const [name, options] of variants) {
  if (options) registerWebgpuTrainingKernels(options);
  else restoreStockWebgpuKernels();
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await model.trainOnBatch(X, Y);
    times.push(performance.now() - t0);
  }
  steps[name] = { medianMs: median(times.slice(2)), firstMs: times[0], allMs: times.map(Math.round) };
  console.log(name, JSON.stringify(steps[name]));
  results['trainStep'] = steps;
  save();
}

// (c) per-kernel time of one step, stock vs ours, summed by kernel name (GPU timestamps where Dawn has them).
const profiles: Record<string, unknown> = {};
for (const [name, options] of [variants[0]!, variants[1]!]) {
  if (options) registerWebgpuTrainingKernels(options);
  else restoreStockWebgpuKernels();
  await model.trainOnBatch(X, Y);
  const info = await tf.profile(async () => { await model.trainOnBatch(X, Y); });
  const byKernel: Record<string, { count: number; ms: number }> = {};
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : NaN;
    const entry = (byKernel[k.name] ??= { count: 0, ms: 0 });
    entry.count++;
    entry.ms += ms;
  }
  profiles[name] = Object.fromEntries(Object.entries(byKernel).sort((a, b) => (b[1].ms || 0) - (a[1].ms || 0)).slice(0, 15));
  results['profile'] = profiles;
  save();
}
results['finished'] = new Date().toISOString();
save();
console.log(JSON.stringify({ trainStep: steps, correctnessWorstOurs: results['correctnessWorstOurs'] }));
process.exit(0);
