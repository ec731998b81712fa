// The recipe's training augmentations, per sample, in its order (each probability a param):
//   (not the recipe's, off by default) colour: hue/saturation, grey-scale, inversion (colour-augment.ts);
//   p=0.5 rotate U(-15, 15) degrees with scale U(0.5, 2.0) about the centre (image bilinear, labels nearest,
//         reflected borders), then relabel by connected components so reflected copies become separate nuclei;
//   p=0.5 random 256x256 crop, kept only if a nucleus survives (a few tries, else no crop);
//   resize so the short side is S unless the long side would exceed S, then zero-pad centred (always);
//   p=0.5 left-right flip; p=0.5 up-down flip; p=0.5 rotate 90 degrees either way;
//   (not the recipe's) a random inputSize window of the S x S result when inputSize < S (input-crop.ts).
// The random numbers come from the caller's seeded generator (seedrandom), drawn in a fixed order, so a
// (seed, sample) pair always gives the same result.
import type { Image8, LabelMap } from '../imaging/dataset.js';
import { compactLabels, relabel } from '../imaging/components.js';
import { augmentColour, noColourAugment, type ColourOptions } from './colour-augment.js';
import { cropInput } from './input-crop.js';
import {
  cropPair,
  flipLeftRight,
  flipUpDown,
  flipWindowLeftRight,
  flipWindowUpDown,
  resizePad,
  rotate90,
  rotateScale,
  rotateWindow90,
  type Pair,
  type Window,
} from './augment-geometry.js';

export interface AugmentOptions extends ColourOptions {
  rotateProbability: number;
  maxDegrees: number;
  minScale: number;
  maxScale: number;
  cropProbability: number;
  cropSize: number;
  /** Crop positions tried before giving up on the crop (each must keep at least one nucleus). */
  cropTries: number;
  /** Side of the square the sample is molded to (512 in the recipe): the training scale. */
  size: number;
  /** Side of the network's training input: a window of the molded square (= size: all of it, the recipe). */
  inputSize: number;
  flipLeftRightProbability: number;
  flipUpDownProbability: number;
  rotate90Probability: number;
}

export const defaultAugmentOptions: AugmentOptions = {
  rotateProbability: 0.5,
  maxDegrees: 15,
  minScale: 0.5,
  maxScale: 2.0,
  cropProbability: 0.5,
  cropSize: 256,
  cropTries: 5,
  size: 512,
  inputSize: 512,
  flipLeftRightProbability: 0.5,
  flipUpDownProbability: 0.5,
  rotate90Probability: 0.5,
  ...noColourAugment,
};

/** Keys a pipeline sets through the train stage's --augment (the sizes come from the model config). */
export const augmentKeys = Object.keys(defaultAugmentOptions).filter((key) => key !== 'size' && key !== 'inputSize');

export interface AugmentedSample {
  /** inputSize x inputSize, the input's channels. */
  image: Image8;
  /** inputSize x inputSize, labels 1..count without gaps. */
  labels: LabelMap;
  /** Where the (rotated, cropped) image lies in the padded size x size square, after the flips and the quarter turn. */
  window: Window;
  /** The resize factor applied before padding. */
  scale: number;
  /** What was applied, for logs and tests: e.g. ["rotate 7.3° x1.42", "crop 256 at 10,40", "flip-lr"]. */
  applied: string[];
}

/** A random crop of side min(cropSize, dimension) keeping at least one nucleus, or undefined after `tries` misses. */
export function randomCrop(pair: Pair, cropSize: number, tries: number, random: () => number): { pair: Pair; x: number; y: number } | undefined {
  const w = Math.min(cropSize, pair.image.width);
  const h = Math.min(cropSize, pair.image.height);
  if (w === pair.image.width && h === pair.image.height) return undefined; // nothing to crop
  for (let attempt = 0; attempt < tries; attempt++) {
    const x = Math.floor(random() * (pair.image.width - w + 1));
    const y = Math.floor(random() * (pair.image.height - h + 1));
    const cropped = cropPair(pair, x, y, w, h);
    if (cropped.labels.data.some((label) => label !== 0)) {
      return { pair: { image: cropped.image, labels: compactLabels(cropped.labels) }, x, y };
    }
  }
  return undefined;
}

/** Applies the recipe's augmentations to one sample. `random` returns uniform numbers in [0, 1). */
export function augmentSample(sample: Pair, random: () => number, options: AugmentOptions = defaultAugmentOptions): AugmentedSample {
  const applied: string[] = [];
  const colour = augmentColour(sample.image, random, options);
  applied.push(...colour.applied);
  let pair: Pair = { image: colour.image, labels: sample.labels };
  const uniform = (low: number, high: number): number => low + (high - low) * random();
  if (random() < options.rotateProbability) {
    const degrees = uniform(-options.maxDegrees, options.maxDegrees);
    const scale = uniform(options.minScale, options.maxScale);
    const rotated = rotateScale(pair, degrees, scale);
    pair = { image: rotated.image, labels: relabel(rotated.labels, 8) };
    applied.push(`rotate ${degrees.toFixed(1)}° x${scale.toFixed(2)}`);
  }
  if (random() < options.cropProbability) {
    const crop = randomCrop(pair, options.cropSize, options.cropTries, random);
    if (crop) {
      pair = crop.pair;
      applied.push(`crop ${crop.pair.image.width}x${crop.pair.image.height} at ${crop.x},${crop.y}`);
    } else applied.push('crop skipped');
  }
  const resized = resizePad(pair, options.size);
  pair = resized;
  let window = resized.window;
  const size = options.size;
  if (random() < options.flipLeftRightProbability) {
    pair = flipLeftRight(pair);
    window = flipWindowLeftRight(window, size);
    applied.push('flip-lr');
  }
  if (random() < options.flipUpDownProbability) {
    pair = flipUpDown(pair);
    window = flipWindowUpDown(window, size);
    applied.push('flip-ud');
  }
  if (random() < options.rotate90Probability) {
    const direction = random() < 0.5 ? 1 : -1;
    pair = rotate90(pair, direction);
    window = rotateWindow90(window, size, size, direction);
    applied.push(direction === 1 ? 'rot90-ccw' : 'rot90-cw');
  }
  if (options.inputSize < size) {
    const input = cropInput(pair, options.inputSize, random);
    applied.push(`input ${options.inputSize} at ${input.x},${input.y}`);
    return { image: input.image, labels: input.labels, window, scale: resized.scale, applied };
  }
  return { image: pair.image, labels: compactLabels(pair.labels), window, scale: resized.scale, applied };
}
