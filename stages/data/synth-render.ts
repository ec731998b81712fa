// Synthetic microscopy appearance: turns an exact label map into an RGBA image of one of the DSB2018
// modalities (classes.csv foreground + background colour).
//
// A hand-written typed-array rasteriser rather than a drawing library: the masks must match the rendered
// nuclei pixel for pixel, which holds by construction when the image is painted from the same label map; the
// few operations needed (smooth noise fields, a separable Gaussian blur, Gaussian noise) are short loops, and
// every random number comes from the one seeded generator so a seed reproduces the image exactly.
import type { LabelMap } from '../imaging/dataset.js';
import type { Random, Range } from './synth-nuclei.js';
import { uniform } from './synth-nuclei.js';

/** The modality classes of the real training set, named as classes.csv's foreground + background. */
export const modalities = ['whiteblack', 'purplepurple', 'purplewhite', 'blackwhite'] as const;
export type Modality = (typeof modalities)[number];

/** foreground, background colour words as classes.csv writes them. */
export const modalityColours: Record<Modality, [string, string]> = {
  whiteblack: ['white', 'black'],
  purplepurple: ['purple', 'purple'],
  purplewhite: ['purple', 'white'],
  blackwhite: ['black', 'white'],
};

export interface AppearanceOptions {
  modality: Modality;
  /** Nucleus-to-background contrast, 0..1 of the modality's full range. */
  contrast: Range;
  /** Standard deviation of the additive Gaussian noise, as a fraction of 255. */
  noise: number;
  /** Largest Gaussian blur sigma in pixels (each image draws one in [0, blur]). */
  blur: number;
  /** Amplitude of the smooth multiplicative illumination field (0 = even). */
  illumination: number;
}

type RGB = [number, number, number];

/** Background and darkest/brightest nucleus colours per modality, from the real set's channel means. */
const palette: Record<Modality, { background: RGB; nucleus: RGB; texture: number }> = {
  // Fluorescence: grey nuclei on near-black; nucleus colour is scaled by the contrast draw.
  whiteblack: { background: [8, 8, 8], nucleus: [255, 255, 255], texture: 0.15 },
  // H&E tissue: dark purple nuclei on pink-lavender tissue with strong texture.
  purplepurple: { background: [185, 140, 200], nucleus: [75, 35, 140], texture: 0.3 },
  // Stained nuclei on a light slide.
  purplewhite: { background: [225, 220, 232], nucleus: [95, 60, 160], texture: 0.12 },
  // Bright-field: dark nuclei on light grey.
  blackwhite: { background: [215, 215, 215], nucleus: [30, 30, 30], texture: 0.1 },
};

/** Smooth random field in [-1, 1]: bilinear interpolation of random values on a grid of `cell` px. */
export function valueNoise(random: Random, width: number, height: number, cell: number): Float32Array {
  const gw = Math.ceil(width / cell) + 2;
  const gh = Math.ceil(height / cell) + 2;
  const grid = new Float32Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = 2 * random() - 1;
  const field = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const gy = y / cell;
    const y0 = Math.floor(gy);
    const fy = gy - y0;
    for (let x = 0; x < width; x++) {
      const gx = x / cell;
      const x0 = Math.floor(gx);
      const fx = gx - x0;
      const top = grid[y0 * gw + x0]! * (1 - fx) + grid[y0 * gw + x0 + 1]! * fx;
      const bottom = grid[(y0 + 1) * gw + x0]! * (1 - fx) + grid[(y0 + 1) * gw + x0 + 1]! * fx;
      field[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return field;
}

/** Separable Gaussian blur of one float plane in place (edges clamped). plane: [height * width]. */
export function gaussianBlur(plane: Float32Array, width: number, height: number, sigma: number): void {
  if (sigma < 0.3) return;
  const radius = Math.ceil(3 * sigma);
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += kernel[i + radius] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < kernel.length; i++) kernel[i]! /= sum;
  const line = new Float32Array(Math.max(width, height));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) line[x] = plane[y * width + x]!;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += kernel[k + radius]! * line[Math.min(width - 1, Math.max(0, x + k))]!;
      plane[y * width + x] = acc;
    }
  }
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) line[y] = plane[y * width + x]!;
    for (let y = 0; y < height; y++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += kernel[k + radius]! * line[Math.min(height - 1, Math.max(0, y + k))]!;
      plane[y * width + x] = acc;
    }
  }
}

/** A standard normal draw (Box-Muller). */
function gaussian(random: Random): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/**
 * Paints the label map as an RGBA image (alpha 255, like the real PNGs). Each nucleus gets its own
 * brightness and inner texture; the image then gets blur, uneven illumination and noise. Masks stay the
 * sharp label map: blur softens only the picture, as in real annotated microscopy.
 * labels: [height * width] -> RGBA [height * width * 4].
 */
export function renderImage(random: Random, labels: LabelMap, options: AppearanceOptions): Uint8Array {
  const { width, height } = labels;
  const size = width * height;
  const colours = palette[options.modality];
  const contrast = uniform(random, options.contrast);
  // Per-nucleus brightness factor around 1: real nuclei differ in stain uptake and DNA content.
  const strength = new Float32Array(labels.count + 1);
  for (let k = 1; k <= labels.count; k++) strength[k] = contrast * (0.75 + 0.35 * random());
  const tissue = valueNoise(random, width, height, 12);
  const grain = valueNoise(random, width, height, 3);
  const light = valueNoise(random, width, height, Math.max(width, height) / 2);
  const tilt = { x: 2 * random() - 1, y: 2 * random() - 1 };
  const sigma = options.blur * random();
  const grey = options.modality === 'whiteblack' || options.modality === 'blackwhite';

  const planes = [0, 1, 2].map(() => new Float32Array(size));
  for (let p = 0; p < size; p++) {
    const label = labels.data[p]!;
    // t: 0 = background colour, 1 = full nucleus colour.
    let t: number;
    if (label === 0) t = colours.texture * 0.4 * Math.max(0, tissue[p]!) * (options.modality === 'purplepurple' ? 1 : 0.2);
    else t = strength[label]! * (1 + colours.texture * grain[p]!);
    t = Math.min(1, Math.max(0, t));
    for (let c = 0; c < 3; c++) planes[c]![p] = colours.background[c]! + t * (colours.nucleus[c]! - colours.background[c]!);
  }
  for (const plane of planes) gaussianBlur(plane, width, height, sigma);

  const rgba = new Uint8Array(size * 4);
  const noise = options.noise * 255;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const gradient = (tilt.x * (x / width - 0.5) + tilt.y * (y / height - 0.5) + 0.5 * light[p]!) * options.illumination;
      const shared = noise > 0 ? noise * gaussian(random) : 0;
      for (let c = 0; c < 3; c++) {
        const own = noise > 0 && !grey ? 0.5 * noise * gaussian(random) : 0;
        const value = planes[c]![p]! * (1 + gradient) + shared + own;
        rgba[p * 4 + c] = Math.min(255, Math.max(0, Math.round(value)));
      }
      rgba[p * 4 + 3] = 255;
    }
  }
  return rgba;
}
