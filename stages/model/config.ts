// Every number of the Mask R-CNN, grouped by the part that uses it (torchvision-style names), with the DSB2018
// recipe (../shared/DSB2018-RECIPE.md; Matterport's KaggleBowlConfig) as the `recipe` preset and a `small`
// preset that trains on two CPU cores. Pipelines override single values through params:
//   configFromParams({preset: 'small', rpn: {nmsThresh: 0.6}})  — unknown keys are errors naming the key path.
import { StageError } from '../stage-error.js';
import { contrastModes, type ContrastMode } from './contrast.js';
import { backgroundModes, type BackgroundMode } from './background.js';
import { backboneNames, type BackboneName } from './backbone.js';

export type PresetName = 'recipe' | 'small';

export interface MaskRcnnConfig {
  /** Background + nucleus. */
  numClasses: number;
  /** Seeds weight initialisation and every random subsample (GT cap, anchor and ROI sampling). */
  seed: number;
  image: {
    /** Square network input side S: resize so the long side fits S, zero-pad centred. */
    size: number;
    /**
     * Side of the training input: a random window of the S-molded image (0 = S, the recipe: the whole image).
     * Training then runs at S's pixel scale for a fraction of the cost; inference molds whole images to S.
     */
    trainInputSize: number;
    /** Subtracted from RGB in 0..255 before the backbone. */
    meanPixel: [number, number, number];
    /** Intensities as they are ('none', the recipe) or each image's stretched onto 0..255 (contrast.ts). */
    contrast: ContrastMode;
    /** Images as they are ('as-is', the recipe) or each one with a bright background inverted (background.ts). */
    background: BackgroundMode;
    /** More instances than this in one image are randomly subsampled. */
    maxGtInstances: number;
    /** GT masks are stored cropped to their box and resized to this square (Matterport's mini-masks). */
    miniMaskSize: number;
  };
  backbone: {
    name: BackboneName;
    /** Channels of every FPN level (Matterport: 256). */
    fpnChannels: number;
    /** false = batch-norm statistics frozen (Matterport's TRAIN_BN = False). */
    trainBatchNorm: boolean;
  };
  rpn: {
    /** Anchor side in pixels, one per FPN level p2..p6. */
    anchorScales: number[];
    /** width / height of the anchors at every location. */
    anchorRatios: number[];
    /** Feature-map stride of p2..p6. */
    featureStrides: number[];
    /** Anchors on every `anchorStride`-th cell of each level. */
    anchorStride: number;
    /** Width of the RPN's shared 3x3 conv (Matterport: 512). */
    headChannels: number;
    /** Anchors sampled per image for the RPN losses (at most half positive). */
    batchSizePerImage: number;
    positiveFraction: number;
    /** Anchor IoU with a GT box >= this: positive. */
    fgIouThresh: number;
    /** Anchor's best IoU < this: negative (in between: ignored). */
    bgIouThresh: number;
    nmsThresh: number;
    /** Best-scoring anchors per image kept before NMS. */
    preNmsTopN: number;
    postNmsTopNTrain: number;
    postNmsTopNTest: number;
    /** Box deltas are divided by these (dy, dx, dh, dw) before the loss. */
    bboxStdDev: [number, number, number, number];
  };
  roi: {
    /** ROIs sampled per image for the heads. */
    batchSizePerImage: number;
    positiveFraction: number;
    /** ROI IoU >= this: positive; below: negative (Matterport uses one threshold). */
    fgIouThresh: number;
    /** Box head's ROIAlign output side. */
    poolSize: number;
    /** Mask head's ROIAlign output side. */
    maskPoolSize: number;
    /** Also add the GT boxes to the proposals (torchvision does; Matterport does not). */
    addGtAsProposals: boolean;
  };
  box: {
    fcDim: number;
    bboxStdDev: [number, number, number, number];
  };
  mask: {
    /** Mask head's output side (logits [N, outputSize, outputSize, numClasses]). */
    outputSize: number;
    /** Channels of the mask head's convolutions. */
    headChannels: number;
  };
  detection: {
    maxInstances: number;
    minConfidence: number;
    nmsThresh: number;
    /** A pasted mask's probability >= this is foreground (the original hard-coded 0.5). */
    maskThreshold: number;
  };
  train: {
    /** L2 weight decay on every weight except batch-norm gamma/beta (Matterport divides by the weight's size). */
    weightDecay: number;
    /** Global gradient norm clip (Keras' clipnorm, which uses the global norm). */
    clipNorm: number;
  };
}

const recipe: MaskRcnnConfig = {
  numClasses: 2,
  seed: 42,
  image: { size: 512, trainInputSize: 0, meanPixel: [123.7, 116.8, 103.9], contrast: 'none', background: 'as-is', maxGtInstances: 256, miniMaskSize: 56 },
  backbone: { name: 'resnet101', fpnChannels: 256, trainBatchNorm: false },
  rpn: {
    anchorScales: [8, 16, 32, 64, 128],
    anchorRatios: [0.5, 1, 2],
    featureStrides: [4, 8, 16, 32, 64],
    anchorStride: 1,
    headChannels: 512,
    batchSizePerImage: 320,
    positiveFraction: 0.5,
    fgIouThresh: 0.7,
    bgIouThresh: 0.3,
    nmsThresh: 0.7,
    preNmsTopN: 6000,
    postNmsTopNTrain: 2048,
    postNmsTopNTest: 2048,
    bboxStdDev: [0.1, 0.1, 0.2, 0.2],
  },
  roi: {
    batchSizePerImage: 512,
    positiveFraction: 0.33,
    fgIouThresh: 0.5,
    poolSize: 7,
    maskPoolSize: 14,
    addGtAsProposals: false,
  },
  box: { fcDim: 1024, bboxStdDev: [0.1, 0.1, 0.2, 0.2] },
  mask: { outputSize: 28, headChannels: 256 },
  detection: { maxInstances: 400, minConfidence: 0.75, nmsThresh: 0.3, maskThreshold: 0.35 },
  train: { weightDecay: 1e-4, clipNorm: 5 },
};

/** Same geometry and thresholds, sized for CPU work and tests. */
const small: MaskRcnnConfig = merge(recipe, {
  image: { size: 256, maxGtInstances: 64 },
  backbone: { name: 'small', fpnChannels: 64 },
  rpn: { headChannels: 64, batchSizePerImage: 128, preNmsTopN: 1000, postNmsTopNTrain: 500, postNmsTopNTest: 500 },
  roi: { batchSizePerImage: 128 },
  box: { fcDim: 256 },
  mask: { headChannels: 64 },
  detection: { maxInstances: 100 },
}, 'small preset');

export const presets: Record<PresetName, MaskRcnnConfig> = { recipe, small };

/** A fresh, deep copy of a preset. */
export function presetConfig(name: PresetName): MaskRcnnConfig {
  return structuredClone(presets[name]);
}

/**
 * The config for a stage's params: `params.preset` ('recipe' by default) deep-merged with every other key.
 * Unknown keys, wrong types and out-of-range values are StageErrors naming the key path (e.g. `rpn.nmsThreshh`).
 */
export function configFromParams(params: Record<string, unknown>): MaskRcnnConfig {
  const { preset = 'recipe', ...overrides } = params;
  if (preset !== 'recipe' && preset !== 'small') {
    throw new StageError(`model config: preset must be "recipe" or "small", got ${JSON.stringify(preset)}`);
  }
  const config = merge(presets[preset], overrides, 'model config');
  validate(config);
  return config;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep-merges `overrides` into a copy of `base`; only keys that exist in base are allowed, with the same type. */
function merge<T>(base: T, overrides: unknown, where: string, path = ''): T {
  if (!isPlainObject(overrides)) throw new StageError(`${where}: ${path || 'params'} must be an object`);
  const out = structuredClone(base) as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    const keyPath = path ? `${path}.${key}` : key;
    if (!(key in out)) {
      const known = Object.keys(out).join(', ');
      throw new StageError(`${where}: unknown key "${keyPath}" (known here: ${known})`);
    }
    const current = out[key];
    if (isPlainObject(current)) {
      out[key] = merge(current, value, where, keyPath);
    } else if (Array.isArray(current)) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        throw new StageError(`${where}: "${keyPath}" must be a list of numbers, got ${JSON.stringify(value)}`);
      }
      out[key] = [...value];
    } else if (typeof value !== typeof current || (typeof value === 'number' && !Number.isFinite(value))) {
      throw new StageError(`${where}: "${keyPath}" must be a ${typeof current}, got ${JSON.stringify(value)}`);
    } else {
      out[key] = value;
    }
  }
  return out as T;
}

function validate(config: MaskRcnnConfig): void {
  const fail = (key: string, why: string): never => {
    throw new StageError(`model config: "${key}" ${why}`);
  };
  if (!backboneNames.includes(config.backbone.name)) fail('backbone.name', `must be one of ${backboneNames.join(', ')}`);
  if (config.image.size % 64 !== 0) fail('image.size', `must be a multiple of 64 (the p6 stride), got ${config.image.size}`);
  const input = config.image.trainInputSize;
  if (!(Number.isInteger(input) && input >= 0 && input <= config.image.size && input % 64 === 0)) {
    fail('image.trainInputSize', `must be 0 or a multiple of 64 up to image.size (${config.image.size}), got ${input}`);
  }
  if (config.image.meanPixel.length !== 3) fail('image.meanPixel', 'must have 3 values');
  if (!contrastModes.includes(config.image.contrast)) fail('image.contrast', `must be one of ${contrastModes.join(', ')}, got ${JSON.stringify(config.image.contrast)}`);
  if (!backgroundModes.includes(config.image.background)) fail('image.background', `must be one of ${backgroundModes.join(', ')}, got ${JSON.stringify(config.image.background)}`);
  if (config.rpn.anchorScales.length !== config.rpn.featureStrides.length) {
    fail('rpn.anchorScales', `needs one scale per FPN level (${config.rpn.featureStrides.length})`);
  }
  if (config.rpn.bboxStdDev.length !== 4) fail('rpn.bboxStdDev', 'must have 4 values');
  if (config.box.bboxStdDev.length !== 4) fail('box.bboxStdDev', 'must have 4 values');
  for (const key of ['rpn.positiveFraction', 'roi.positiveFraction', 'rpn.fgIouThresh', 'rpn.bgIouThresh',
    'rpn.nmsThresh', 'roi.fgIouThresh', 'detection.minConfidence', 'detection.nmsThresh', 'detection.maskThreshold']) {
    const [group, name] = key.split('.') as [keyof MaskRcnnConfig, string];
    const value = (config[group] as unknown as Record<string, number>)[name]!;
    if (!(value >= 0 && value <= 1)) fail(key, `must be within [0, 1], got ${value}`);
  }
  if (config.rpn.bgIouThresh > config.rpn.fgIouThresh) fail('rpn.bgIouThresh', 'must not exceed rpn.fgIouThresh');
  for (const key of ['image.maxGtInstances', 'image.miniMaskSize', 'backbone.fpnChannels', 'rpn.batchSizePerImage',
    'rpn.headChannels', 'rpn.preNmsTopN', 'rpn.postNmsTopNTrain', 'rpn.postNmsTopNTest', 'rpn.anchorStride', 'roi.batchSizePerImage',
    'roi.poolSize', 'roi.maskPoolSize', 'box.fcDim', 'mask.outputSize', 'mask.headChannels', 'detection.maxInstances',
    'numClasses']) {
    const [group, name] = key.split('.') as [keyof MaskRcnnConfig, string | undefined];
    const value = name === undefined ? (config[group] as number) : (config[group] as unknown as Record<string, number>)[name]!;
    if (!(Number.isInteger(value) && value >= 1)) fail(key, `must be a positive integer, got ${value}`);
  }
  if (config.numClasses < 2) fail('numClasses', 'must count the background too (>= 2)');
}

/** Side of a training step's input: image.trainInputSize, or image.size where that is 0. */
export function trainingInputSize(config: MaskRcnnConfig): number {
  return config.image.trainInputSize > 0 ? config.image.trainInputSize : config.image.size;
}

/** The config of the network a training step runs: the same weights at the training input's side. */
export function trainingNetworkConfig(config: MaskRcnnConfig): MaskRcnnConfig {
  const network = structuredClone(config);
  network.image.size = trainingInputSize(config);
  network.image.trainInputSize = 0;
  return network;
}

/** Number of anchors at every feature-map location. */
export function anchorsPerLocation(config: MaskRcnnConfig): number {
  return config.rpn.anchorRatios.length;
}
