// What the network sees of an image's intensities (model config `image.contrast`). The recipe feeds the pixels
// as they are ('none'): its backbone starts from ImageNet weights, whose batch-norm statistics absorb any
// brightness. A network trained from scratch with frozen batch norm has nothing that does: of the 664 training
// images, 183 have their 99th percentile under 50 of 255 (dim fluorescence), and one validation image lies
// entirely within 11..15. 'stretch' maps each whole image's 1st..99.9th percentile onto 0..255 before anything
// else sees it — training (before windows and augmentation) and prediction (before TTA, tiles and the
// scale-down canvas) alike, so both see the same statistics of the same whole image.
import type { Image8 } from '../imaging/dataset.js';

export const contrastModes = ['none', 'stretch'] as const;
export type ContrastMode = (typeof contrastModes)[number];

/** The percentiles mapped onto 0 and 255: robust to a few hot or dead pixels, not to a nucleus' brightness. */
const LOW_PERCENTILE = 0.01;
const HIGH_PERCENTILE = 0.999;

/** The image as the network is to see it under `mode` (the same object where nothing changes). */
export function withContrast(image: Image8, mode: ContrastMode): Image8 {
  return mode === 'stretch' ? stretchContrast(image) : image;
}

/**
 * The colour channels' values from their 1st to 99.9th percentile (over all colour channels together, so hue
 * is kept) stretched linearly onto 0..255 and clamped; alpha is left as it is. A flat image is returned as is.
 */
export function stretchContrast(image: Image8): Image8 {
  const { data, channels } = image;
  const colours = channels === 4 ? 3 : channels;
  const histogram = new Float64Array(256);
  for (let i = 0; i < data.length; i += channels) {
    for (let c = 0; c < colours; c++) histogram[data[i + c]!]! += 1;
  }
  const total = (data.length / channels) * colours;
  const low = percentile(histogram, total, LOW_PERCENTILE);
  const high = percentile(histogram, total, HIGH_PERCENTILE);
  if (high <= low) return image;
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) table[v] = Math.round(Math.min(255, Math.max(0, ((v - low) * 255) / (high - low))));
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += channels) {
    for (let c = 0; c < colours; c++) out[i + c] = table[data[i + c]!]!;
    if (channels === 4) out[i + 3] = data[i + 3]!;
  }
  return { ...image, data: out };
}

/** The smallest value v with at least `fraction` of the values <= v. */
function percentile(histogram: Float64Array, total: number, fraction: number): number {
  const wanted = fraction * total;
  let seen = 0;
  for (let v = 0; v < 256; v++) {
    seen += histogram[v]!;
    if (seen >= wanted) return v;
  }
  return 255;
}
