// On a GPU: where does a tfjs-webgpu training step spend its time? ResNet-50 B=2 512x512 (the
// issue-9 benchmark) with our conv-backprop kernels, measured five ways in one run:
//   (a) the step as trainOnBatch runs it (the recorded baseline);
//   (b) split: forward only, forward + backward (tf.variableGrads), optimizer apply, each as "JS returned"
//       (the CPU time to record the work) and "GPU done" (after a read-back), so CPU-bound and GPU-bound parts
//       separate;
//   (c) counted and timed calls into Dawn per step (dispatches, bind groups, buffers, submits, uniform writes);
//   (d) a V8 CPU profile of two steps (written to $OUT/step.cpuprofile; summarised here by self time);
//   (e) the fixes this found, switched on one by one (Sum/Mean gradients, uploads, submit batch, layouts);
//   (g) our conv gradients checked against cpu on the GPU (kernelCheck), and the issue's two targets in their
//       final form, the conv gradients' first form (forward convs) vs the patch-matrix matMuls, with a per-kernel GPU
//       time profile (targets).
// Writes $OUT/webgpu-diagnose.json. Run by bench/device/gpu-run.sh (docs/backend.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerReductionGradients } from '../../stages/model/kernels/reduction-gradients.js';
import { registerReluGradient } from '../../stages/model/kernels/relu-gradient.js';
import { configureWebgpuBackend, registerWebgpuTrainingKernels } from '../../stages/model/kernels/webgpu/register.js';
import { registerWebgpuKernelVariant } from './webgpu-kernel-variants.js';
import { checkConvGradients } from './conv-gradient-check.js';
import { FusedAdam } from './fused-adam.js';
import { kernelTimes, median, programTimes, resnet50Classifier, residualUnet, startWebgpu } from './webgpu-setup.js';

const outDir = process.env['OUT'] ?? '.';
const results: Record<string, unknown> = { started: new Date().toISOString() };
const save = () => {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'webgpu-diagnose.json'), JSON.stringify(results, null, 1));
};
// DIAGNOSE_ONLY=name,name: just those sections (e.g. a dry run of one part).
const only = (process.env['DIAGNOSE_ONLY'] ?? '').split(',').filter(Boolean);
const section = async (name: string, fn: () => Promise<unknown>) => {
  if (only.length > 0 && !only.includes(name)) return;
  const t0 = performance.now();
  try {
    results[name] = await fn();
  } catch (error) {
    results[name] = { error: String((error as Error).stack ?? error) };
  }
  console.log(`${name} (${((performance.now() - t0) / 1000).toFixed(1)} s):`, JSON.stringify(results[name]).slice(0, 600));
  save();
};

// DIAGNOSE_DRY_RUN=1: the same script on the cpu backend at a tiny size, to check it here before GPU time is spent.
const dryRun = process.env['DIAGNOSE_DRY_RUN'] === '1';
if (dryRun) await tf.setBackend('cpu');
results['adapter'] = dryRun ? { vendor: 'dry run on cpu' } : await startWebgpu();
if (!results['adapter']) {
  save();
  throw new Error('no WebGPU adapter');
}
if (!dryRun) registerWebgpuTrainingKernels();
const stockReductionGradients = [tf.getGradient(tf.Sum)!, tf.getGradient(tf.Mean)!];

/** The fixes of this issue, each switchable, so one run measures what each one gives. */
function configure(fixes: { reductionGradients: boolean; uploads: boolean; submitBatch: number; cachedLayouts?: boolean; sharedUniforms?: boolean }): void {
  if (fixes.reductionGradients) registerReductionGradients();
  else stockReductionGradients.forEach((config) => tf.registerGradient(config));
  if (!dryRun) configureWebgpuBackend({ writeBufferUploads: fixes.uploads, submitBatch: fixes.submitBatch, cachedLayouts: false, sharedUniforms: fixes.sharedUniforms ?? false });
  cacheLayouts = fixes.cachedLayouts ?? false;
}
const allFixes = { reductionGradients: true, uploads: true, submitBatch: 100 };

const B = Number(process.argv[2] ?? 2);
const S = Number(process.argv[3] ?? 512);
const model = resnet50Classifier(S);
const X = tf.randomUniform([B, S, S, 3]);
const Y = tf.oneHot(tf.tensor1d([0, 1].slice(0, B), 'int32'), 2);
results['model'] = { name: 'resnet50', batch: B, size: S, params: model.countParams() };

// The backend's internals we count (tfjs-backend-webgpu 4.22, backend_webgpu.js).
interface WebgpuInternals {
  device: Record<string, unknown>;
  queue: Record<string, unknown>;
  bufferManager: { numBytesAllocated: number; numBytesUsed: number; numFreeBuffers: number; numUsedBuffers: number };
  pipelineCache: Record<string, unknown>;
  runWebGPUProgram: (...args: unknown[]) => unknown;
  recordAndSubmit: (...args: unknown[]) => unknown;
}
const backend = (dryRun
  ? { device: {}, queue: {}, bufferManager: {}, pipelineCache: {}, runWebGPUProgram: () => undefined, recordAndSubmit: () => undefined }
  : tf.backend()) as unknown as WebgpuInternals;

// (c) counters: each wrapped method adds its call count and wall time here while `counting` is on.
type Counter = { calls: number; ms: number };
const counters: Record<string, Counter> = {};
let counting = false;
function wrap(owner: Record<string, unknown>, method: string, label: string): void {
  const original = owner[method] as ((...a: unknown[]) => unknown) | undefined;
  if (typeof original !== 'function') return;
  owner[method] = function (this: unknown, ...args: unknown[]) {
    if (!counting) return original.apply(this, args);
    const t0 = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      const c = (counters[label] ??= { calls: 0, ms: 0 });
      c.calls++;
      c.ms += performance.now() - t0;
    }
  };
}
wrap(backend as unknown as Record<string, unknown>, 'runWebGPUProgram', 'tfjs runWebGPUProgram (whole dispatch, JS side)');
wrap(backend as unknown as Record<string, unknown>, 'recordAndSubmit', 'tfjs recordAndSubmit');
for (const m of ['createBuffer', 'createBindGroup', 'createCommandEncoder', 'createComputePipeline']) wrap(backend.device, m, `device.${m}`);
for (const m of ['submit', 'writeBuffer']) wrap(backend.queue, m, `queue.${m}`);

// (e) bind-group layouts cached per pipeline: stock asks Dawn for pipeline.getBindGroupLayout(0) on every dispatch.
let cacheLayouts = false;
const originalCreatePipeline = backend.device['createComputePipeline'] as (d: unknown) => Record<string, unknown>;
if (!dryRun) backend.device['createComputePipeline'] = function (this: unknown, descriptor: unknown) {
  const pipeline = originalCreatePipeline.call(this, descriptor);
  const get = (pipeline['getBindGroupLayout'] as (i: number) => unknown).bind(pipeline);
  const layouts = new Map<number, unknown>();
  pipeline['getBindGroupLayout'] = (i: number) => {
    if (!cacheLayouts) return get(i);
    if (!layouts.has(i)) layouts.set(i, get(i));
    return layouts.get(i);
  };
  return pipeline;
};
backend.pipelineCache = {}; // recompile through the wrapper

const trainSteps = async (n: number): Promise<number[]> => {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await model.trainOnBatch(X, Y);
    times.push(performance.now() - t0);
  }
  return times;
};

/** Six timed trainOnBatch steps (median of the last four), then one more with the Dawn calls counted. */
async function timedSteps(net: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): Promise<{ medianMs: number; allMs: number[]; dispatchesPerStep: number; writeBuffersPerStep: number }> {
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    await net.trainOnBatch(x, y);
    times.push(performance.now() - t0);
  }
  for (const key of Object.keys(counters)) delete counters[key];
  counting = true;
  await net.trainOnBatch(x, y);
  counting = false;
  return {
    medianMs: median(times.slice(2)), allMs: times.map(Math.round),
    dispatchesPerStep: counters['tfjs runWebGPUProgram (whole dispatch, JS side)']?.calls ?? 0,
    writeBuffersPerStep: counters['queue.writeBuffer']?.calls ?? 0,
  };
}

// (a) upload correctness (the writeBuffer path): values in, same values out, float32 / int32 / bool, odd sizes.
await section('uploadCheck', async () => {
  configure(allFixes);
  const rows: unknown[] = [];
  for (const [dtype, n] of [['float32', 1], ['float32', 7], ['float32', 100003], ['int32', 5], ['int32', 4097], ['bool', 3], ['bool', 1001]] as const) {
    const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? i * 7 - 50 : Math.sin(i) * 1e3));
    const t = tf.tensor(values as number[], [n], dtype);
    const doubled = tf.add(t, t); // runs on the GPU (above the CPU hand-off size) or the CPU: both must agree
    const back = await t.data();
    const sum = await doubled.data();
    const expected = Float32Array.from(values as number[], Number);
    const ok = back.every((v, i) => v === (dtype === 'float32' ? expected[i] : values[i] === true ? 1 : values[i] === false ? 0 : values[i]))
      && sum.every((v, i) => Math.abs(v - 2 * Number(back[i])) <= 1e-3 * Math.abs(v) || dtype === 'bool');
    rows.push({ dtype, n, ok });
    tf.dispose([t, doubled]);
  }
  return { allOk: rows.every((r) => (r as { ok: boolean }).ok), rows };
});

// (b0) each fix's share: the step with the fixes switched on one after another.
await section('fixes', async () => {
  const rows: Record<string, unknown> = {};
  for (const [name, fixes] of [
    ['before (our conv kernels only)', { reductionGradients: false, uploads: false, submitBatch: 15 }],
    ['+ Sum/Mean gradients broadcast on device', { reductionGradients: true, uploads: false, submitBatch: 15 }],
    ['+ uploads through queue.writeBuffer', { reductionGradients: true, uploads: true, submitBatch: 15 }],
    ['+ submit every 100 dispatches', { reductionGradients: true, uploads: true, submitBatch: 100 }],
    ['+ bind-group layouts cached', { ...allFixes, cachedLayouts: true }],
  ] as const) {
    configure(fixes);
    const times = await trainSteps(5);
    rows[name] = { medianMs: median(times.slice(2)), allMs: times.map(Math.round) };
    console.log(name, JSON.stringify(rows[name]));
  }
  configure(allFixes);
  return rows;
});

// (b) the step split in parts; "js" = until the call returned, "gpu" = until a read-back after it resolved.
await section('split', async () => {
  const optimizer = tf.train.adam(1e-4);
  const variables = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const rows: Record<string, number[]> = { forwardJs: [], forwardGpu: [], gradsJs: [], gradsGpu: [], applyJs: [], applyGpu: [], kernelsForward: [], kernelsGrads: [], kernelsApply: [] };
  const lossOf = () => tf.losses.softmaxCrossEntropy(Y, model.apply(X, { training: true }) as tf.Tensor) as tf.Scalar;
  for (let i = 0; i < 5; i++) {
    counting = true;
    for (const key of Object.keys(counters)) delete counters[key];
    let t0 = performance.now();
    const forward = tf.tidy(lossOf);
    rows['forwardJs']!.push(performance.now() - t0);
    await forward.data();
    rows['forwardGpu']!.push(performance.now() - t0);
    rows['kernelsForward']!.push(counters['tfjs runWebGPUProgram (whole dispatch, JS side)']?.calls ?? 0);
    forward.dispose();
    for (const key of Object.keys(counters)) delete counters[key];
    t0 = performance.now();
    const { value, grads } = tf.variableGrads(lossOf, variables);
    rows['gradsJs']!.push(performance.now() - t0);
    await value.data();
    rows['gradsGpu']!.push(performance.now() - t0);
    rows['kernelsGrads']!.push(counters['tfjs runWebGPUProgram (whole dispatch, JS side)']?.calls ?? 0);
    for (const key of Object.keys(counters)) delete counters[key];
    t0 = performance.now();
    optimizer.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
    rows['applyJs']!.push(performance.now() - t0);
    const probe = tf.sum(variables[0]!);
    await probe.data();
    rows['applyGpu']!.push(performance.now() - t0);
    rows['kernelsApply']!.push(counters['tfjs runWebGPUProgram (whole dispatch, JS side)']?.calls ?? 0);
    counting = false;
    tf.dispose([probe, value, ...Object.values(grads)]);
  }
  optimizer.dispose();
  return Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, { median: median(v.slice(1)), all: v.map(Math.round) }]));
});

// (c) Dawn calls per trainOnBatch step.
await section('callsPerStep', async () => {
  await trainSteps(1);
  for (const key of Object.keys(counters)) delete counters[key];
  counting = true;
  const t0 = performance.now();
  await trainSteps(1);
  const wall = performance.now() - t0;
  counting = false;
  const before = { ...backend.bufferManager };
  return {
    stepMs: wall,
    counters: Object.fromEntries(Object.entries(counters).map(([k, c]) => [k, { calls: c.calls, ms: Math.round(c.ms), usPerCall: Math.round((1000 * c.ms) / c.calls) }])),
    buffers: { allocatedMB: before.numBytesAllocated / 2 ** 20, usedMB: before.numBytesUsed / 2 ** 20, free: before.numFreeBuffers, used: before.numUsedBuffers },
    pipelines: Object.keys(backend.pipelineCache).length,
  };
});

// (d) a V8 CPU profile of two steps, summarised by self time per function (the raw profile goes to $OUT).
await section('cpuProfile', async () => {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  const times = await trainSteps(2);
  const { profile } = (await post('Profiler.stop')) as { profile: CpuProfile };
  session.disconnect();
  writeFileSync(join(outDir, 'step.cpuprofile'), JSON.stringify(profile));
  return { stepsMs: times.map(Math.round), topSelf: summarise(profile, 40) };
});

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}
function summarise(profile: CpuProfile, top: number): { fn: string; ms: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, ms]) => ({ fn, ms: Math.round(ms) }));
}

// (e2) Adam fused into three shaders per variable (fused-adam.ts): first the same numbers as tf.train.adam on
// the GPU, then the ResNet-50 step with it (all fixes on).
await section('fusedAdam', async () => {
  configure({ ...allFixes, cachedLayouts: true });
  const starts = [tf.randomNormal([3, 5], 0, 1, 'float32', 1), tf.randomNormal([257], 0, 1, 'float32', 2)];
  const gradients = [0, 1, 2].map((step) => starts.map((s, k) => tf.randomNormal(s.shape, 0, 1, 'float32', 10 + 2 * step + k)));
  const trained = async (optimizer: tf.Optimizer, tag: string) => {
    const vars = starts.map((s, k) => tf.variable(s.clone(), true, `fusedCheck_${tag}_${k}`));
    for (const step of gradients) optimizer.applyGradients(Object.fromEntries(vars.map((v, k) => [v.name, step[k]!])));
    const values = await Promise.all(vars.map((v) => v.data()));
    tf.dispose(vars);
    optimizer.dispose();
    return values;
  };
  const stock = await trained(tf.train.adam(1e-2), 'stock');
  const fused = await trained(new FusedAdam(1e-2), 'fused');
  let worst = 0;
  stock.forEach((s, k) => s.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - fused[k]![i]!) / Math.max(Math.abs(v), 1e-3)); }));
  tf.dispose([...starts, ...gradients.flat()]);
  const row: Record<string, unknown> = { worstRelativeVsTfAdam: worst };
  if (!(worst <= 1e-4)) return row; // not timed unless it computes Adam (the issue's 1e-4 relative)
  model.compile({ optimizer: new FusedAdam(1e-4), loss: (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp) });
  const times = await trainSteps(6);
  for (const key of Object.keys(counters)) delete counters[key];
  counting = true;
  await trainSteps(1);
  counting = false;
  row['step'] = { medianMs: median(times.slice(2)), allMs: times.map(Math.round) };
  row['dispatchesPerStep'] = counters['tfjs runWebGPUProgram (whole dispatch, JS side)']?.calls ?? 0;
  model.compile({ optimizer: tf.train.adam(1e-4), loss: (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp) });
  return row;
});

// (e3) batch norm fused too (fused-batch-norm-layer.ts: ten dispatches per layer and step, not forty-four), with
// the fused Adam: the ResNet-50 step and the U-Net step, dispatches counted; then with uniform buffers shared
// (stages/model/kernels/webgpu/uniforms.ts).
await section('fusedBatchNorm', async () => {
  if (dryRun) return { skipped: 'webgpu only' };
  configure({ ...allFixes, cachedLayouts: true });
  const rows: Record<string, unknown> = {};
  const unetBatch = 4;
  const unetSize = Math.min(256, S);
  for (const [name, build, x, y, loss] of [
    ['resnet50', () => resnet50Classifier(S, { fusedBatchNorm: true }), X, Y, (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp)],
    ['unet', () => residualUnet(unetSize, { fusedBatchNorm: true }), tf.randomUniform([unetBatch, unetSize, unetSize, 3]),
      tf.cast(tf.greater(tf.randomUniform([unetBatch, unetSize, unetSize, 1]), 0.5), 'float32'), (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.sigmoidCrossEntropy(yt, yp)],
  ] as const) {
    const fused = build();
    fused.compile({ optimizer: new FusedAdam(name === 'unet' ? 1e-3 : 1e-4), loss });
    for (const sharedUniforms of [false, true]) {
      configure({ ...allFixes, cachedLayouts: true, sharedUniforms });
      rows[sharedUniforms ? `${name} + shared uniforms` : name] = { batch: x.shape[0], size: x.shape[1], ...(await timedSteps(fused, x, y)) };
    }
    fused.dispose();
  }
  return rows;
});

// (f) the issue's second model: the small residual U-Net, B=4 256 (target <= 60 ms), before and after the fixes.
await section('unet', async () => {
  const unetBatch = dryRun ? 1 : 4;
  const unetSize = dryRun ? 32 : 256;
  const unet = residualUnet(unetSize);
  const x = tf.randomUniform([unetBatch, unetSize, unetSize, 3]);
  const y = tf.cast(tf.greater(tf.randomUniform([unetBatch, unetSize, unetSize, 1]), 0.5), 'float32');
  const rows: Record<string, unknown> = { batch: unetBatch, size: unetSize, params: unet.countParams() };
  for (const [name, fixes] of [
    ['before (our conv kernels only)', { reductionGradients: false, uploads: false, submitBatch: 15 }],
    ['all fixes', { ...allFixes, cachedLayouts: true }],
  ] as const) {
    configure(fixes);
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      await unet.trainOnBatch(x, y);
      times.push(performance.now() - t0);
    }
    rows[name] = { medianMs: median(times.slice(2)), allMs: times.map(Math.round) };
  }
  configure(allFixes);
  tf.dispose([x, y]);
  return rows;
});

// (g1) the issue's rule on the GPU: every conv-gradient route we register vs the cpu backend, 21 cases. Before
// the targets: if the targets run past the call's time limit, the correctness check is already saved.
await section('kernelCheck', async () => {
  if (dryRun) return { skipped: 'webgpu only' };
  const check = await checkConvGradients([
    ['patches (default)', () => registerWebgpuTrainingKernels()],
    ['forward conv (first form)', () => registerWebgpuKernelVariant({ filter: 'conv', input: 'stride1' })],
  ], ['patches (default)', 'forward conv (first form)']);
  registerWebgpuTrainingKernels();
  await tf.setBackend('webgpu');
  return { worstMaxAbsRelative: check.worst, withinIssueBound: check.worst <= 1e-4, rows: check.rows };
});

// (g2) the targets (ResNet-50 B=2 512 <= 150 ms, U-Net B=4 256 <= 60 ms) with everything on: fused batch norm,
// fused Adam, shared uniforms; conv gradients in their first form (forward convs) vs as patch-matrix matMuls. Then one step of
// each under tf.profile: GPU time per kernel (Dawn timestamp queries), so what is left shows.
await section('targets', async () => {
  if (dryRun) return { skipped: 'webgpu only' };
  configure({ ...allFixes, cachedLayouts: true, sharedUniforms: true });
  registerReluGradient(); // as selectBackend does
  const rows: Record<string, unknown> = {};
  const unetBatch = 4;
  const unetSize = Math.min(256, S);
  const routes = [
    ['forward conv (first form)', { filter: 'conv', input: 'stride1' }],
    ['patches', {}],
  ] as const;
  for (const [name, build, x, y, loss, lr] of [
    ['resnet50', () => resnet50Classifier(S, { fusedBatchNorm: true }), X, Y, (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp), 1e-4],
    ['unet', () => residualUnet(unetSize, { fusedBatchNorm: true }), tf.randomUniform([unetBatch, unetSize, unetSize, 3]),
      tf.cast(tf.greater(tf.randomUniform([unetBatch, unetSize, unetSize, 1]), 0.5), 'float32'), (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.sigmoidCrossEntropy(yt, yp), 1e-3],
  ] as const) {
    const net = build();
    net.compile({ optimizer: new FusedAdam(lr), loss });
    for (const [route, options] of routes) {
      registerWebgpuKernelVariant(options);
      rows[`${name}, ${route}`] = { batch: x.shape[0], size: x.shape[1], ...(await timedSteps(net, x, y)) };
      console.log(name, route, JSON.stringify(rows[`${name}, ${route}`]));
      save();
    }
    rows[`${name}, patches: GPU time by kernel`] = await kernelTimes(() => net.trainOnBatch(x, y));
    rows[`${name}, patches: GPU time by program`] = await programTimes(() => net.trainOnBatch(x, y));
    net.dispose();
  }
  registerWebgpuTrainingKernels();
  return rows;
});

results['finished'] = new Date().toISOString();
save();
process.exit(0);
