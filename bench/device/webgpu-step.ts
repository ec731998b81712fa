// On a GPU (WebGPU through Dawn): (a) our webgpu conv-backprop kernels against the cpu backend, (b) a ResNet-50
// B=2 512x512 training step with stock kernels vs the variants of webgpu-kernel-variants.ts, (c) per-kernel time
// of one step with tf.profile. Writes $OUT/webgpu-step.json:
//   OUT=out node --import tsx bench/device/webgpu-step.ts      (docs/backend.md)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { restoreStockWebgpuKernels } from '../../stages/model/kernels/webgpu/register.js';
import { registerWebgpuKernelVariant, type WebgpuKernelOptions } from './webgpu-kernel-variants.js';
import { checkConvGradients } from './conv-gradient-check.js';
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
const check = await checkConvGradients([
  ['stock', () => restoreStockWebgpuKernels()],
  ['ours', () => registerWebgpuKernelVariant({ filter: 'conv', input: 'all' })],
], ['ours']);
results['correctness'] = check.rows;
results['correctnessWorstOurs'] = check.worst;
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
  ['stock', null], ['ours: filter(stride 1) + input(all strides)', { filter: 'conv', input: 'all' }], ['ours: filter + input (stride 1 each)', { filter: 'conv', input: 'stride1' }],
  ['ours: filter (stride 1) only', { filter: 'conv', input: 'none' }],
];
const steps: Record<string, unknown> = {};
for (const [name, options] of variants) {
  if (options) registerWebgpuKernelVariant(options);
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
  if (options) registerWebgpuKernelVariant(options);
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
