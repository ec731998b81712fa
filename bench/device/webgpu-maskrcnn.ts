// On a GPU: our Mask R-CNN on the webgpu backend, through the same backend selection the stages use
// (selectBackend('webgpu'): our kernels, writeBuffer uploads, submit batching). Three parts:
//   (a) agreement: a tiny config's validation losses on webgpu vs the cpu backend, same seed and batch;
//   (b) train steps (trainStep: awaited read-back, webgpu in Node has no synchronous one) and inference (detect)
//       for the small config at 256 (the cpu profile's) and the recipe's ResNet-101 at 512 with 2 images;
//   (c) the ResNet-50 variant at 512, 2 images (the comparison point), and the ResNet-50
//       classifier step with the backend configured as the stages do.
// For the recipe's case also the dispatches of one step and its GPU time per engine kernel (tf.profile).
// Writes $OUT/webgpu-maskrcnn.json; run by bench/device/gpu-run.sh (docs/backend.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/model/backend.js';
import { configFromParams } from '../../stages/model/config.js';
import { MaskRcnn } from '../../stages/model/mask-rcnn.js';
import { buildTrainBatch, imageMeta } from '../../stages/model/molding.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { kernelTimes, median, programTimes, resnet50Classifier } from './webgpu-setup.js';
import { syntheticSample } from '../synthetic-sample.js';

const outDir = process.env['OUT'] ?? '.';
const results: Record<string, unknown> = { started: new Date().toISOString() };
const save = () => {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'webgpu-maskrcnn.json'), JSON.stringify(results, null, 1));
};
const log = (m: string) => console.log(m);
// BENCH_BACKEND=wasm and a case list in argv: a dry run of this script here, before GPU time is spent.
const backendName = (process.env['BENCH_BACKEND'] ?? 'webgpu') as 'webgpu' | 'wasm';
const only = process.argv.slice(2);
const wanted = (name: string) => only.length === 0 || only.includes(name);


const tinyParams = {
  preset: 'small',
  image: { size: 64 },
  rpn: { headChannels: 8, batchSizePerImage: 32, preNmsTopN: 200, postNmsTopNTrain: 50, postNmsTopNTest: 50 },
  roi: { batchSizePerImage: 16, addGtAsProposals: true },
  box: { fcDim: 32 },
  mask: { headChannels: 8 },
  backbone: { fpnChannels: 8 },
};

async function section(name: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  try {
    results[name] = await fn();
  } catch (error) {
    results[name] = { error: String((error as Error).stack ?? error).slice(0, 2000) };
  }
  log(`${name} (${((performance.now() - t0) / 1000).toFixed(1)} s): ${JSON.stringify(results[name]).slice(0, 800)}`);
  save();
}

// (a) the same losses on webgpu as on cpu.
if (wanted('agreement')) await section('agreement', async () => {
  const samples = [syntheticSample(64, 3, 'a'), syntheticSample(64, 2, 'b')];
  const lossesOn = async (backend: 'cpu' | 'webgpu' | 'wasm') => {
    await selectBackend(backend, log);
    const config = configFromParams(tinyParams);
    const model = new MaskRcnn(config);
    const batch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
    const losses = await model.losses(batch);
    batch.images.dispose();
    model.dispose();
    return losses;
  };
  const cpu = await lossesOn('cpu');
  const webgpu = await lossesOn(backendName);
  const worst = Math.max(...Object.keys(cpu).map((k) => Math.abs(cpu[k as keyof typeof cpu] - webgpu[k as keyof typeof cpu]) / Math.max(Math.abs(cpu[k as keyof typeof cpu]), 1e-3)));
  return { cpu, webgpu, worstRelative: worst };
});

await selectBackend(backendName, log);
results['backend'] = tf.getBackend();

/** Dispatches of one call of `fn` (webgpu: runWebGPUProgram calls), and its GPU time per engine kernel (tf.profile). */
async function dispatchesAndProfile(fn: () => Promise<unknown>): Promise<Record<string, unknown>> {
  if (tf.getBackend() !== 'webgpu') return {};
  const backend = tf.backend() as unknown as { runWebGPUProgram: (...a: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  let dispatches = 0;
  backend.runWebGPUProgram = function (this: unknown, ...a: unknown[]) {
    dispatches++;
    return run.apply(this, a);
  };
  try {
    await fn();
  } finally {
    backend.runWebGPUProgram = run;
  }
  const times = await kernelTimes(fn, 12);
  const programs = await programTimes(fn, 15);
  return {
    dispatchesPerStep: dispatches, totalKernelMs: times.totalKernelMs, topKernels: times.top, slowestCalls: times.slowestCalls,
    totalProgramMs: programs.totalProgramMs, topPrograms: programs.top,
  };
}

// BENCH_PROFILE=case,case: the cases whose step is profiled (default the recipe's).
const profiled = (process.env['BENCH_PROFILE'] ?? 'recipe-resnet101-512-b2').split(',');

async function stepCase(name: string, params: Record<string, unknown>, images: number, steps: number): Promise<unknown> {
  const profile = profiled.includes(name);
  const config = configFromParams(params);
  const s = config.image.size;
  const samples = Array.from({ length: images }, (_, i) => syntheticSample(s, 40, `${name}${i}`));
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-5 });
  const batch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
  const times: number[] = [];
  const losses: unknown[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    losses.push(await model.trainStep(optimizer, batch));
    times.push(performance.now() - t0);
    log(`${name} step ${i}: ${Math.round(times[i]!)} ms`);
  }
  // The train stage's loop: each step queued while the previous one's losses are read (queueTrainStep).
  const t0 = performance.now();
  let pending: Promise<unknown> | undefined;
  for (let i = 0; i < steps; i++) {
    const queued = await model.queueTrainStep(optimizer, batch);
    if (pending) await pending;
    pending = queued.losses;
  }
  await pending;
  const overlappedStepMs = (performance.now() - t0) / steps;
  const stepProfile = profile ? await dispatchesAndProfile(() => model.trainStep(optimizer, batch)) : undefined;
  const first = batch.images.slice(0, 1) as tf.Tensor4D;
  const inference: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await model.detect(first, [imageMeta(s, s, s)]);
    inference.push(performance.now() - t0);
  }
  tf.dispose([first, batch.images]);
  model.dispose();
  return {
    config: { backbone: config.backbone.name, size: s, images },
    trainStepMs: { median: median(times.slice(1)), all: times.map(Math.round) },
    overlappedStepMs,
    inferenceMs: { median: median(inference.slice(1)), all: inference.map(Math.round) },
    ...(stepProfile ? { stepProfile } : {}),
    lossesFirst: losses[0],
    lossesLast: losses.at(-1),
    memory: tf.memory(),
  };
}

// The ResNet-50 classifier step (B=2, 512), with the backend exactly as the stages configure it.
if (wanted('resnet50-classifier')) await section('resnet50-classifier', async () => {
  const model = resnet50Classifier(512);
  const x = tf.randomUniform([2, 512, 512, 3]);
  const y = tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    await model.trainOnBatch(x, y);
    times.push(performance.now() - t0);
  }
  tf.dispose([x, y]);
  model.dispose();
  return { medianMs: median(times.slice(2)), allMs: times.map(Math.round) };
});

// (b), (c)
if (wanted('small-256')) await section('small-256', () => stepCase('small-256', { preset: 'small' }, 1, 6));
if (wanted('recipe-resnet101-512-b2')) await section('recipe-resnet101-512-b2', () => stepCase('recipe-resnet101-512-b2', { preset: 'recipe' }, 2, 4));
if (wanted('resnet50-512-b2')) await section('resnet50-512-b2', () => stepCase('resnet50-512-b2', { preset: 'recipe', backbone: { name: 'resnet50' } }, 2, 4));

results['finished'] = new Date().toISOString();
save();
process.exit(0);
