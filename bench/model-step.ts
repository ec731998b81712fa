// Benchmark: one Mask R-CNN training step and one inference, for the small backbone at 256 and ResNet50 at 512,
// on a tfjs backend (wasm by default, single-threaded, to compare with torch at one thread), against torchvision's
// maskrcnn_resnet50_fpn inference at 512 on the same CPU (bench/torch_maskrcnn_peer.py, Debian's python3-torch).
//
//   node --import tsx bench/model-step.ts [--backend wasm|cpu|auto] [--cases small,resnet50,resnet50-b2,resnet50-tv] [--repeat 2] [--no-peer]
//
// Cases: small (small backbone at 256); resnet50 (the recipe with a ResNet50 at 512: 512-channel RPN conv,
// 6000 -> 2048 proposals, up to 400 detections); resnet50-b2 (its train step on 2 images, the recipe's batch);
// resnet50-tv (the same network with torchvision's test-time sizes: 256-channel RPN conv, 1000 -> 1000
// proposals, at most 100 detections; inference only: the like-for-like comparison with the torch peer). Its
// detection rule is torchvision's too: per-class NMS at 0.5, and a box kept where its foreground probability
// is at least 0.5 — ours keeps a box only where the foreground class wins the softmax (Matterport's rule; for two
// classes, p ≥ 0.5), so the peer runs with box_score_thresh 0.5, and both report how many boxes reached the
// mask head (with random weights the count, not the network, would otherwise decide the time).
//
// Prints one JSON line per measurement and a markdown table for BENCHMARKS.md (section <!-- bench:model -->).
// Times are the median of `repeat` runs after one warm-up (kernel compilation, variable creation).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { configFromParams, type MaskRcnnConfig } from '../stages/model/config.js';
import { MaskRcnn } from '../stages/model/mask-rcnn.js';
import { buildTrainBatch, imageMeta } from '../stages/model/molding.js';
import { seededRng } from '../stages/model/sampler.js';
import { Amsgrad } from '../stages/train/amsgrad.js';
import type { BenchResult } from './run.js';
import { syntheticSample } from './synthetic-sample.js';
import { timeItAsync } from './timing.js';

export interface ModelStepResult {
  case: string;
  backend: string;
  imageSize: number;
  /** A number, or why the step failed (e.g. out of wasm memory). */
  trainStepMs: number | string;
  inferenceMs: number;
  /** Boxes the inference returned (each one through the mask head). */
  detections?: number;
}

const cases: Record<string, Record<string, unknown>> = {
  small: { preset: 'small' },
  resnet50: { preset: 'recipe', backbone: { name: 'resnet50' } },
  // The same network with torchvision maskrcnn_resnet50_fpn's test-time sizes, for a like-for-like comparison
  // with the torch peer: a 256-channel RPN conv, 1000 proposals kept before and after NMS.
  'resnet50-tv': {
    preset: 'recipe',
    backbone: { name: 'resnet50' },
    rpn: { headChannels: 256, preNmsTopN: 1000, postNmsTopNTest: 1000 },
    // box_detections_per_img 100, box_nms_thresh 0.5; min confidence 0.5 = the peer's box_score_thresh.
    detection: { maxInstances: 100, nmsThresh: 0.5, minConfidence: 0.5 },
  },
  // The recipe's batch of 2 images at 512 (IMAGES_PER_GPU = 2): the train step only (its inference is resnet50's).
  'resnet50-b2': { preset: 'recipe', backbone: { name: 'resnet50' } },
};

/** Images per train step of a case (1 unless named here). */
const trainBatchSize: Record<string, number> = { 'resnet50-b2': 2 };

export async function benchModelStep(options: { backend: string; cases: string[]; repeat: number }): Promise<ModelStepResult[]> {
  let backendLabel = options.backend;
  if (options.backend === 'cpu') await tf.setBackend('cpu');
  else {
    // backend.ts registers the training kernels wasm needs; one thread to compare with torch.set_num_threads(1).
    const { selectBackend } = await import('../stages/model/backend.js');
    const selected = await selectBackend(options.backend as 'wasm', (m) => process.stderr.write(m + '\n'), { threads: 1 });
    // The rows say whether wasm ran its own convolutions or OpenBLAS's (kernels/native/; RUNNER_NATIVE_KERNELS=off).
    backendLabel = selected.nativeKernels ? `${selected.name} + ${selected.nativeKernels.split(',')[0]} kernels` : selected.name;
  }
  const results: ModelStepResult[] = [];
  for (const name of options.cases) {
    const params = cases[name];
    if (!params) throw new Error(`bench model-step: unknown case "${name}" (known: ${Object.keys(cases).join(', ')})`);
    const config: MaskRcnnConfig = configFromParams(params);
    const s = config.image.size;
    const sample = syntheticSample(s, 40);
    const batch = buildTrainBatch(Array.from({ length: trainBatchSize[name] ?? 1 }, () => sample), { ...config.image }, seededRng(1));
    const model = new MaskRcnn(config);
    const optimizer = new Amsgrad({ learningRate: 1e-5 });
    // Inference first: a training step that runs out of wasm memory aborts the whole wasm module.
    const meta = imageMeta(s, s, s);
    const firstImage = batch.images.slice(0, 1) as tf.Tensor4D;
    let detections: number | undefined;
    const inferenceMs = name === 'resnet50-b2' ? Number.NaN : await timeItAsync(options.repeat, async () => {
      detections = (await model.detect(firstImage, [meta]))[0]?.scores.length;
    });
    firstImage.dispose();
    let trainStepMs: number | string;
    if (name === 'resnet50-tv') trainStepMs = 'not timed (inference comparison only)';
    else try {
      trainStepMs = Math.round(await timeItAsync(options.repeat, () => model.trainStep(optimizer, batch)));
    } catch (error) {
      trainStepMs = `failed: ${(error as Error).message.split('\n')[0]}`;
    }
    const result: ModelStepResult = { case: name, backend: backendLabel, imageSize: s, trainStepMs, inferenceMs: Math.round(inferenceMs), ...(detections === undefined ? {} : { detections }) };
    console.log(JSON.stringify(result));
    results.push(result);
    batch.images.dispose();
    model.dispose();
  }
  return results;
}

/** The peer's box_score_thresh for the like-for-like case: ours keeps a box where the foreground wins (p ≥ 0.5). */
const PEER_SCORE_THRESH = 0.5;

/** torchvision maskrcnn_resnet50_fpn inference (random init) at `size`, one thread; undefined if torch is missing. */
export function torchPeer(size: number, repeat: number): { ms: number; detections: number } | undefined {
  const script = fileURLToPath(new URL('./torch_maskrcnn_peer.py', import.meta.url));
  try {
    // Debian's interpreter, where python3-torch lives (a pyenv `python3` earlier on PATH would not see it).
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const out = execFileSync(python, [script, '--size', String(size), '--repeat', String(repeat), '--score-thresh', String(PEER_SCORE_THRESH)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const line = JSON.parse(out.trim().split('\n').pop()!) as { inference_ms: number; detections: number };
    return { ms: line.inference_ms, detections: line.detections };
  } catch (error) {
    process.stderr.write(`torch peer unavailable: ${(error as Error).message.split('\n')[0]}\n`);
    return undefined;
  }
}

/** bench/run.ts entry (`npm run bench -- model`): wasm, both cases, the torch peer; one timed run after a warm-up. */
export async function run(): Promise<BenchResult[]> {
  const repeat = 1;
  const results = await benchModelStep({ backend: 'wasm', cases: ['small', 'resnet50', 'resnet50-b2', 'resnet50-tv'], repeat });
  const peer = torchPeer(512, repeat);
  const out: BenchResult[] = [];
  for (const r of results) {
    const what =
      r.case === 'resnet50-tv' ? 'resnet50 backbone, torchvision-equivalent config (256-ch RPN, 1000 proposals, ≤ 100 detections)'
      : r.case === 'resnet50' ? 'resnet50 backbone, recipe config (512-ch RPN, 2048 proposals, ≤ 400 detections)'
      : r.case === 'resnet50-b2' ? 'resnet50 backbone, recipe config, 2 images'
      : `${r.case} backbone`;
    const label = `${what} at ${r.imageSize}, ${r.backend}, 1 thread`;
    if (typeof r.trainStepMs === 'number') out.push({ name: `train step, ${label}`, value: r.trainStepMs, unit: 'ms' });
    else if (r.case !== 'resnet50-tv') out.push({ name: `train step, ${label}`, value: Number.NaN, unit: 'ms', note: r.trainStepMs });
    if (Number.isNaN(r.inferenceMs)) continue;
    const boxes = r.detections === undefined ? '' : `; ${r.detections} detections`;
    out.push({
      name: `inference, ${label}`,
      value: r.inferenceMs,
      unit: 'ms',
      ...(r.imageSize === 512 && peer !== undefined
        ? { target: `≤ 1.5x torch (${Math.round(1.5 * peer.ms)} ms)`, ok: r.inferenceMs <= 1.5 * peer.ms, note: `${(r.inferenceMs / peer.ms).toFixed(2)}x torch${boxes}` }
        : boxes ? { note: boxes.slice(2) } : {}),
    });
  }
  if (peer !== undefined) out.push({ name: 'inference, torchvision maskrcnn_resnet50_fpn at 512, torch CPU, 1 thread', value: peer.ms, unit: 'ms', command: `python3 bench/torch_maskrcnn_peer.py --score-thresh ${PEER_SCORE_THRESH}`, note: `${peer.detections} detections` });
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'wasm' },
      cases: { type: 'string', default: 'small,resnet50,resnet50-b2,resnet50-tv' },
      repeat: { type: 'string', default: '2' },
      'no-peer': { type: 'boolean', default: false },
    },
  });
  const repeat = Number(values.repeat);
  const results = await benchModelStep({ backend: values.backend!, cases: values.cases!.split(','), repeat });
  const peer = values['no-peer'] ? undefined : torchPeer(512, repeat);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    `Machine: ${cpu}, ${cpus().length} cores; Node ${process.version}; one thread for tfjs and torch.`,
    `Command: \`node --import tsx bench/model-step.ts --backend ${values.backend} --cases ${values.cases} --repeat ${repeat}\``,
    '',
    '| case | backend | image | train step (ms) | inference (ms) | detections | torch inference (ms) | torch detections | ratio |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => {
      const torch = r.imageSize === 512 && peer !== undefined ? peer : undefined;
      return `| ${r.case} | ${r.backend} | ${r.imageSize} | ${r.trainStepMs} | ${r.inferenceMs} | ${r.detections ?? '-'} | ${torch?.ms ?? '-'} | ${torch?.detections ?? '-'} | ${torch ? (r.inferenceMs / torch.ms).toFixed(2) + 'x' : '-'} |`;
    }),
  ];
  console.log(lines.join('\n'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
