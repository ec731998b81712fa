// `dsb2018 train`: one training phase of the recipe (the pipeline chains three: lr 1e-4, 1e-5, 1e-6).
//
// Starts from the previous phase's checkpoint (--init-checkpoint), from ImageNet ResNet50 weights (--imagenet,
// a Keras .h5) or from scratch, with a fresh AMSGrad each phase (the recipe restarts the optimizer state).
// Per epoch: `steps` steps of `batch` augmented samples, then the loss over the whole validation list without
// augmentation; the weights with the lowest validation loss are the phase's output. Every epoch is also
// checkpointed under --checkpoints (weights + optimizer state), so a killed phase resumes where it stopped.
import { mkdirSync, writeFileSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { StageError } from '../stage-error.js';
import { shuffled } from '../shuffled.js';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, enumFlag, numberFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { backendPreferences, selectBackend } from '../model/backend.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from '../model/checkpoint.js';
import { configFromParams, trainingInputSize, trainingNetworkConfig, type MaskRcnnConfig } from '../model/config.js';
import { loadKerasH5 } from '../model/keras-h5.js';
import { MaskRcnn, type Losses, type QueuedStep } from '../model/mask-rcnn.js';
import { buildTrainBatch, type BatchOptions } from '../model/molding.js';
import { seededRng } from '../model/sampler.js';
import { Amsgrad } from './amsgrad.js';
import { augmentKeys, augmentSample, defaultAugmentOptions, type AugmentOptions } from './augment.js';
import { resizePad } from './augment-geometry.js';
import { cropInput } from './input-crop.js';
import { phaseEstimate } from './phase-estimate.js';
import { writeLineChartPng, type Series } from './loss-curve.js';
import { meanLosses, phaseRunKey, resumableState, type EpochRecord, type PhaseMeta } from './phase-state.js';
import { loadSamples, type TrainingSample } from './training-set.js';
import { asNetworkSees } from '../model/input-view.js';
import type { Image8, LabelMap } from '../imaging/dataset.js';

function parseJsonFlag(name: string, text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new StageError(`flag --${name}: expected a JSON object, got ${JSON.stringify(text)} (${(error as Error).message})`);
  }
}

/** Augmentation options: the recipe's, with the flag's overrides ({"cropProbability": 0} …), or none at all. */
function augmentOptions(text: string, size: number, inputSize: number): AugmentOptions | undefined {
  if (text === 'none') return undefined;
  const overrides = parseJsonFlag('augment', text);
  const options: AugmentOptions = { ...defaultAugmentOptions, size, inputSize };
  for (const [key, value] of Object.entries(overrides)) {
    if (!augmentKeys.includes(key)) {
      throw new StageError(`flag --augment: unknown key "${key}" (known: ${augmentKeys.join(', ')})`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new StageError(`flag --augment: "${key}" must be a number`);
    (options as unknown as Record<string, number>)[key] = value;
  }
  return options;
}

interface PhaseSettings {
  lr: number;
  epochs: number;
  stepsPerEpoch: number;
  batch: number;
  seed: number;
  valBatch: number;
}

export const stage: StageProgram = {
  name: 'train',
  summary:
    'One training phase of the Mask R-CNN: AMSGrad (clip-norm 5) from a checkpoint, ImageNet weights or scratch; ' +
    'augmented batches; validation loss each epoch; best checkpoint kept; resumes a killed phase from --checkpoints.',
  flags: {
    data: { type: 'string', required: true, description: 'compact dataset holding the training and validation ids' },
    'train-ids': { type: 'string', description: 'file of training ids in --data (default: every sample)' },
    'val-ids': { type: 'string', description: 'file of validation ids in --data (default: no validation)' },
    extra: { type: 'string', multiple: true, description: 'extra compact datasets used whole for training (mosaics, external)' },
    model: { type: 'string', default: '{"preset":"recipe"}', description: 'model config as JSON: {"preset": "recipe"|"small", "config": {…overrides}}' },
    'init-checkpoint': { type: 'string', description: 'start from this checkpoint (the previous phase)' },
    imagenet: { type: 'string', description: 'start the backbone from Keras ImageNet ResNet50 weights (.h5, the first 50 layers)' },
    lr: { type: 'string', default: '1e-4', description: 'learning rate' },
    epochs: { type: 'string', default: '25', description: 'epochs in this phase' },
    'steps-per-epoch': { type: 'string', default: '0', description: 'optimizer steps per epoch (0: training samples / batch)' },
    batch: { type: 'string', default: '2', description: 'images per step' },
    'max-val': { type: 'string', default: '0', description: 'validate on at most this many images (0: the whole list)' },
    augment: { type: 'string', default: '{}', description: 'augmentation overrides as JSON ({"cropProbability": 0, …}), or none' },
    seed: { type: 'string', default: '1', description: 'seed of sample order and augmentation' },
    backend: { type: 'enum', values: backendPreferences, default: 'auto', description: 'tfjs backend' },
    threads: { type: 'string', default: 'auto', description: 'wasm threads (auto: the machine\'s cores)' },
    'phase-name': { type: 'string', default: 'phase', description: 'label of this phase in curves and metrics' },
    checkpoints: { type: 'string', description: 'directory for per-epoch checkpoints (resume); kept by the runner across runs' },
    out: { type: 'string', required: true, description: 'output directory: the best checkpoint, history.json, loss-curve.png' },
    metrics: { type: 'string', description: 'write the phase metrics JSON here' },
    'keep-last': { type: 'boolean', default: false, description: 'output the last epoch instead of the best by validation loss' },
  },

  async run(flags, { events }) {
    const out = stringFlag(flags, 'out');
    const dataDir = stringFlag(flags, 'data');
    const trainIds = optionalStringFlag(flags, 'train-ids');
    const valIds = optionalStringFlag(flags, 'val-ids');
    const extras = (flags['extra'] as string[] | undefined) ?? [];
    const config: MaskRcnnConfig = modelConfig(parseJsonFlag('model', stringFlag(flags, 'model')));
    // An empty value means "none", so a pipeline param can switch the initialisation off.
    const initCheckpoint = optionalStringFlag(flags, 'init-checkpoint') || undefined;
    const imagenet = optionalStringFlag(flags, 'imagenet') || undefined;
    if (initCheckpoint && imagenet) throw new StageError('give --init-checkpoint or --imagenet, not both');
    // Without --checkpoints the per-epoch checkpoints live in a temp dir (no resume), removed at the end.
    const checkpointsFlag = optionalStringFlag(flags, 'checkpoints');
    const checkpointsDir = checkpointsFlag ?? mkdtempSync(join(tmpdir(), 'dsb2018-train-'));
    const phaseName = stringFlag(flags, 'phase-name');
    // The network a step trains: config.image.size, or a window of it (image.trainInputSize, config.ts).
    const inputSize = trainingInputSize(config);
    const augment = augmentOptions(stringFlag(flags, 'augment'), config.image.size, inputSize);
    const settings: PhaseSettings = {
      lr: numberFlag(flags, 'lr'),
      epochs: numberFlag(flags, 'epochs'),
      stepsPerEpoch: numberFlag(flags, 'steps-per-epoch'),
      batch: numberFlag(flags, 'batch'),
      seed: numberFlag(flags, 'seed'),
      valBatch: numberFlag(flags, 'batch'),
    };
    if (!(settings.lr > 0)) throw new StageError('flag --lr must be > 0');
    if (!Number.isInteger(settings.epochs) || settings.epochs < 1) throw new StageError('flag --epochs must be a positive integer');
    if (!Number.isInteger(settings.batch) || settings.batch < 1) throw new StageError('flag --batch must be a positive integer');
    const maxVal = numberFlag(flags, 'max-val');
    const threadsFlag = stringFlag(flags, 'threads');

    const backend = await selectBackend(enumFlag(flags, 'backend', backendPreferences), events.log, {
      threads: threadsFlag === 'auto' ? 'auto' : numberFlag(flags, 'threads'),
    });

    // Data, held in memory for the whole phase, each whole image as the network is to see it (input-view.ts):
    // before windows and augmentation, as predict does before its tiles and TTA.
    const asSeen = (samples: TrainingSample[]): TrainingSample[] =>
      samples.map((sample) => ({ ...sample, image: asNetworkSees(sample.image, config.image) }));
    const train = asSeen(await loadSamples(
      [{ dir: dataDir, ...(trainIds ? { idsFile: trainIds } : {}) }, ...extras.map((dir) => ({ dir }))],
      (done, total) => events.progress(done, total, 'image', 'loading training set'),
    ));
    if (train.length === 0) throw new StageError('no training samples (check --data, --train-ids, --extra)');
    let val = valIds ? asSeen(await loadSamples([{ dir: dataDir, idsFile: valIds }])) : [];
    if (maxVal > 0) val = val.slice(0, maxVal);
    const steps = settings.stepsPerEpoch > 0 ? settings.stepsPerEpoch : Math.max(1, Math.floor(train.length / settings.batch));
    events.log(`train: ${train.length} training samples (${countBy(train)}), ${val.length} validation; ${settings.epochs} epochs x ${steps} steps, batch ${settings.batch}, lr ${settings.lr}`);

    // The model, and where it starts from.
    const model = new MaskRcnn(trainingNetworkConfig(config));
    if (model.readBack.name === 'awaited') events.log(`train: ${backend.name} has no synchronous read-back: each step is queued while the last one's losses are read`);
    model.build();
    if (inputSize < config.image.size) events.log(`train: ${inputSize} px windows of images molded to ${config.image.size} px (image.trainInputSize)`);
    // The key leaves out --epochs (phase-state.ts): a phase given more or fewer epochs continues its checkpoint.
    const keyFlags: Record<string, unknown> = { ...stripOutputs(flags), backend: backend.name };
    const { epochs: _epochs, ...flagsButEpochs } = keyFlags;
    const keyInputs = [join(dataDir, 'manifest.json'), ...(trainIds ? [trainIds] : []), ...(valIds ? [valIds] : []),
      ...extras.map((dir) => join(dir, 'manifest.json')), ...(initCheckpoint ? [join(initCheckpoint, 'model.json')] : [])];
    const runKey = phaseRunKey(flagsButEpochs, keyInputs);
    const optimizer = new Amsgrad({ learningRate: settings.lr });
    const resumed = resumableState(checkpointsDir, runKey, {
      epochs: settings.epochs,
      legacyKey: (epochs) => phaseRunKey({ ...keyFlags, epochs }, keyInputs),
      log: events.log,
    });
    let state: PhaseMeta = { runKey, keyVersion: 2, epoch: 0, history: [], bestEpoch: 0, bestValLoss: null };
    if (resumed) {
      const loaded = await loadCheckpoint(join(checkpointsDir, 'last'), model.store);
      optimizer.restore(loaded.extra);
      tf.dispose(Object.values(loaded.extra));
      state = resumed;
      events.log(`train: resuming ${phaseName} after epoch ${state.epoch} from ${join(checkpointsDir, 'last')}`);
    } else if (initCheckpoint) {
      const loaded = await loadCheckpoint(initCheckpoint, model.store);
      tf.dispose(Object.values(loaded.extra));
      events.log(`train: starting from checkpoint ${initCheckpoint} (${loaded.loaded.length} variables)`);
    } else if (imagenet) {
      const loaded = await loadKerasH5(imagenet, model.store, { layers: 'resnet50-prefix' });
      events.log(`train: ImageNet weights from ${imagenet}: ${loaded.loaded.length} layers, ${loaded.variables} variables`);
    } else {
      events.log('train: starting from scratch (random initialisation)');
    }

    const started = Date.now();
    let secondsLeft: number | undefined;
    const estimate = phaseEstimate({ backend: backend.name, totalSteps: (settings.epochs - state.epoch) * steps, log: events.log, phase: phaseName });
    for (let epoch = state.epoch + 1; epoch <= settings.epochs; epoch++) {
      const epochStart = Date.now();
      const order = shuffled([...train.keys()], seededRng(`${settings.seed}/order/${epoch}`));
      model.reseedSampling(`${settings.seed}/${epoch}`); // the epoch's sampling, whether resumed or not
      const stepLosses: Losses[] = [];
      // Each step's losses are read while the next step is prepared and queued (queueTrainStep; on webgpu): the
      // device never waits for the host between steps. A diverged loss stops the phase one step later.
      let pending: { step: number; losses: Promise<Losses> } | undefined;
      const settle = async () => {
        if (!pending) return;
        const { step, losses } = pending;
        pending = undefined;
        const values = await losses;
        if (!Number.isFinite(values.loss_total)) throw new StageError(`training diverged at epoch ${epoch} step ${step + 1}: loss ${values.loss_total}`);
        stepLosses.push(values);
        events.progress((epoch - 1) * steps + step + 1, settings.epochs * steps, 'step', `${phaseName} epoch ${epoch}/${settings.epochs}`, secondsLeft);
      };
      for (let step = 0; step < steps; step++) {
        const random = seededRng(`${settings.seed}/augment/${epoch}/${step}`);
        const picked = Array.from({ length: settings.batch }, (_, k) => train[order[(step * settings.batch + k) % order.length]!]!);
        const batch = buildTrainBatch(
          picked.map((sample) => (augment ? augmentSample({ image: sample.image, labels: sample.labels }, random, augment) : trainingInput(sample, config, random))),
          batchOptions(config),
          random,
        );
        let queued: QueuedStep;
        try {
          queued = await model.queueTrainStep(optimizer, batch);
        } finally {
          batch.images.dispose(); // safe once queued: the device runs commands in order
        }
        queued.losses.catch(() => {}); // rejections are awaited in settle(); this keeps an early exit from leaving one unhandled
        await settle();
        pending = { step, losses: queued.losses };
        secondsLeft = estimate.stepDone();
      }
      await settle();
      const valLosses = await validate(model, val, config, settings.valBatch);
      const record: EpochRecord = {
        epoch,
        train: meanLosses(stepLosses),
        ...(valLosses ? { val: valLosses } : {}),
        seconds: (Date.now() - epochStart) / 1000,
        steps,
      };
      state.history.push(record);
      state.epoch = epoch;
      const current = valLosses?.loss_total ?? record.train.loss_total;
      const improved = state.bestValLoss === null || current < state.bestValLoss;
      if (improved) {
        state.bestValLoss = current;
        state.bestEpoch = epoch;
      }
      events.metric({ phase: phaseName, epoch, ...prefixed('train_', record.train), ...(valLosses ? prefixed('val_', valLosses) : {}), seconds: record.seconds });
      events.log(`${phaseName} epoch ${epoch}: train ${record.train.loss_total.toFixed(4)}${valLosses ? `, val ${valLosses.loss_total.toFixed(4)}` : ''} (${record.seconds.toFixed(0)} s)${improved ? ' *' : ''}`);
      mkdirSync(checkpointsDir, { recursive: true });
      if (improved) await saveCheckpoint(join(checkpointsDir, 'best'), model.store, { ...checkpointMeta(config, phaseName, epoch), valLoss: current });
      await optimizer.withState((extra) => saveCheckpoint(join(checkpointsDir, 'last'), model.store, { ...state } as unknown as Record<string, unknown>, { extra }));
    }

    // The phase's output: the best (or last) weights, their history and the loss curve.
    const source = join(checkpointsDir, booleanFlag(flags, 'keep-last') ? 'last' : 'best');
    await writeAtomically(out, async (tmp) => {
      cpSync(source, tmp, { recursive: true });
      writeFileSync(join(tmp, 'history.json'), JSON.stringify({ phase: phaseName, bestEpoch: state.bestEpoch, history: state.history }, null, 1) + '\n');
      await writeLineChartPng(join(tmp, 'loss-curve.png'), `${phaseName}: loss per epoch (lr ${settings.lr})`, curveSeries(state.history), { xLabel: 'epoch', yLabel: 'loss' });
    });
    if (!checkpointsFlag) rmSync(checkpointsDir, { recursive: true, force: true });
    const last = state.history.at(-1);
    const metrics = {
      phase: phaseName,
      backend: backend.name,
      // wasm: the library its convolutions ran on (kernels/native/), null for its own kernels: part of the result's provenance
      native_kernels: backend.nativeKernels ?? null,
      epochs: state.epoch,
      steps_per_epoch: steps,
      best_epoch: state.bestEpoch,
      best_val_loss: state.bestValLoss,
      final_train_loss: last?.train.loss_total ?? null,
      final_val_loss: last?.val?.loss_total ?? null,
      seconds: (Date.now() - started) / 1000,
      seconds_per_step: last ? last.seconds / Math.max(1, last.steps) : null,
      meta: readCheckpointMeta(out),
    };
    const metricsFile = optionalStringFlag(flags, 'metrics');
    if (metricsFile) await writeAtomically(metricsFile, async (tmp) => writeFileSync(tmp, JSON.stringify(metrics, null, 1) + '\n'));
    events.metric({ best_val_loss: metrics.best_val_loss, best_epoch: metrics.best_epoch });
    model.dispose();
    optimizer.dispose();
  },
};

/** {preset, config: {…overrides}} (the pipeline's form) or {preset, …overrides} -> the model config. */
export function modelConfig(params: Record<string, unknown>): MaskRcnnConfig {
  const { config, ...rest } = params;
  if (config !== undefined && (typeof config !== 'object' || config === null || Array.isArray(config))) {
    throw new StageError('flag --model: "config" must be an object of model config overrides');
  }
  return configFromParams({ ...rest, ...(config as Record<string, unknown> | undefined) });
}

function checkpointMeta(config: MaskRcnnConfig, phase: string, epoch: number): Record<string, unknown> {
  return { config, phase, epoch };
}

/** Validation loss over the whole list, batch by batch, no augmentation (undefined without validation ids). */
async function validate(model: MaskRcnn, val: TrainingSample[], config: MaskRcnnConfig, batchSize: number): Promise<Losses | undefined> {
  if (val.length === 0) return undefined;
  const random = seededRng('validation');
  const all: Losses[] = [];
  for (let i = 0; i < val.length; i += batchSize) {
    const samples = val.slice(i, i + batchSize).map((sample) => trainingInput(sample, config, seededRng(`validation/${sample.id}`)));
    const batch = buildTrainBatch(samples, batchOptions(config), random);
    try {
      all.push(await model.losses(batch));
    } finally {
      batch.images.dispose();
    }
  }
  return meanLosses(all);
}

function batchOptions(config: MaskRcnnConfig): BatchOptions {
  const { meanPixel, miniMaskSize, maxGtInstances } = config.image;
  return { size: trainingInputSize(config), meanPixel, miniMaskSize, maxGtInstances };
}

/**
 * A sample as a step takes it without augmentation: as it is where the network sees whole images (the batch
 * molds it), else molded to image.size and a window of the training input's side (one that holds a nucleus).
 */
function trainingInput(sample: { image: Image8; labels: LabelMap }, config: MaskRcnnConfig, random: () => number): { image: Image8; labels: LabelMap } {
  const inputSize = trainingInputSize(config);
  if (inputSize >= config.image.size) return sample;
  return cropInput(resizePad(sample, config.image.size), inputSize, random);
}

function curveSeries(history: EpochRecord[]): Series[] {
  const series: Series[] = [
    { name: 'train total', points: history.map((r) => ({ x: r.epoch, y: r.train.loss_total })) },
  ];
  if (history.some((r) => r.val)) series.push({ name: 'val total', dashed: true, points: history.map((r) => ({ x: r.epoch, y: r.val?.loss_total ?? Number.NaN })) });
  for (const name of ['loss_objectness', 'loss_rpn_box_reg', 'loss_classifier', 'loss_box_reg', 'loss_mask'] as const) {
    series.push({ name: `train ${name.slice(5)}`, points: history.map((r) => ({ x: r.epoch, y: r.train[name] })) });
  }
  return series;
}

function prefixed(prefix: string, losses: Losses): Record<string, number> {
  return Object.fromEntries(Object.entries(losses).map(([k, v]) => [prefix + k.replace(/^loss_/, ''), v as number]));
}

function countBy(samples: TrainingSample[]): string {
  const counts = new Map<string, number>();
  for (const s of samples) counts.set(s.source, (counts.get(s.source) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${k} ${v}`).join(', ');
}

/** The flags that define the run (not where its results go). */
function stripOutputs(flags: Record<string, unknown>): Record<string, unknown> {
  const { out: _out, metrics: _metrics, checkpoints: _checkpoints, ...rest } = flags;
  return rest;
}
