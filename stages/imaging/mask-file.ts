// One-nucleus mask PNGs as the DSB layout stores them (0 / 255 grey): read as binary (> 128), and written back.
import sharp, { type OutputInfo } from 'sharp';
import { readFileSync } from 'node:fs';
import { StageError } from '../stage-error.js';
import { decodeSimplePng } from './png-fast.js';

sharp.cache(false);

/** A binary mask, row-major: data.length === width * height, values 0 or 1. */
export interface BinaryMask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A mask held as its bounding box: crop is [(y1 - y0) * (x1 - x0)] of 0/1; bounds undefined when empty. */
export interface MaskCrop {
  width: number;
  height: number;
  bounds: { x0: number; y0: number; x1: number; y1: number; area: number } | undefined;
  crop: Uint8Array;
}

/** Decodes a mask PNG to its grey samples (1 or 2 channels: grey, or grey + alpha). */
async function decodeGrey(file: string): Promise<{ width: number; height: number; channels: number; pixels: Uint8Array }> {
  let bytes: Buffer;
  try {
    // Synchronous on purpose: ~20 us for a cached small file, where fs.promises.readFile's four thread-pool
    // hops (open, fstat, read, close) cost several times that over ~29,000 masks.
    bytes = readFileSync(file);
  } catch (error) {
    throw new StageError(`${file}: cannot read mask (${firstLine(error)})`);
  }
  // Fast path for the usual 8-bit grey mask (see png-fast.ts for why); sharp for everything else.
  let fast;
  try {
    fast = decodeSimplePng(bytes);
  } catch {
    fast = undefined;
  }
  if (fast && (fast.channels === 1 || fast.channels === 2)) {
    return { width: fast.width, height: fast.height, channels: fast.channels, pixels: fast.data };
  }
  try {
    const { data, info } = await sharp(bytes, { failOn: 'truncated' })
      .toColourspace('b-w')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (error) {
    throw new StageError(`${file}: cannot decode mask (${firstLine(error)})`);
  }
}

/**
 * Decodes a mask PNG and binarises it at > threshold (the recipe's 128) on its grey value (colour masks are
 * reduced to luminance), keeping only its bounding box: a DSB mask is a whole-image PNG holding one small
 * nucleus, so working on the box is what keeps fix-masks fast. Corrupt files are a StageError naming the file.
 */
export async function readMaskCrop(file: string, threshold = 128): Promise<MaskCrop> {
  const { width, height, channels, pixels } = await decodeGrey(file);
  const bounds = foregroundBounds(pixels, width, height, channels, threshold);
  if (!bounds) return { width, height, bounds, crop: new Uint8Array(0) };
  const { x0, y0, x1, y1 } = bounds;
  const cropWidth = x1 - x0;
  const crop = new Uint8Array(cropWidth * (y1 - y0));
  let area = 0;
  for (let y = y0, i = 0; y < y1; y++) {
    for (let x = x0, s = (y * width + x0) * channels; x < x1; x++, s += channels, i++) {
      const on = pixels[s]! > threshold ? 1 : 0;
      crop[i] = on;
      area += on;
    }
  }
  return { width, height, bounds: { x0, y0, x1, y1, area }, crop };
}

/**
 * Bounding box of samples > threshold on channel 0. For single-channel data it first skips 4 bytes at a time
 * whose high bits are all clear (every byte < 128 <= threshold), which is most of a mask.
 */
function foregroundBounds(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  threshold: number,
): { x0: number; y0: number; x1: number; y1: number } | undefined {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  const stride = width * channels;
  const visit = (index: number): void => {
    if (index % channels !== 0 || pixels[index]! <= threshold) return;
    const y = Math.floor(index / stride);
    const x = (index - y * stride) / channels;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  };
  let start = 0;
  if (threshold >= 127 && pixels.byteOffset % 4 === 0) {
    const words = new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.length >> 2);
    for (let w = 0; w < words.length; w++) {
      if ((words[w]! & 0x80808080) === 0) continue;
      const base = w << 2;
      visit(base);
      visit(base + 1);
      visit(base + 2);
      visit(base + 3);
    }
    start = words.length << 2;
  }
  for (let index = start; index < pixels.length; index++) visit(index);
  return x1 < 0 ? undefined : { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}

/** Decodes a mask PNG and binarises it at > threshold into a whole-image 0/1 mask. */
export async function readBinaryMask(file: string, threshold = 128): Promise<BinaryMask> {
  const { width, height, bounds, crop } = await readMaskCrop(file, threshold);
  const data = new Uint8Array(width * height);
  if (bounds) {
    const cropWidth = bounds.x1 - bounds.x0;
    for (let y = bounds.y0, i = 0; y < bounds.y1; y++, i += cropWidth) {
      data.set(crop.subarray(i, i + cropWidth), y * width + bounds.x0);
    }
  }
  return { width, height, data };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

/** Writes a binary mask as an 8-bit grey PNG of 0 / 255, as the DSB layout has it. */
export async function writeBinaryMask(file: string, mask: BinaryMask): Promise<void> {
  const pixels = new Uint8Array(mask.data.length);
  for (let p = 0; p < pixels.length; p++) pixels[p] = mask.data[p] ? 255 : 0;
  await sharp(pixels, { raw: { width: mask.width, height: mask.height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 3 })
    .toFile(file);
}

/** Bounding box of the non-zero pixels: [x0, y0, x1, y1) half-open, or undefined when the mask is empty. */
export function maskBounds(mask: BinaryMask): { x0: number; y0: number; x1: number; y1: number; area: number } | undefined {
  const { width, height, data } = mask;
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  let area = 0;
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      if (data[p] === 0) continue;
      area++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return area === 0 ? undefined : { x0, y0, x1: x1 + 1, y1: y1 + 1, area };
}
