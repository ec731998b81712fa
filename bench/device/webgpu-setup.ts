// What every GPU script needs first: Dawn's WebGPU in Node, the tfjs webgpu backend on it, and the benchmark
// models (a ResNet-50 classifier and a small residual U-Net; their PyTorch peers are torch_resnet50_step.py and
// torch_unet_step.py beside this file).
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { FusedBatchNormalization } from './fused-batch-norm-layer.js';

export interface AdapterSummary {
  vendor: string | undefined;
  architecture: string | undefined;
  description: string | undefined;
}

/**
 * Loads Dawn (DAWN_NODE or the `webgpu` package), exposes navigator.gpu, imports the tfjs webgpu backend (it
 * registers itself only if navigator.gpu exists at import time) and makes it the active backend.
 * Returns the adapter's description, or null when there is no GPU adapter.
 */
export async function startWebgpu(): Promise<AdapterSummary | null> {
  const dawn = createRequire(import.meta.url)(process.env['DAWN_NODE'] ?? 'webgpu') as { create(f: string[]): unknown; globals: object };
  Object.assign(globalThis, dawn.globals);
  Object.defineProperty(globalThis, 'navigator', { configurable: true, writable: true, value: { gpu: dawn.create([]) } });
  await import('@tensorflow/tfjs-backend-webgpu');
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<{ info: Record<string, string> } | null> } } }).navigator.gpu;
  const adapter = await gpu.requestAdapter();
  if (!adapter || !(await tf.setBackend('webgpu'))) return null;
  return { vendor: adapter.info['vendor'], architecture: adapter.info['architecture'], description: adapter.info['description'] };
}

export interface BenchModelOptions {
  /** Batch norm through batch-norm-training.ts (fused-batch-norm-layer.ts), not tf.layers' (webgpu only). */
  fusedBatchNorm?: boolean;
}

const batchNormLayer = (options: BenchModelOptions): tf.layers.Layer =>
  options.fusedBatchNorm ? new FusedBatchNormalization({}) : tf.layers.batchNormalization();

/** ResNet-50 (bottleneck [3, 4, 6, 3]) at S x S, global pool + dense(2), compiled with Adam 1e-4. */
export function resnet50Classifier(size: number, options: BenchModelOptions = {}): tf.LayersModel {
  const L = tf.layers;
  const cbn = (x: tf.SymbolicTensor, f: number, k: number, s: number, relu = true) => {
    let y = L.conv2d({ filters: f, kernelSize: k, strides: s, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor;
    y = batchNormLayer(options).apply(y) as tf.SymbolicTensor;
    return relu ? (L.reLU().apply(y) as tf.SymbolicTensor) : y;
  };
  const bottleneck = (x: tf.SymbolicTensor, f: number, s: number, projection: boolean) => {
    let y = cbn(x, f, 1, 1);
    y = cbn(y, f, 3, s);
    y = cbn(y, 4 * f, 1, 1, false);
    const shortcut = projection ? cbn(x, 4 * f, 1, s, false) : x;
    return L.reLU().apply(L.add().apply([y, shortcut])) as tf.SymbolicTensor;
  };
  const input = tf.input({ shape: [size, size, 3] });
  let h = cbn(input, 64, 7, 2);
  h = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(h) as tf.SymbolicTensor;
  for (const [f, n, s] of [[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]] as const) {
    for (let i = 0; i < n; i++) h = bottleneck(h, f, i === 0 ? s : 1, i === 0);
  }
  const output = L.dense({ units: 2 }).apply(L.globalAveragePooling2d({}).apply(h)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  model.compile({ optimizer: tf.train.adam(1e-4), loss: (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp) });
  return model;
}

/** GPU time of `fn`'s engine kernels (tf.profile; Dawn timestamp queries), summed by kernel: the `top` slowest and the total. */
/** One kernel call as tf.profile saw it: what to optimise next is a shape, not only a kernel name. */
export interface KernelCall {
  name: string;
  ms: number;
  inputShapes: unknown;
  outputShapes: unknown;
}

export async function kernelTimes(
  fn: () => Promise<unknown>,
  top = 15,
): Promise<{ totalKernelMs: number; top: Record<string, { count: number; ms: number }>; slowestCalls: KernelCall[] }> {
  const info = await tf.profile(async () => { await fn(); });
  const byKernel: Record<string, { count: number; ms: number }> = {};
  const calls: KernelCall[] = [];
  let totalKernelMs = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const entry = (byKernel[k.name] ??= { count: 0, ms: 0 });
    entry.count++;
    entry.ms += ms;
    totalKernelMs += ms;
    calls.push({ name: k.name, ms, inputShapes: k.inputShapes, outputShapes: k.outputShapes });
  }
  return {
    totalKernelMs,
    top: Object.fromEntries(Object.entries(byKernel).sort((a, b) => b[1].ms - a[1].ms).slice(0, top)),
    slowestCalls: calls.sort((a, b) => b.ms - a.ms).slice(0, 20),
  };
}

/**
 * GPU time of every program a step dispatches, by program class: tf.profile times engine kernels only, so our
 * programs run outside a kernel (the fused optimizers, batch norm) do not show there. Works as tf.profile does
 * inside one kernel: with the backend's list of active timers set, each dispatch gets its own timestamped pass.
 */
export async function programTimes(fn: () => Promise<unknown>, top = 20): Promise<{ totalProgramMs: number; dispatches: number; top: Record<string, { count: number; ms: number }> }> {
  const backend = tf.backend() as unknown as { activeTimers: Array<{ name: string; query: Promise<number> | number }> | null };
  const outer = backend.activeTimers;
  const timers: Array<{ name: string; query: Promise<number> | number }> = [];
  backend.activeTimers = timers;
  try {
    await fn();
  } finally {
    backend.activeTimers = outer;
  }
  const ms = await Promise.all(timers.map((t) => t.query));
  const byProgram: Record<string, { count: number; ms: number }> = {};
  timers.forEach((t, i) => {
    const entry = (byProgram[t.name] ??= { count: 0, ms: 0 });
    entry.count++;
    entry.ms += ms[i] ?? 0;
  });
  return {
    totalProgramMs: ms.reduce((a, b) => a + b, 0),
    dispatches: timers.length,
    top: Object.fromEntries(Object.entries(byProgram).sort((a, b) => b[1].ms - a[1].ms).slice(0, top)),
  };
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

/** The small residual U-Net (1.8 M params; Adam 1e-3), the same layers as torch_unet_step.py. */
export function residualUnet(size: number, options: BenchModelOptions = {}): tf.LayersModel {
  const L = tf.layers;
  const convBn = (x: tf.SymbolicTensor, f: number, stride = 1, relu = true) => {
    let y = L.conv2d({ filters: f, kernelSize: 3, strides: stride, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor;
    y = batchNormLayer(options).apply(y) as tf.SymbolicTensor;
    return relu ? (L.reLU().apply(y) as tf.SymbolicTensor) : y;
  };
  const residual = (x: tf.SymbolicTensor, f: number, stride: number) => {
    const inChannels = x.shape[3];
    const y = convBn(convBn(x, f, stride, true), f, 1, false);
    let shortcut = x;
    if (stride !== 1 || inChannels !== f) {
      shortcut = L.conv2d({ filters: f, kernelSize: 1, strides: stride, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor;
      shortcut = batchNormLayer(options).apply(shortcut) as tf.SymbolicTensor;
    }
    return L.reLU().apply(L.add().apply([y, shortcut])) as tf.SymbolicTensor;
  };
  const up = (t: tf.SymbolicTensor) => L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }).apply(t) as tf.SymbolicTensor;
  const concat = (a: tf.SymbolicTensor, b: tf.SymbolicTensor) => L.concatenate().apply([a, b]) as tf.SymbolicTensor;
  const input = tf.input({ shape: [size, size, 3] });
  const stem = convBn(input, 32, 2);
  const s1 = residual(stem, 32, 1);
  const s2 = residual(s1, 64, 2);
  const s3 = residual(s2, 128, 2);
  const s4 = residual(s3, 256, 2);
  let d = convBn(concat(up(s4), s3), 128);
  d = convBn(concat(up(d), s2), 64);
  d = convBn(concat(up(d), s1), 32);
  const output = L.conv2d({ filters: 1, kernelSize: 1, padding: 'same' }).apply(up(d)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.sigmoidCrossEntropy(yt, yp) });
  return model;
}
