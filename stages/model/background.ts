// Which way round the network sees nuclei (model config `image.background`). Fluorescence images show bright
// nuclei on a dark background; bright-field and stained tissue (H&E) show dark nuclei on a bright one. The
// recipe feeds both as they are ('as-is') and learns each look from its own images: 541 of the 664 training
// images are fluorescence, 123 are bright. 'dark' inverts every image whose background is bright, so all of
// them show bright nuclei on dark and the bright modalities borrow what the fluorescence images teach.
//
// Bright background: the median over pixels of the colour channels' mean is above the middle (127). After the
// contrast stretch, the training images' medians are 0..47 for fluorescence and 146..240 for the bright
// modalities; the stage-1 test images' 0..76 and 153..226 (every modality of classes.csv, the stained tissue
// the training set lacks included).
import type { Image8 } from '../imaging/dataset.js';

export const backgroundModes = ['as-is', 'dark'] as const;
export type BackgroundMode = (typeof backgroundModes)[number];

const MIDDLE = 127;

/** The image as the network is to see it under `mode` (the same object where nothing changes). */
export function withBackground(image: Image8, mode: BackgroundMode): Image8 {
  return mode === 'dark' && hasBrightBackground(image) ? invertColours(image) : image;
}

/** Whether the median pixel (the mean of its colour channels) is brighter than the middle of 0..255. */
export function hasBrightBackground(image: Image8): boolean {
  const { data, channels } = image;
  const colours = channels === 4 ? 3 : channels;
  const histogram = new Uint32Array(256);
  for (let i = 0; i < data.length; i += channels) {
    let sum = 0;
    for (let c = 0; c < colours; c++) sum += data[i + c]!;
    histogram[Math.round(sum / colours)]! += 1;
  }
  const pixels = data.length / channels;
  let seen = 0;
  for (let v = 0; v < 256; v++) {
    seen += histogram[v]!;
    if (seen * 2 >= pixels) return v > MIDDLE;
  }
  return false;
}

/** 255 - v in every colour channel; alpha is left as it is. */
export function invertColours(image: Image8): Image8 {
  const { data, channels } = image;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += channels) {
    for (let c = 0; c < channels; c++) out[i + c] = channels === 4 && c === 3 ? data[i + c]! : 255 - data[i + c]!;
  }
  return { ...image, data: out };
}
