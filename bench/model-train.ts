// Benchmark: one Mask R-CNN train step of ours (tfjs wasm) beside the same network in PyTorch
// (bench/torch_maskrcnn_train_peer.py, Debian's python3-torch), 1 and 2 threads each, with a per-part breakdown.
//
//   node --import tsx bench/model-train.ts [--case cpu-profile|cpu-profile-small|r101] [--rounds 2] [--repeat 3] [--threads 1,2] [--no-peer] [--write]
//   (--write: into BENCHMARKS.md, section model-train, or model-train-r101)
//   node --import tsx bench/model-train.ts --case cpu-profile --peer-input batch.json   (the peer's input, to run it alone)
//   node --import tsx bench/model-train.ts --profile [--threads 1]   (tf.profile of one step of ours: ms per kernel)
//
// Cases: cpu-profile (pipelines/dsb2018.yaml's `cpu` profile network as trained: its backbone's ResNet-FPN on 256 px
// windows, batch 2, its GT cap and GT-as-proposals); cpu-profile-small (the same with the small backbone, the
// profile's network up to fb90fa3); r101 (the recipe: ResNet101 at 512, batch 2; slow).
//
// Every measurement runs in its own process (tfjs-wasm fixes its thread count when it initialises; torch is
// set to the same count), and the processes are interleaved: round 1 = ours 1 thread, torch 1 thread, ours 2
// threads, torch 2 threads; round 2 the same; the figure is the median over rounds (of two, the larger) of
// each process's median of `repeat` steps after a warm-up. The machine is shared: the load average is part of
// every figure. After the parts, each side times inference of one whole image with the profile's predict
// network and reports its detection count.
//
// Parts, the same list on both sides, each timed alone on the same inputs: backbone + FPN forward and forward +
// backward; the RPN head's convs; proposals and targets (anchor matching and sampling, decoding, NMS, ROI
// matching and sampling: host-side work); the box branch (ROIAlign 7x7 + box head + predictor) on the step's
// ROI count; the mask branch (ROIAlign 14x14 + mask head) on a third of them (the positive fraction); the
// optimizer (global-norm clip + AMSGrad). The parts do not add up to the step exactly (losses, gathers and
// the tape's bookkeeping are not in any of them).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { parse } from 'yaml';
import { anchorSpec, pyramidAnchors } from '../stages/model/anchors.js';
import { resnetFeatures } from '../stages/model/backbone.js';
import { configFromParams, trainingNetworkConfig, type MaskRcnnConfig } from '../stages/model/config.js';
import { fpn, type Pyramid } from '../stages/model/fpn.js';
import { boxHead, maskHead } from '../stages/model/heads.js';
import { leanVariableGrads } from '../stages/model/lean-gradients.js';
import { MaskRcnn } from '../stages/model/mask-rcnn.js';
import { buildTrainBatch, imageMeta, type TrainBatch } from '../stages/model/molding.js';
import { generateProposals } from '../stages/model/proposals.js';
import { synchronousReadBack } from '../stages/model/read-back.js';
import { roiAlign } from '../stages/model/roi-align.js';
import { rpnHead } from '../stages/model/rpn-head.js';
import { seededRng } from '../stages/model/sampler.js';
import { headStepTargets, rpnStepTargets } from '../stages/model/step-targets.js';
import { Amsgrad } from '../stages/train/amsgrad.js';
import type { BenchResult } from './run.js';
import { syntheticSample } from './synthetic-sample.js';
import { median, timeItAsync } from './timing.js';

/** The `cpu` profile's model params as pipelines/dsb2018.yaml states them (preset and overrides). */
function cpuProfileModelParams(): Record<string, unknown> {
  const pipeline = parse(readFileSync(fileURLToPath(new URL('../pipelines/dsb2018.yaml', import.meta.url)), 'utf8')) as {
    profiles: { cpu: { model: { preset: string; config: Record<string, unknown> } } };
  };
  const { preset, config } = pipeline.profiles.cpu.model;
  return { preset, ...config };
}

/** The cpu profile's model params with another backbone. */
function withBackbone(params: Record<string, unknown>, name: string): Record<string, unknown> {
  const config = params as { backbone?: Record<string, unknown> };
  return { ...params, backbone: { ...config.backbone, name } };
}

const profileBackbone = String((cpuProfileModelParams() as { backbone?: { name?: string } }).backbone?.name ?? 'small');

/** The networks compared, as stage params (what a pipeline's model config holds). */
const cases: Record<string, { params: Record<string, unknown>; batchSize: number; what: string }> = {
  // pipelines/dsb2018.yaml's cpu profile, trained on 256 px windows of 512-molded images.
  'cpu-profile': {
    params: cpuProfileModelParams(),
    batchSize: 2,
    what: `cpu profile network (${profileBackbone} ResNet-FPN) at 256, batch 2`,
  },
  // The same with the small backbone: the profile's network up to fb90fa3.
  'cpu-profile-small': {
    params: withBackbone(cpuProfileModelParams(), 'small'),
    batchSize: 2,
    what: 'cpu profile network with the small backbone (small ResNet-FPN) at 256, batch 2',
  },
  r101: { params: { preset: 'recipe' }, batchSize: 2, what: 'recipe network (ResNet101-FPN) at 512, batch 2' },
};

/** The parts measured alone (see the header); the torch peer prints the same keys. */
type PartKey = 'backboneFwdMs' | 'backboneFwdBwdMs' | 'rpnHeadFwdMs' | 'rpnHeadFwdBwdMs' | 'proposalsAndTargetsMs' | 'boxBranchFwdMs'
  | 'boxBranchFwdBwdMs' | 'maskBranchFwdMs' | 'maskBranchFwdBwdMs' | 'optimizerMs' | 'inferenceMs' | 'detections';

/** One process's figures: the whole step (or why it failed), and the parts where they were measured. */
export type StepTimes = {
  /** The threads the backend runs with (wasm: XNNPACK's pool as selectBackend reports it; torch: get_num_threads). */
  threads?: number;
  trainStepMs: number | string;
  /** torch only: the BLAS library it ran on (bench/torch_blas.py; the reference BLAS is not a fair peer). */
  blas?: string;
  /** ours only: the native library wasm's convolutions ran on (kernels/native/; RUNNER_NATIVE_KERNELS=off: none). */
  nativeKernels?: string;
} & Partial<Record<PartKey, number>>;

const partLabels: ['trainStepMs' | PartKey, string][] = [
  ['trainStepMs', 'whole train step'],
  ['backboneFwdMs', 'backbone + FPN, forward'],
  ['backboneFwdBwdMs', 'backbone + FPN, forward + backward'],
  ['rpnHeadFwdMs', 'RPN head, forward'],
  ['rpnHeadFwdBwdMs', 'RPN head, forward + backward'],
  ['proposalsAndTargetsMs', 'proposals (decode, NMS) and targets (anchor and ROI sampling)'],
  ['boxBranchFwdMs', 'box branch (ROIAlign 7x7 + box head), forward'],
  ['boxBranchFwdBwdMs', 'box branch, forward + backward'],
  ['maskBranchFwdMs', 'mask branch (ROIAlign 14x14 + mask head), forward'],
  ['maskBranchFwdBwdMs', 'mask branch, forward + backward'],
  ['optimizerMs', 'optimizer (clip + AMSGrad)'],
  ['inferenceMs', 'inference of one whole image at the profile\'s predict size'],
  ['detections', 'detections of that inference (random weights)'],
];

/** What both sides train on: the network's numbers, the GT boxes, and the ROIs of the head parts. */
interface SharedBatch {
  config: MaskRcnnConfig;
  batch: TrainBatch;
  rois: Float32Array[];
  positiveRois: Float32Array[];
}

/** Whether a case's parts are timed too (the ResNet101 step alone takes minutes). */
const partsOf = (caseName: string): boolean => caseName.startsWith('cpu-profile');

function sharedBatch(caseName: string): SharedBatch {
  const spec = cases[caseName];
  if (!spec) throw new Error(`bench model-train: unknown case "${caseName}" (known: ${Object.keys(cases).join(', ')})`);
  const config = trainingNetworkConfig(configFromParams(spec.params));
  const s = config.image.size;
  const sample = syntheticSample(s, 40);
  const batch = buildTrainBatch(Array.from({ length: spec.batchSize }, () => sample), { ...config.image }, seededRng(1));
  // ROIs: the GT boxes moved by up to 20% of their size, as many per image as the step samples.
  const rng = seededRng('rois');
  const rois = batch.gtBoxes.map((gt) => {
    const n = gt.length / 4;
    const out = new Float32Array(config.roi.batchSizePerImage * 4);
    for (let i = 0; i < config.roi.batchSizePerImage; i++) {
      const k = i % n;
      const [y1, x1, y2, x2] = [gt[4 * k]!, gt[4 * k + 1]!, gt[4 * k + 2]!, gt[4 * k + 3]!];
      const dy = (rng() - 0.5) * 0.4 * (y2 - y1);
      const dx = (rng() - 0.5) * 0.4 * (x2 - x1);
      out.set([Math.max(0, y1 + dy), Math.max(0, x1 + dx), Math.min(s, y2 + dy), Math.min(s, x2 + dx)], 4 * i);
    }
    return out;
  });
  const positives = Math.round(config.roi.batchSizePerImage * config.roi.positiveFraction);
  return { config, batch, rois, positiveRois: rois.map((r) => r.slice(0, 4 * positives)) };
}

/** The torch peer's input: the config's numbers it needs, and the boxes as plain lists. */
/** The network a case predicts with (the profile's whole-image size and test-time counts), for both sides. */
function inferenceConfig(caseName: string): MaskRcnnConfig {
  const config = configFromParams(cases[caseName]!.params);
  // No confidence floor on either side: with random weights the two implementations' class probabilities differ
  // (ours kept 130 boxes over 0.75, torchvision 1), and the mask head's cost follows the count. Both then keep
  // up to detection.maxInstances after NMS, and the counts are reported.
  config.detection.minConfidence = 0;
  return config;
}

function inferenceSettings(caseName: string): unknown {
  const { image, rpn, detection } = inferenceConfig(caseName);
  return { imageSize: image.size, preNmsTopN: rpn.preNmsTopN, postNmsTopN: rpn.postNmsTopNTest, maxInstances: detection.maxInstances,
    minConfidence: detection.minConfidence, nmsThresh: detection.nmsThresh };
}

function peerInput(caseName: string, { config, batch, rois, positiveRois }: SharedBatch): unknown {
  return {
    backbone: config.backbone.name,
    imageSize: config.image.size,
    fpnChannels: config.backbone.fpnChannels,
    anchorScales: config.rpn.anchorScales,
    anchorRatios: config.rpn.anchorRatios,
    rpnChannels: config.rpn.headChannels,
    preNmsTopN: config.rpn.preNmsTopN,
    postNmsTopNTrain: config.rpn.postNmsTopNTrain,
    rpnNmsThresh: config.rpn.nmsThresh,
    rpnFgIou: config.rpn.fgIouThresh,
    rpnBgIou: config.rpn.bgIouThresh,
    rpnBatchPerImage: config.rpn.batchSizePerImage,
    rpnPositiveFraction: config.rpn.positiveFraction,
    poolSize: config.roi.poolSize,
    maskPoolSize: config.roi.maskPoolSize,
    roiFgIou: config.roi.fgIouThresh,
    roiBatchPerImage: config.roi.batchSizePerImage,
    roiPositiveFraction: config.roi.positiveFraction,
    fcDim: config.box.fcDim,
    maskChannels: config.mask.headChannels,
    weightDecay: config.train.weightDecay,
    clipNorm: config.train.clipNorm,
    inference: inferenceSettings(caseName),
    gtBoxes: batch.gtBoxes.map((b) => Array.from(b)),
    rois: rois.map((r) => Array.from(r)),
    positiveRois: positiveRois.map((r) => Array.from(r)),
  };
}

/** Median wall time of `fn` (awaited), after one warm-up call, to 0.1 ms. */
async function medianMs(repeat: number, fn: () => unknown): Promise<number> {
  return Math.round((await timeItAsync(repeat, async () => fn())) * 10) / 10;
}

/** Ours, in this process: the whole step and each part (see the header). */
export async function measureOurs(caseName: string, threads: number, repeat: number, parts: boolean): Promise<StepTimes> {
  const { selectBackend } = await import('../stages/model/backend.js');
  const selected = await selectBackend('wasm', () => {}, { threads });
  const shared = sharedBatch(caseName);
  const { config, batch } = shared;
  const s = config.image.size;
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-5 });
  let trainStepMs: number;
  try {
    trainStepMs = await medianMs(repeat, () => model.trainStep(optimizer, batch));
  } catch (error) {
    return { threads: selected.threads, trainStepMs: `failed: ${(error as Error).message.split('\n')[0]}` };
  }
  const native = selected.nativeKernels ? { nativeKernels: selected.nativeKernels } : {};
  if (!parts) return { threads: selected.threads, trainStepMs, ...native };

  const { store } = model;
  const variables = store.trainableVariables();
  const pyramidOf = (): Pyramid => fpn(store, resnetFeatures(store, batch.images, config.backbone.name, false), config.backbone.fpnChannels);
  const meanOfAll = (ts: tf.Tensor[]): tf.Scalar => tf.addN(ts.map((t) => t.mean())) as tf.Scalar;
  const grads = async (f: () => tf.Scalar): Promise<void> => {
    const { value, grads: g } = await leanVariableGrads(f, variables);
    tf.dispose([value, ...Object.values(g)]);
  };
  const backboneFwdMs = await medianMs(repeat, () => tf.tidy(() => void pyramidOf()));
  const backboneFwdBwdMs = await medianMs(repeat, () => grads(() => meanOfAll(pyramidOf())));

  const pyramid = tf.tidy(() => pyramidOf());
  const anchorsPerLocation = config.rpn.anchorRatios.length;
  const rpnOf = () => rpnHead(store, pyramid, anchorsPerLocation, config.rpn.headChannels, config.rpn.anchorStride);
  const rpnHeadFwdMs = await medianMs(repeat, () => tf.tidy(() => void rpnOf()));
  const rpnHeadFwdBwdMs = await medianMs(repeat, () => grads(() => { const r = rpnOf(); return meanOfAll([r.logits, r.deltas]); }));

  const [logits, deltas] = tf.tidy(() => { const r = rpnOf(); return [r.logits, r.deltas]; }) as [tf.Tensor3D, tf.Tensor3D];
  const anchors = pyramidAnchors(anchorSpec(config));
  const anchorTensor = tf.tensor2d(anchors, [anchors.length / 4, 4]);
  const rng = seededRng('targets');
  const proposalOptions = { preNmsTopN: config.rpn.preNmsTopN, postNmsTopN: config.rpn.postNmsTopNTrain, nmsThresh: config.rpn.nmsThresh, bboxStdDev: config.rpn.bboxStdDev, imageSize: s };
  const proposalsAndTargetsMs = await medianMs(repeat, async () => {
    rpnStepTargets(anchors, batch.gtBoxes, config, rng);
    const proposals = await generateProposals(logits, deltas, anchorTensor, proposalOptions, synchronousReadBack);
    headStepTargets(proposals.map((p) => p.boxes), batch, config, rng);
  });

  const pooled = (boxes: Float32Array[], size: number): tf.Tensor4D => {
    const all = new Float32Array(boxes.reduce((n, b) => n + b.length, 0));
    const batchIndex = new Int32Array(all.length / 4);
    let at = 0;
    boxes.forEach((b, image) => { all.set(b.map((v) => v / s), at); batchIndex.fill(image, at / 4, (at + b.length) / 4); at += b.length; });
    const [p2, p3, p4, p5] = pyramid;
    return roiAlign([p2, p3, p4, p5], all, batchIndex, size, [s, s]);
  };
  const boxBranch = () => { const h = boxHead(store, pooled(shared.rois, config.roi.poolSize), config.numClasses, config.box.fcDim, false); return meanOfAll([h.classLogits, h.deltas]); };
  const boxBranchFwdMs = await medianMs(repeat, () => tf.tidy(() => void boxBranch()));
  const boxBranchFwdBwdMs = await medianMs(repeat, () => grads(boxBranch));
  const maskBranch = () => maskHead(store, pooled(shared.positiveRois, config.roi.maskPoolSize), config.numClasses, config.mask.headChannels, false).mean() as tf.Scalar;
  const maskBranchFwdMs = await medianMs(repeat, () => tf.tidy(() => void maskBranch()));
  const maskBranchFwdBwdMs = await medianMs(repeat, () => grads(maskBranch));

  // The step's update: the global norm of every gradient, the clip factor, then AMSGrad.
  const zeroGrads = Object.fromEntries(variables.map((v) => [store.nameOf(v)!, tf.zerosLike(v)]));
  const byName = Object.fromEntries(variables.map((v) => [store.nameOf(v)!, v]));
  const optimizerMs = await medianMs(repeat, () => tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(Object.values(zeroGrads).map((g) => tf.sum(tf.square(g)))));
    const scale = tf.minimum(tf.scalar(1), tf.div(config.train.clipNorm, tf.maximum(norm, 1e-6))) as tf.Scalar;
    optimizer.applyGradients(zeroGrads, byName, scale);
  }));
  model.dispose();
  // Inference: a fresh model of the profile's predict network on one whole image (the `detect` of the stage).
  const predictConfig = inferenceConfig(caseName);
  const size = predictConfig.image.size;
  const predictor = new MaskRcnn(predictConfig);
  const image = tf.tidy(() => buildTrainBatch([syntheticSample(size, 40)], { ...predictConfig.image }, seededRng(2)).images.clone());
  let detections = 0;
  const detectOnce = async (): Promise<number> => {
    const t0 = performance.now();
    detections = (await predictor.detect(image, [imageMeta(size, size, size)]))[0]!.scores.length;
    return performance.now() - t0;
  };
  await detectOnce();
  const inferenceTimes: number[] = [];
  for (let i = 0; i < repeat; i++) inferenceTimes.push(await detectOnce());
  const inferenceMs = Math.round(median(inferenceTimes) * 10) / 10;
  return {
    inferenceMs, detections,
    threads: selected.threads, ...native, trainStepMs, backboneFwdMs, backboneFwdBwdMs, rpnHeadFwdMs, rpnHeadFwdBwdMs, proposalsAndTargetsMs,
    boxBranchFwdMs, boxBranchFwdBwdMs, maskBranchFwdMs, maskBranchFwdBwdMs, optimizerMs,
  };
}

/** tf.profile of one train step (after a warm-up): milliseconds and calls per kernel, the largest first. */
export async function profileOurs(caseName: string, threads: number): Promise<void> {
  const { selectBackend } = await import('../stages/model/backend.js');
  await selectBackend('wasm', () => {}, { threads });
  const { config, batch } = sharedBatch(caseName);
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-5 });
  await model.trainStep(optimizer, batch);
  const t0 = performance.now();
  // Awaited inside: the step reads its proposals back half-way, and the kernels after that read count too.
  const info = await tf.profile(async () => void (await model.trainStep(optimizer, batch)));
  const wall = performance.now() - t0;
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(k.kernelTimeMs) || 0;
    entry.calls += 1;
    byKernel.set(k.name, entry);
  }
  const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
  const inKernels = rows.reduce((n, [, e]) => n + e.ms, 0);
  console.log(`train step under tf.profile: ${wall.toFixed(0)} ms wall, ${inKernels.toFixed(0)} ms in ${info.kernels.length} kernel calls`);
  for (const [name, e] of rows.slice(0, 25)) console.log(`${name.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms ${String(e.calls).padStart(6)} calls`);
  console.log('largest single calls:');
  const calls = [...info.kernels].sort((a, b) => (Number(b.kernelTimeMs) || 0) - (Number(a.kernelTimeMs) || 0));
  for (const k of calls.slice(0, 30)) console.log(`${k.name.padEnd(28)} ${Number(k.kernelTimeMs).toFixed(1).padStart(9)} ms  in ${JSON.stringify(k.inputShapes)} out ${JSON.stringify(k.outputShapes)}`);
}

const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const peerScript = fileURLToPath(new URL('./torch_maskrcnn_train_peer.py', import.meta.url));

/** Whether Debian's torch and torchvision import. */
function torchAvailable(): boolean {
  try {
    execFileSync(python, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function runChild(args: string[], program: string): StepTimes {
  const out = execFileSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!) as StepTimes;
}

export interface TrainComparison {
  caseName: string;
  threads: number[];
  /** Per side and thread count, the median over rounds of every part. */
  ours: Record<number, StepTimes>;
  torch: Record<number, StepTimes> | undefined;
  /** The BLAS torch ran on. */
  torchBlas?: string;
  load: number[];
}

/** The interleaved rounds (see the header); torch is skipped, with a message, where it is not installed. */
export function compare(options: { caseName: string; rounds: number; repeat: number; threads: number[]; peer: boolean }): TrainComparison {
  const dir = mkdtempSync(join(tmpdir(), 'model-train-'));
  const peer = options.peer && torchAvailable();
  if (options.peer && !peer) process.stderr.write('model-train: python3-torch / python3-torchvision not installed; the torch peer is skipped\n');
  try {
    const batchFile = join(dir, 'batch.json');
    if (peer) writeFileSync(batchFile, JSON.stringify(peerInput(options.caseName, sharedBatch(options.caseName))));
    const runsOurs: Record<number, StepTimes[]> = {};
    const runsTorch: Record<number, StepTimes[]> = {};
    const load: number[] = [];
    const self = fileURLToPath(import.meta.url);
    for (let round = 0; round < options.rounds; round++) {
      for (const threads of options.threads) {
        load.push(loadavg()[0]!);
        const ours = runChild(['--import', 'tsx', self, '--child', '--case', options.caseName, '--threads', String(threads), '--repeat', String(options.repeat)], process.execPath);
        process.stderr.write(`round ${round + 1}, ours ${threads} thread(s): ${JSON.stringify(ours)}\n`);
        (runsOurs[threads] ??= []).push(ours);
        if (!peer) continue;
        const torch = runChild([peerScript, '--batch', batchFile, '--threads', String(threads), '--repeat', String(options.repeat), ...(partsOf(options.caseName) ? [] : ['--no-parts'])], python);
        process.stderr.write(`round ${round + 1}, torch ${threads} thread(s): ${JSON.stringify(torch)}\n`);
        (runsTorch[threads] ??= []).push(torch);
      }
    }
    // Per key, the median of the processes that measured it (a failed step keeps its reason).
    const medianOf = (list: StepTimes[], key: 'trainStepMs' | PartKey): number | string | undefined => {
      const numbers = list.map((r) => r[key]).filter((v): v is number => typeof v === 'number');
      return numbers.length > 0 ? median(numbers) : list.find((r) => r[key] !== undefined)?.[key];
    };
    const medians = (runs: Record<number, StepTimes[]>): Record<number, StepTimes> =>
      Object.fromEntries(Object.entries(runs).map(([threads, list]) => {
        const native = list.find((r) => r.nativeKernels)?.nativeKernels;
        const parts = Object.fromEntries(partLabels.map(([key]) => [key, medianOf(list, key)]).filter(([, v]) => v !== undefined));
        return [threads, { ...parts, ...(native ? { nativeKernels: native } : {}) } as StepTimes];
      }));
    const torchBlas = Object.values(runsTorch)[0]?.[0]?.blas;
    return { caseName: options.caseName, threads: options.threads, ours: medians(runsOurs), torch: peer ? medians(runsTorch) : undefined, ...(torchBlas ? { torchBlas } : {}), load };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The comparison as BENCHMARKS.md rows. */
export function resultsOf(c: TrainComparison, command: string): BenchResult[] {
  const what = cases[c.caseName]!.what;
  const out: BenchResult[] = [];
  const loads = `load average ${Math.min(...c.load).toFixed(1)}-${Math.max(...c.load).toFixed(1)} during the runs`;
  for (const threads of c.threads) {
    const ours = c.ours[threads]!;
    const torch = c.torch?.[threads];
    for (const [key, label] of partLabels) {
      const [mine, theirs] = [ours[key], torch?.[key]];
      if (mine === undefined) continue;
      const isStep = key === 'trainStepMs';
      const engine = ours.nativeKernels ? `wasm + ${ours.nativeKernels.split(',')[0]} kernels` : 'wasm';
      const name = `${isStep ? `train step, ${what}` : label}, ours (${engine}), ${threads} thread${threads === 1 ? '' : 's'}`;
      if (typeof mine === 'string') {
        out.push({ name, value: Number.NaN, unit: 'ms', note: mine, command });
        continue;
      }
      const vsTorch = typeof theirs === 'number';
      if (key === 'detections') {
        out.push({ name, value: mine, unit: '', ...(vsTorch ? { note: `torch ${theirs}` } : {}) });
        continue;
      }
      out.push({
        name,
        value: mine,
        unit: 'ms',
        ...(isStep && vsTorch ? { target: `≤ 1.5x torch (${Math.round(1.5 * theirs)} ms)`, ok: mine <= 1.5 * theirs } : {}),
        ...(vsTorch ? { note: `torch ${theirs} ms: ${(mine / theirs).toFixed(2)}x${isStep ? `; torch on ${c.torchBlas ?? 'an unknown BLAS'}; ${loads}` : ''}` } : isStep ? { note: loads } : {}),
        ...(isStep ? { command } : {}),
      });
    }
  }
  const speedUp = (one: StepTimes | undefined, two: StepTimes | undefined): number | undefined =>
    typeof one?.trainStepMs === 'number' && typeof two?.trainStepMs === 'number' ? Math.round((one.trainStepMs / two.trainStepMs) * 100) / 100 : undefined;
  const ours = speedUp(c.ours[1], c.ours[2]);
  if (ours !== undefined) out.push({ name: 'train step, ours, 2 threads vs 1', value: ours, unit: 'x', note: loads });
  const torch = speedUp(c.torch?.[1], c.torch?.[2]);
  if (torch !== undefined) out.push({ name: 'train step, torch, 2 threads vs 1', value: torch, unit: 'x' });
  return out;
}

/** bench/run.ts entry (`npm run bench -- model-train`): the cpu profile network, 1 and 2 threads, 2 rounds. */
export async function run(): Promise<BenchResult[]> {
  const comparison = compare({ caseName: 'cpu-profile', rounds: 2, repeat: 2, threads: [1, 2], peer: true });
  return resultsOf(comparison, 'node --import tsx bench/model-train.ts --case cpu-profile --rounds 2 --repeat 2 --threads 1,2');
}

/** `npm run bench -- model-train-small`: the same with the small backbone (the profile's network up to fb90fa3). */
export async function runSmall(): Promise<BenchResult[]> {
  const comparison = compare({ caseName: 'cpu-profile-small', rounds: 2, repeat: 2, threads: [1, 2], peer: true });
  return resultsOf(comparison, 'node --import tsx bench/model-train.ts --case cpu-profile-small --rounds 2 --repeat 2 --threads 1,2');
}

/** `npm run bench -- model-train-r101`: the recipe's ResNet101 at 512, one step each side (minutes each). */
export async function runR101(): Promise<BenchResult[]> {
  const comparison = compare({ caseName: 'r101', rounds: 1, repeat: 1, threads: [1], peer: true });
  return resultsOf(comparison, 'node --import tsx bench/model-train.ts --case r101 --rounds 1 --repeat 1 --threads 1');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      case: { type: 'string', default: 'cpu-profile' },
      rounds: { type: 'string', default: '2' },
      repeat: { type: 'string', default: '3' },
      threads: { type: 'string', default: '1,2' },
      child: { type: 'boolean', default: false },
      'no-peer': { type: 'boolean', default: false },
      'peer-input': { type: 'string' },
      profile: { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
    },
  });
  const repeat = Number(values.repeat);
  if (values['peer-input']) {
    // The torch peer's input alone, to run it by hand: python3 bench/torch_maskrcnn_train_peer.py --batch FILE
    writeFileSync(values['peer-input'], JSON.stringify(peerInput(values.case!, sharedBatch(values.case!))));
    return;
  }
  if (values.profile) {
    await profileOurs(values.case!, Number(values.threads!.split(',')[0]));
    return;
  }
  if (values.child) {
    console.log(JSON.stringify(await measureOurs(values.case!, Number(values.threads), repeat, partsOf(values.case!))));
    return;
  }
  const { machineLine } = await import('./run.js');
  const machine = machineLine();
  const comparison = compare({ caseName: values.case!, rounds: Number(values.rounds), repeat, threads: values.threads!.split(',').map(Number), peer: !values['no-peer'] });
  console.log(JSON.stringify(comparison));
  const command = `node --import tsx bench/model-train.ts --case ${values.case} --rounds ${values.rounds} --repeat ${repeat} --threads ${values.threads}`;
  const results = resultsOf(comparison, command);
  for (const r of results) console.log(`| ${r.name} | ${r.value} ${r.unit} | ${r.target ?? ''} | ${r.note ?? ''} |`);
  if (values.write) {
    // Its own section per case (the default case is `npm run bench -- model-train`'s).
    const { writeSection } = await import('./run.js');
    const sections: Record<string, string> = { 'cpu-profile': 'model-train', 'cpu-profile-small': 'model-train-small' };
    writeSection(sections[values.case!] ?? `model-train-${values.case}`, results, machine);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
