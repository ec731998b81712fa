// ResNet backbones in Matterport's layout (resnet_graph), with Keras' layer names so the ImageNet ResNet50
// weights load by name: conv1/bn_conv1, then per stage s and block b `res{s}{b}_branch2a|2b|2c|1` and
// `bn{s}{b}_branch2a|…`. Bottleneck blocks as in the original Caffe ResNet (stride on the first 1x1 conv),
// convs with biases, BN after every conv. ResNet101 names its 23 stage-4 blocks a, b, …, w, so its first
// blocks share ResNet50's names and weights (Matterport loads ResNet50's ImageNet weights into ResNet101).
//
// 'small' is our own narrow, shallow variant for CPU work and tests: the same code and names, one bottleneck
// block per stage, stem 16 channels, c2..c5 with 32, 64, 128, 256 channels. 'medium' is ResNet50's shape at
// half its width with 2, 3, 4, 2 blocks (c2..c5: 128, 256, 512, 1024 channels): the capacity a network trained
// from scratch on 2 CPU cores can afford, since at a 256 px input the FPN, RPN and mask head cost more than it.
import * as tf from '@tensorflow/tfjs';
import type { ParameterStore } from './params.js';
import { batchNorm, conv2d, maxPool } from './layers.js';
import { recomputed } from './recompute.js';

export const backboneNames = ['resnet50', 'resnet101', 'small', 'medium'] as const;
export type BackboneName = (typeof backboneNames)[number];

export interface BackboneFeatures {
  /** Strides 4, 8, 16, 32: [B, H/4, W/4, C2] … [B, H/32, W/32, C5]. */
  c2: tf.Tensor4D;
  c3: tf.Tensor4D;
  c4: tf.Tensor4D;
  c5: tf.Tensor4D;
}

interface StageSpec {
  /** Bottleneck widths [1x1, 3x3, 1x1 out]. */
  filters: [number, number, number];
  /** Blocks in the stage: the first is a conv block (projection shortcut), the rest identity blocks. */
  blocks: number;
}

interface ResnetSpec {
  stemFilters: number;
  stages: [StageSpec, StageSpec, StageSpec, StageSpec];
  /** Whether training recomputes each block in its backward pass by default (BackboneOptions.recompute). */
  recompute: boolean;
}

// Their activations at 512 px do not fit the wasm heap otherwise (docs/model-performance.md).
const resnetStages = (stage4Blocks: number): ResnetSpec => ({
  recompute: true,
  stemFilters: 64,
  stages: [
    { filters: [64, 64, 256], blocks: 3 },
    { filters: [128, 128, 512], blocks: 4 },
    { filters: [256, 256, 1024], blocks: stage4Blocks },
    { filters: [512, 512, 2048], blocks: 3 },
  ],
});

const specs: Record<BackboneName, ResnetSpec> = {
  resnet50: resnetStages(6),
  resnet101: resnetStages(23),
  // The small and medium backbones' activations fit easily: not worth a second forward pass of every block.
  small: {
    recompute: false,
    stemFilters: 16,
    stages: [
      { filters: [16, 16, 32], blocks: 1 },
      { filters: [32, 32, 64], blocks: 1 },
      { filters: [64, 64, 128], blocks: 1 },
      { filters: [128, 128, 256], blocks: 1 },
    ],
  },
  medium: {
    recompute: false,
    stemFilters: 32,
    stages: [
      { filters: [32, 32, 128], blocks: 2 },
      { filters: [64, 64, 256], blocks: 3 },
      { filters: [128, 128, 512], blocks: 4 },
      { filters: [256, 256, 1024], blocks: 2 },
    ],
  },
};

/** Channels of c2..c5 for a backbone. */
export function backboneChannels(name: BackboneName): [number, number, number, number] {
  const stages = spec(name).stages;
  return [stages[0].filters[2], stages[1].filters[2], stages[2].filters[2], stages[3].filters[2]];
}

/** Keras layer names of a backbone in order (conv and BN layers: those with weights). */
export function backboneLayerNames(name: BackboneName): string[] {
  const names = ['conv1', 'bn_conv1'];
  spec(name).stages.forEach((stage, i) => {
    for (let b = 0; b < stage.blocks; b++) {
      const base = `${i + 2}${blockLetter(b)}`;
      for (const branch of b === 0 ? ['2a', '2b', '2c', '1'] : ['2a', '2b', '2c']) {
        names.push(`res${base}_branch${branch}`, `bn${base}_branch${branch}`);
      }
    }
  });
  return names;
}

export interface BackboneOptions {
  /**
   * Frozen batch norm only (training = false): keep only each bottleneck block's input for the backward pass and
   * recompute its insides there (gradient checkpointing; default: the backbone's own, on for ResNet50/101). Without a
   * gradient tape it costs nothing.
   */
  recompute?: boolean;
}

/**
 * images: [B, H, W, 3] mean-subtracted RGB, H and W multiples of 64 (so every FPN level halves exactly).
 * `training`: batch-norm mode (false = frozen statistics, Matterport's TRAIN_BN = False).
 */
export function resnetFeatures(
  store: ParameterStore,
  images: tf.Tensor4D,
  name: BackboneName,
  training: boolean,
  options: BackboneOptions = {},
): BackboneFeatures {
  const { recompute = spec(name).recompute } = options;
  const [, height, width, channels] = images.shape;
  if (channels !== 3) throw new Error(`backbone ${name}: images must have 3 channels, got shape [${images.shape}]`);
  if (height % 64 !== 0 || width % 64 !== 0) {
    throw new Error(`backbone ${name}: image size ${height}x${width} must be a multiple of 64 (FPN levels down to stride 64)`);
  }
  const { stemFilters, stages } = spec(name);
  // Stem: ZeroPadding2D(3) + 7x7/2 valid conv, BN, relu, 3x3/2 'same' max pool -> stride 4.
  let x = tf.pad(images, [[0, 0], [3, 3], [3, 3], [0, 0]]) as tf.Tensor4D;
  x = conv2d(store, 'conv1', x, { filters: stemFilters, kernelSize: 7, strides: 2, padding: 'valid', constantInput: true });
  x = batchNorm(store, 'bn_conv1', x, { training, relu: true });
  x = maxPool(x, 3, 2, 'same'); // [B, H/4, W/4, stem]

  const outputs: tf.Tensor4D[] = [];
  stages.forEach((stage, i) => {
    const stageNumber = i + 2;
    for (let b = 0; b < stage.blocks; b++) {
      const block = `${stageNumber}${blockLetter(b)}`;
      // Stage 2 keeps the stride-4 resolution (the max pool already halved it); stages 3-5 halve it.
      const strides = b === 0 && stageNumber > 2 ? 2 : 1;
      const run = (input: tf.Tensor4D) => bottleneck(store, block, input, stage.filters, strides, b === 0, training);
      // Frozen batch norm (the recipe's TRAIN_BN = False, and inference): blocks are pure functions of their input,
      // so training keeps only each block's input and recomputes its insides in the backward pass. Trained
      // batch norm updates moving statistics in the forward pass, which a recompute would apply twice.
      x = !training && recompute && store.has(`res${block}_branch2a/kernel`) ? recomputed(run, x, blockVariables(store, block)) : run(x);
    }
    outputs.push(x);
  });
  const [c2, c3, c4, c5] = outputs as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  return { c2, c3, c4, c5 };
}

/** Matterport's conv_block (projection: true) and identity_block. x: [B, H, W, Cin] -> [B, H/s, W/s, f3]. */
function bottleneck(
  store: ParameterStore,
  block: string,
  x: tf.Tensor4D,
  [f1, f2, f3]: [number, number, number],
  strides: number,
  projection: boolean,
  training: boolean,
): tf.Tensor4D {
  const conv = `res${block}_branch`;
  const bn = `bn${block}_branch`;
  let y = conv2d(store, `${conv}2a`, x, { filters: f1, kernelSize: 1, strides });
  y = batchNorm(store, `${bn}2a`, y, { training, relu: true });
  y = conv2d(store, `${conv}2b`, y, { filters: f2, kernelSize: 3, padding: 'same' });
  y = batchNorm(store, `${bn}2b`, y, { training, relu: true });
  y = conv2d(store, `${conv}2c`, y, { filters: f3, kernelSize: 1 });
  y = batchNorm(store, `${bn}2c`, y, { training });
  let shortcut = x;
  if (projection) {
    shortcut = conv2d(store, `${conv}1`, x, { filters: f3, kernelSize: 1, strides });
    shortcut = batchNorm(store, `${bn}1`, shortcut, { training });
  }
  return tf.relu(y.add(shortcut));
}

/** The trainable variables of one bottleneck block (convs and batch-norm gamma/beta), in a fixed order. */
function blockVariables(store: ParameterStore, block: string): tf.Variable[] {
  return store
    .names()
    .filter((name) => name.startsWith(`res${block}_branch`) || name.startsWith(`bn${block}_branch`))
    .map((name) => store.get(name)!)
    .filter((variable) => variable.trainable);
}

/** Keras' block letters: a, b, c, … (ResNet101's stage 4 runs to w). */
function blockLetter(index: number): string {
  return String.fromCharCode(97 + index);
}

function spec(name: BackboneName): ResnetSpec {
  const found = specs[name];
  if (!found) throw new Error(`unknown backbone ${JSON.stringify(name)}: expected one of ${Object.keys(specs).join(', ')}`);
  return found;
}
