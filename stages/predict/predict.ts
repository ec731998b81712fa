// `dsb2018 predict --checkpoint DIR (--data DATASET [--ids FILE] | --images DIR) --out DIR [flags]`
//
// A trained checkpoint + images -> a predictions directory (predictions.ts): per image, the instances with their
// scores, boxes and masks, still overlapping (the postprocess stage cleans them). The recipe's order:
// predict with TTA (predict-core.ts: left-right flip, union rule) and the scale-down retry here, then postprocess.
// --small-nuclei (off by default) adds a second look at twice the scale for images whose nuclei are too small
// for the network (small-nuclei.ts).
// The model's config is the one the checkpoint was trained with (its meta.config); only the detection
// thresholds can be changed here.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { StageError } from '../stage-error.js';
import { type StageEvents } from '../contract.js';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, enumFlag, numberFlag, optionalNumberFlag, optionalStringFlag, stringFlag, type FlagValues, type StageProgram } from '../program.js';
import { backendPreferences, selectBackend, type BackendPreference } from '../model/backend.js';
import { loadCheckpoint, readCheckpointMeta } from '../model/checkpoint.js';
import { configFromParams, type MaskRcnnConfig } from '../model/config.js';
import { MaskRcnn } from '../model/mask-rcnn.js';
import { asNetworkSees } from '../model/input-view.js';
import { defaultPredictOptions, predictImages, ttaModes, type Detectors, type PredictOptions, type TtaMode } from './predict-core.js';
import { smallNucleiModes, type SmallNucleiMode } from './small-nuclei.js';
import { datasetInputs, imageFolderSelection, readInputImage, type PredictInput } from './predict-inputs.js';
import { PredictionsWriter, encodeInstances } from './predictions.js';

export interface PredictRun {
  checkpoint: string;
  inputs: PredictInput[];
  out: string;
  options: PredictOptions;
  /** config.detection overrides (undefined: the checkpoint's value). */
  maskThreshold?: number;
  minConfidence?: number;
  backend: BackendPreference;
  threads: number | 'auto';
  /** Images per detector call. */
  batch: number;
}

export interface PredictSummary {
  images: number;
  instances: number;
  /** Wall seconds of the prediction loop (read, detect, merge, write) per image; model loading excluded. */
  seconds_per_image: number;
  /** Images that took the scale-down retry, and those whose result it replaced. */
  retries: number;
  retries_used: number;
  /** Images predicted again at twice the scale (--small-nuclei), and the mode. */
  zoomed: number;
  small_nuclei: SmallNucleiMode;
  backend: string;
  /** wasm: the native library its convolutions ran on ("OpenBLAS 0.3.21, SkylakeX"), null for its own kernels. */
  native_kernels: string | null;
  tta: TtaMode;
  load_seconds: number;
}

/** The checkpoint's model config with the detection overrides; a checkpoint without one is a StageError. */
export function checkpointConfig(dir: string, overrides: { maskThreshold?: number; minConfidence?: number } = {}): MaskRcnnConfig {
  const meta = readCheckpointMeta(dir);
  const saved = meta['config'];
  if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) {
    throw new StageError(`checkpoint ${dir}: model.json has no meta.config (was it written by dsb2018 train?)`);
  }
  let config: MaskRcnnConfig;
  try {
    config = configFromParams(saved as Record<string, unknown>);
  } catch (error) {
    if (error instanceof StageError) throw new StageError(`checkpoint ${dir}: meta.config: ${error.message}`);
    throw error;
  }
  if (overrides.maskThreshold !== undefined) config.detection.maskThreshold = overrides.maskThreshold;
  if (overrides.minConfidence !== undefined) config.detection.minConfidence = overrides.minConfidence;
  return config;
}

/** Loads the checkpoint, predicts every input and writes the predictions directory atomically. */
export async function runPredict(run: PredictRun, events: StageEvents): Promise<PredictSummary> {
  const config = checkpointConfig(run.checkpoint, {
    ...(run.maskThreshold !== undefined ? { maskThreshold: run.maskThreshold } : {}),
    ...(run.minConfidence !== undefined ? { minConfidence: run.minConfidence } : {}),
  });
  if (run.inputs.length === 0) {
    // Nothing to predict (--if-missing empty without the images): an empty predictions directory, no model.
    await writeAtomically(run.out, (tmp) => new PredictionsWriter(tmp).finish());
    return { images: 0, instances: 0, seconds_per_image: 0, retries: 0, retries_used: 0, zoomed: 0, small_nuclei: run.options.smallNuclei.mode, backend: 'none', native_kernels: null, tta: run.options.tta, load_seconds: 0 };
  }
  const backend = await selectBackend(run.backend, events.log, { threads: run.threads });
  const loadStart = performance.now();
  const model = new MaskRcnn(config);
  // The upscale zoom: the same weights in a network molding to twice the input size.
  const upscaled = run.options.smallNuclei.mode === 'upscale' ? new MaskRcnn({ ...config, image: { ...config.image, size: 2 * config.image.size } }) : undefined;
  try {
    for (const network of upscaled ? [model, upscaled] : [model]) {
      network.build();
      const loaded = await loadCheckpoint(run.checkpoint, network.store);
      for (const tensor of Object.values(loaded.extra)) tensor.dispose();
    }
    const loadSeconds = (performance.now() - loadStart) / 1000;
    events.log(
      `predict: ${run.inputs.length} images, ${config.backbone.name} at ${config.image.size}, tta ${run.options.tta}, ` +
        `scale-down retry ${run.options.scaleDownRetry ? 'on' : 'off'}, mask threshold ${config.detection.maskThreshold}, ` +
        `min confidence ${config.detection.minConfidence}, small nuclei ${run.options.smallNuclei.mode}` +
        (run.options.smallNuclei.mode === 'none' ? '' : ` (under ${run.options.smallNuclei.minDiameter} px at the network's scale)`),
    );
    const detectors: Detectors = {
      detect: (images) => model.detectImages(images),
      networkSize: config.image.size,
      ...(upscaled ? { detectUpscaled: (images) => upscaled.detectImages(images) } : {}),
    };
    let zoomed = 0;
    let instances = 0;
    let retries = 0;
    let retriesUsed = 0;
    const started = performance.now();
    await writeAtomically(run.out, async (tmp) => {
      const writer = new PredictionsWriter(tmp);
      for (let start = 0; start < run.inputs.length; start += run.batch) {
        const group = run.inputs.slice(start, start + run.batch);
        // Each whole image as the network was trained to see it (input-view.ts), before TTA, tiles and retries.
        const images = (await Promise.all(group.map(readInputImage))).map((image) => asNetworkSees(image, config.image));
        const outcomes = await predictImages(images, detectors, run.options);
        for (const [k, outcome] of outcomes.entries()) {
          const { width, height } = images[k]!;
          await writer.add({ id: group[k]!.id, width, height, instances: encodeInstances(outcome.instances, width, height) });
          instances += outcome.instances.length;
          if (outcome.retried) retries++;
          if (outcome.retryUsed) retriesUsed++;
          if (outcome.zoomed) {
            zoomed++;
            events.log(`predict: ${group[k]!.id}: nuclei too small at ${config.image.size} px, predicted again at twice the scale (${run.options.smallNuclei.mode})`);
          }
          if (outcome.retried) events.log(`predict: ${group[k]!.id}: no mask left, scale-down retry ${outcome.retryUsed ? 'kept' : 'found no more'}`);
        }
        events.progress(start + group.length, run.inputs.length, 'image');
      }
      await writer.finish();
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      images: run.inputs.length,
      instances,
      seconds_per_image: run.inputs.length > 0 ? seconds / run.inputs.length : 0,
      retries,
      retries_used: retriesUsed,
      zoomed,
      small_nuclei: run.options.smallNuclei.mode,
      backend: backend.name,
      // wasm: the library its convolutions ran on (kernels/native/), null for its own kernels: part of the result's provenance
      native_kernels: backend.nativeKernels ?? null,
      tta: run.options.tta,
      load_seconds: loadSeconds,
    };
  } finally {
    model.dispose();
    upscaled?.dispose();
  }
}

const ifMissingModes = ['error', 'empty'] as const;

/** The run described by the stage's flags; every mistake is a StageError naming the flag or file. */
export async function predictRunFromFlags(flags: FlagValues, warn: (message: string) => void = () => {}): Promise<PredictRun> {
  const data = optionalStringFlag(flags, 'data');
  const imagesDir = optionalStringFlag(flags, 'images');
  const ids = optionalStringFlag(flags, 'ids');
  if ((data === undefined) === (imagesDir === undefined)) throw new StageError('give exactly one of --data (a compact dataset) or --images (a DSB-layout folder)');
  const tta = enumFlag(flags, 'tta', ttaModes);
  const backend = enumFlag(flags, 'backend', backendPreferences);
  const batch = numberFlag(flags, 'batch');
  const threadsText = stringFlag(flags, 'threads');
  const threads = threadsText === 'auto' ? 'auto' : numberFlag(flags, 'threads');
  if (threads !== 'auto' && (!Number.isInteger(threads) || threads < 1)) throw new StageError(`flag --threads: ${threads} must be auto or a whole number >= 1`);
  const maskThreshold = optionalNumberFlag(flags, 'mask-threshold');
  const minConfidence = optionalNumberFlag(flags, 'min-confidence');
  const ifMissing = enumFlag(flags, 'if-missing', ifMissingModes);
  let inputs: PredictInput[];
  if (data !== undefined) inputs = await datasetInputs(data, ids);
  else if (ifMissing === 'empty' && !existsSync(imagesDir!)) {
    warn(`warning: --images ${imagesDir} does not exist: writing an empty predictions directory`);
    inputs = [];
  } else inputs = await imageFolderSelection(imagesDir!, ids);
  return {
    checkpoint: stringFlag(flags, 'checkpoint'),
    inputs,
    out: stringFlag(flags, 'out'),
    options: {
      ...defaultPredictOptions,
      tta,
      scaleDownRetry: booleanFlag(flags, 'scale-down-retry'),
      smallNuclei: { mode: enumFlag(flags, 'small-nuclei', smallNucleiModes), minDiameter: numberFlag(flags, 'small-nuclei-diameter') },
    },
    ...(maskThreshold !== undefined ? { maskThreshold } : {}),
    ...(minConfidence !== undefined ? { minConfidence } : {}),
    backend,
    threads,
    batch,
  };
}

export const stage: StageProgram = {
  name: 'predict',
  summary:
    'Detects nuclei with a trained Mask R-CNN checkpoint: per image, instances with scores, boxes and masks ' +
    '(overlapping; run postprocess next). Test-time augmentation by left-right flip with the recipe\'s union rule; ' +
    'images left without a mask are predicted again inside a 4x larger black canvas (scale-down retry).',
  flags: {
    checkpoint: { type: 'string', required: true, description: 'checkpoint directory written by train (model.json + weights.bin; its meta.config is the model)' },
    data: { type: 'string', description: 'compact dataset whose images to predict (labels are not read)' },
    ids: { type: 'string', description: 'id list (one per line): predict only these images' },
    images: { type: 'string', description: 'DSB-layout folder of bare images: <id>/images/<id>.png (e.g. stage1_test)' },
    'if-missing': { type: 'enum', values: ifMissingModes, default: 'error', description: 'error, or empty: write an empty predictions directory (with a warning) when --images does not exist' },
    out: { type: 'string', required: true, description: 'predictions directory to write (replaced atomically)' },
    tta: { type: 'enum', values: ttaModes, default: 'hflip', description: 'test-time augmentation: none, or hflip (union with the flipped pass, IoU > 0.1)' },
    'scale-down-retry': { type: 'bool', default: true, description: 'predict an image left without masks again in a 4H x 4W canvas' },
    'small-nuclei': { type: 'enum', values: smallNucleiModes, default: 'none', description: 'images whose nuclei are too small for the network: predict again at twice the scale as 4 tiles (tile) or through a 2x network (upscale)' },
    'small-nuclei-diameter': { type: 'number', min: 1, default: 10, description: 'with --small-nuclei: zoom when the median nucleus is narrower than this many network pixels' },
    'mask-threshold': { type: 'number', min: 0, max: 1, description: 'mask probability threshold (default: the checkpoint config\'s, recipe 0.35)' },
    'min-confidence': { type: 'number', min: 0, max: 1, description: 'drop detections scoring below this (default: the checkpoint config\'s, recipe 0.75)' },
    backend: { type: 'enum', values: backendPreferences, default: 'auto', description: 'tfjs backend' },
    threads: { type: 'string', default: 'auto', description: 'wasm threads (auto: the machine\'s cores, at most 8)' },
    batch: { type: 'int', min: 1, default: 1, description: 'images per forward pass (each is molded to the S x S input; TTA doubles it)' },
    metrics: { type: 'string', description: 'write {images, instances, seconds_per_image, retries, …} to this JSON file' },
  },
  async run(flags, { events }) {
    const run = await predictRunFromFlags(flags, events.log);
    const summary = await runPredict(run, events);
    events.metric({ ...summary });
    events.log(
      `predict: ${summary.images} images, ${summary.instances} instances, ${summary.seconds_per_image.toFixed(2)} s/image on ${summary.backend}, ` +
        `${summary.retries} scale-down retries (${summary.retries_used} kept), ${summary.zoomed} zoomed (${summary.small_nuclei})`,
    );
    const metricsFile = optionalStringFlag(flags, 'metrics');
    if (metricsFile) await writeAtomically(metricsFile, (tmp) => writeFile(tmp, JSON.stringify(summary, null, 1) + '\n'));
  },
};
