// Colour augmentation for modalities absent from training. The stage-1 test set holds stained-tissue images
// (purple/yellow) and bright-field images that no training image looks like; the recipe has no colour
// augmentation (its geometry only). Each operation is cheap per-pixel arithmetic on the network input:
//   grey-scale (luma, BT.601), inversion (bright-field's dark nuclei on white become fluorescence-like and back),
//   hue rotation and saturation scaling in YIQ space (a rotation / scaling of the chroma plane).
import type { Image8 } from '../imaging/dataset.js';

export interface ColourOptions {
  greyProbability: number;
  invertProbability: number;
  /** Probability of a hue rotation U(-maxHueDegrees, maxHueDegrees) and a saturation factor 1 + U(-s, s). */
  hueProbability: number;
  maxHueDegrees: number;
  maxSaturationChange: number;
}

export const noColourAugment: ColourOptions = {
  greyProbability: 0,
  invertProbability: 0,
  hueProbability: 0,
  maxHueDegrees: 0,
  maxSaturationChange: 0,
};

/**
 * Applies the colour operations in a fixed order (hue/saturation, grey, invert) and returns what it did. A
 * probability of 0 draws no random number, so the geometric augmentations' stream is the same as without this.
 */
export function augmentColour(image: Image8, random: () => number, options: ColourOptions): { image: Image8; applied: string[] } {
  const applied: string[] = [];
  let out = image;
  const chance = (p: number): boolean => p > 0 && random() < p;
  if (chance(options.hueProbability) && image.channels >= 3) {
    const degrees = (2 * random() - 1) * options.maxHueDegrees;
    const saturation = 1 + (2 * random() - 1) * options.maxSaturationChange;
    out = rotateHue(out, degrees, saturation);
    applied.push(`hue ${degrees.toFixed(0)}° sat x${saturation.toFixed(2)}`);
  }
  if (chance(options.greyProbability) && image.channels >= 3) {
    out = greyScale(out);
    applied.push('grey');
  }
  if (chance(options.invertProbability)) {
    out = invert(out);
    applied.push('invert');
  }
  return { image: out, applied };
}

const clamp8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** Rotates the chroma (I, Q) of YIQ by `degrees` and scales it by `saturation`; alpha is kept. */
export function rotateHue(image: Image8, degrees: number, saturation: number): Image8 {
  const { channels } = image;
  const data = new Uint8Array(image.data);
  const angle = (degrees * Math.PI) / 180;
  const cos = Math.cos(angle) * saturation;
  const sin = Math.sin(angle) * saturation;
  for (let p = 0; p < data.length; p += channels) {
    const r = data[p]!;
    const g = data[p + 1]!;
    const b = data[p + 2]!;
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    const i = 0.596 * r - 0.274 * g - 0.322 * b;
    const q = 0.211 * r - 0.523 * g + 0.312 * b;
    const i2 = i * cos - q * sin;
    const q2 = i * sin + q * cos;
    data[p] = clamp8(y + 0.956 * i2 + 0.621 * q2);
    data[p + 1] = clamp8(y - 0.272 * i2 - 0.647 * q2);
    data[p + 2] = clamp8(y - 1.106 * i2 + 1.703 * q2);
  }
  return { ...image, data };
}

/** Every colour channel set to the pixel's luma (BT.601); alpha is kept. */
export function greyScale(image: Image8): Image8 {
  const { channels } = image;
  const data = new Uint8Array(image.data);
  for (let p = 0; p < data.length; p += channels) {
    const y = clamp8(0.299 * data[p]! + 0.587 * data[p + 1]! + 0.114 * data[p + 2]!);
    data[p] = y;
    data[p + 1] = y;
    data[p + 2] = y;
  }
  return { ...image, data };
}

/** 255 - v for every colour channel; alpha is kept. */
export function invert(image: Image8): Image8 {
  const { channels } = image;
  const colours = channels === 4 ? 3 : channels;
  const data = new Uint8Array(image.data);
  for (let p = 0; p < data.length; p += channels) for (let c = 0; c < colours; c++) data[p + c] = 255 - data[p + c]!;
  return { ...image, data };
}
