// One instance's binary mask, stored only over its bounding box. A 1388x1040 image can carry 400 predicted
// instances: as full-size masks that is ~580 MB and every per-mask step (fill holes, closing, components)
// would cost O(image); as crops it is the nuclei's own few thousand pixels each.
import type { LabelMap } from '../imaging/dataset.js';
import { validateRle } from './rle.js';

/**
 * A binary mask over the rectangle [x, x + width) x [y, y + height) of a larger image.
 * data: [height * width], row-major, 0 or 1. An empty mask has width = height = 0.
 */
export interface CropMask {
  x: number;
  y: number;
  width: number;
  height: number;
  data: Uint8Array;
}

export const emptyCrop: CropMask = Object.freeze({ x: 0, y: 0, width: 0, height: 0, data: new Uint8Array(0) });

/** Foreground pixel count. */
export function cropArea(crop: CropMask): number {
  let area = 0;
  for (let i = 0; i < crop.data.length; i++) area += crop.data[i]!;
  return area;
}

/** The crop's rectangle as a box [y1, x1, y2, x2] in image pixels, ends exclusive (Matterport's convention). */
export function cropBox(crop: CropMask): [number, number, number, number] {
  return [crop.y, crop.x, crop.y + crop.height, crop.x + crop.width];
}

/** Shrinks the rectangle to the foreground's bounding box (emptyCrop when nothing is set). */
export function tightenCrop(crop: CropMask): CropMask {
  let x0 = crop.width;
  let x1 = -1;
  let y0 = crop.height;
  let y1 = -1;
  for (let y = 0; y < crop.height; y++) {
    const row = y * crop.width;
    for (let x = 0; x < crop.width; x++) {
      if (crop.data[row + x] === 0) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  if (x1 < 0) return emptyCrop;
  if (x0 === 0 && y0 === 0 && x1 === crop.width - 1 && y1 === crop.height - 1) return crop;
  return subCrop(crop, crop.x + x0, crop.y + y0, x1 - x0 + 1, y1 - y0 + 1);
}

/** The crop re-cut to another rectangle (pixels outside the old one are 0), in image coordinates. */
export function subCrop(crop: CropMask, x: number, y: number, width: number, height: number): CropMask {
  const data = new Uint8Array(width * height);
  const fromX = Math.max(x, crop.x);
  const toX = Math.min(x + width, crop.x + crop.width);
  for (let row = Math.max(y, crop.y); row < Math.min(y + height, crop.y + crop.height); row++) {
    if (toX <= fromX) break;
    const source = (row - crop.y) * crop.width + (fromX - crop.x);
    data.set(crop.data.subarray(source, source + toX - fromX), (row - y) * width + (fromX - x));
  }
  return { x, y, width, height, data };
}

/** Grows the rectangle by `margin` pixels on every side, clipped to the image. */
export function padCrop(crop: CropMask, margin: number, imageWidth: number, imageHeight: number): CropMask {
  const x = Math.max(0, crop.x - margin);
  const y = Math.max(0, crop.y - margin);
  const right = Math.min(imageWidth, crop.x + crop.width + margin);
  const bottom = Math.min(imageHeight, crop.y + crop.height + margin);
  return subCrop(crop, x, y, right - x, bottom - y);
}

/**
 * Decodes a Kaggle RLE (see rle.ts) straight into a tight crop, without a full-size mask. `where` names the
 * row for the validation error.
 */
export function cropFromRle(runs: ArrayLike<number>, imageWidth: number, imageHeight: number, where: string): CropMask {
  validateRle(runs, imageWidth, imageHeight, where);
  if (runs.length === 0) return emptyCrop;
  const H = imageHeight;
  // Pass 1: bounding box. A run inside one column covers rows r0..r1; one that crosses a column boundary
  // touches both the bottom and the top row.
  let x0 = Infinity;
  let x1 = -1;
  let y0 = Infinity;
  let y1 = -1;
  for (let i = 0; i < runs.length; i += 2) {
    const first = runs[i]! - 1;
    const last = first + runs[i + 1]! - 1;
    const c0 = Math.floor(first / H);
    const c1 = Math.floor(last / H);
    x0 = Math.min(x0, c0);
    x1 = Math.max(x1, c1);
    if (c0 === c1) {
      y0 = Math.min(y0, first - c0 * H);
      y1 = Math.max(y1, last - c1 * H);
    } else {
      y0 = 0;
      y1 = H - 1;
    }
  }
  const width = x1 - x0 + 1;
  const height = y1 - y0 + 1;
  const data = new Uint8Array(width * height);
  // Pass 2: paint.
  for (let i = 0; i < runs.length; i += 2) {
    const first = runs[i]! - 1;
    const last = first + runs[i + 1]!;
    for (let k = first; k < last; k++) {
      const x = Math.floor(k / H);
      data[(k - x * H - y0) * width + (x - x0)] = 1;
    }
  }
  return { x: x0, y: y0, width, height, data };
}

/** Encodes a crop as a Kaggle RLE of the whole image (column-major, 1-based, touching runs merged). */
export function cropToRle(crop: CropMask, imageWidth: number, imageHeight: number): number[] {
  if (crop.x < 0 || crop.y < 0 || crop.x + crop.width > imageWidth || crop.y + crop.height > imageHeight) {
    throw new Error(`crop ${crop.width}x${crop.height}+${crop.x}+${crop.y} lies outside the ${imageWidth}x${imageHeight} image`);
  }
  const runs: number[] = [];
  let runStart = -1; // 1-based start of the open run
  let runEnd = -1; // 1-based last pixel of the open run
  for (let x = 0; x < crop.width; x++) {
    const columnBase = (crop.x + x) * imageHeight + crop.y + 1;
    for (let y = 0; y < crop.height; y++) {
      if (crop.data[y * crop.width + x] === 0) continue;
      const k = columnBase + y;
      if (k === runEnd + 1) runEnd = k;
      else {
        if (runStart > 0) runs.push(runStart, runEnd - runStart + 1);
        runStart = k;
        runEnd = k;
      }
    }
  }
  if (runStart > 0) runs.push(runStart, runEnd - runStart + 1);
  return runs;
}

/** The crop pasted into a full-size row-major mask. mask: [imageHeight * imageWidth]. */
export function cropToFullMask(crop: CropMask, imageWidth: number, imageHeight: number): Uint8Array {
  return subCrop(crop, 0, 0, imageWidth, imageHeight).data;
}

/** A full-size row-major mask as a tight crop. */
export function cropFromFullMask(mask: Uint8Array, imageWidth: number, imageHeight: number): CropMask {
  return tightenCrop({ x: 0, y: 0, width: imageWidth, height: imageHeight, data: mask });
}

/** One crop per label of a label map, in label order (index i holds label i + 1; absent labels are empty). */
export function cropsFromLabels(labels: LabelMap): CropMask[] {
  const { width, height, data, count } = labels;
  const x0 = new Int32Array(count + 1).fill(width);
  const x1 = new Int32Array(count + 1).fill(-1);
  const y0 = new Int32Array(count + 1).fill(height);
  const y1 = new Int32Array(count + 1).fill(-1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const label = data[y * width + x]!;
      if (label === 0) continue;
      if (label > count) throw new Error(`label ${label} exceeds the label map's count ${count}`);
      if (x < x0[label]!) x0[label] = x;
      if (x > x1[label]!) x1[label] = x;
      if (y < y0[label]!) y0[label] = y;
      y1[label] = y;
    }
  }
  const crops: CropMask[] = [];
  for (let label = 1; label <= count; label++) {
    if (x1[label]! < 0) {
      crops.push(emptyCrop);
      continue;
    }
    const cx = x0[label]!;
    const cy = y0[label]!;
    const cw = x1[label]! - cx + 1;
    const ch = y1[label]! - cy + 1;
    const crop = new Uint8Array(cw * ch);
    for (let y = 0; y < ch; y++) {
      const source = (cy + y) * width + cx;
      for (let x = 0; x < cw; x++) if (data[source + x] === label) crop[y * cw + x] = 1;
    }
    crops.push({ x: cx, y: cy, width: cw, height: ch, data: crop });
  }
  return crops;
}
