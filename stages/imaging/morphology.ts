// Binary morphology with a 3x3 cross, largest connected piece, and per-nucleus hole filling of a label map.
// Used by fill-holes and by post-processing (fill holes, dilate then erode with a 3x3 cross, keep the largest
// piece). Masks are row-major 0/1 Uint8Arrays [height * width]; pixels outside the image count as background.
//
// Plain loops, not OpenCV.js: a 3x3 cross is four neighbour reads per pixel, and these run once per mask on
// crops, where copying into OpenCV.js' wasm heap and back (plus its ~0.4 s start-up) costs more than the work.
import type { LabelMap } from './dataset.js';
import { compactLabels, connectedComponents, fillHoles } from './components.js';

/** Dilation by the 3x3 cross: a pixel is on when it or one of its 4 neighbours is on. */
export function dilateCross(mask: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      out[p] =
        mask[p] || (x > 0 && mask[p - 1]) || (x < width - 1 && mask[p + 1]) || (y > 0 && mask[p - width]) || (y < height - 1 && mask[p + width])
          ? 1
          : 0;
    }
  }
  return out;
}

/** Erosion by the 3x3 cross: a pixel stays on only when it and its 4 neighbours are on (outside = off). */
export function erodeCross(mask: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      out[p] =
        mask[p] && x > 0 && mask[p - 1] && x < width - 1 && mask[p + 1] && y > 0 && mask[p - width] && y < height - 1 && mask[p + width]
          ? 1
          : 0;
    }
  }
  return out;
}

/**
 * Closing (dilate, then erode) by the 3x3 cross. The image is padded by one background pixel on each side while
 * closing, so that a mask touching the border is not eaten by the erosion's "outside = off" rule.
 */
export function closeCross(mask: Uint8Array, width: number, height: number): Uint8Array {
  const paddedWidth = width + 2;
  const paddedHeight = height + 2;
  const padded = new Uint8Array(paddedWidth * paddedHeight);
  for (let y = 0; y < height; y++) padded.set(mask.subarray(y * width, (y + 1) * width), (y + 1) * paddedWidth + 1);
  const closed = erodeCross(dilateCross(padded, paddedWidth, paddedHeight), paddedWidth, paddedHeight);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) out.set(closed.subarray((y + 1) * paddedWidth + 1, (y + 1) * paddedWidth + 1 + width), y * width);
  return out;
}

/**
 * Keeps only the largest connected piece of a mask (ties: the first in raster order); an empty mask stays
 * empty. Returns the kept mask and how many pieces there were.
 */
export function largestComponent(
  mask: Uint8Array,
  width: number,
  height: number,
  connectivity: 4 | 8 = 8,
): { mask: Uint8Array; pieces: number } {
  const { labels, count } = connectedComponents(mask, width, height, connectivity);
  if (count <= 1) return { mask: Uint8Array.from(mask, (v) => (v ? 1 : 0)), pieces: count };
  const areas = new Uint32Array(count + 1);
  for (let p = 0; p < labels.length; p++) areas[labels[p]!]!++;
  let best = 1;
  for (let label = 2; label <= count; label++) if (areas[label]! > areas[best]!) best = label;
  const out = new Uint8Array(width * height);
  for (let p = 0; p < labels.length; p++) out[p] = labels[p] === best ? 1 : 0;
  return { mask: out, pieces: count };
}

/** Bounding boxes per label, [x0, y0, x1, y1) half-open; x1 === 0 marks a label with no pixels. */
export function labelBounds(labels: LabelMap): { x0: Int32Array; y0: Int32Array; x1: Int32Array; y1: Int32Array } {
  const n = labels.count + 1;
  const x0 = new Int32Array(n).fill(labels.width);
  const y0 = new Int32Array(n).fill(labels.height);
  const x1 = new Int32Array(n);
  const y1 = new Int32Array(n);
  const { width, height, data } = labels;
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      const label = data[p]!;
      if (label === 0) continue;
      if (x < x0[label]!) x0[label] = x;
      if (x >= x1[label]!) x1[label] = x + 1;
      if (y < y0[label]!) y0[label] = y;
      y1[label] = y + 1;
    }
  }
  return { x0, y0, x1, y1 };
}

export interface HoleFilling {
  labels: LabelMap;
  /** Nuclei that had at least one hole pixel filled. */
  nucleiFilled: number;
  /** Background pixels given to the nucleus that encloses them. */
  filledPixels: number;
  /** Enclosed pixels left to another nucleus that already owns them (a nucleus inside a ring). */
  enclosedOtherPixels: number;
  /** Labels with no pixels, dropped (area >= 1 kept). */
  droppedEmpty: number;
}

/**
 * Fills each nucleus' holes: background pixels enclosed by that nucleus (not 4-connected to the border of
 * its bounding box, which is the same as not connected to the image border) become that nucleus. Pixels of
 * another nucleus inside a hole stay with their owner. Labels are then compacted (area >= 1).
 */
export function fillLabelHoles(labels: LabelMap): HoleFilling {
  const { width, height } = labels;
  const data = Uint16Array.from(labels.data);
  const { x0, y0, x1, y1 } = labelBounds(labels);
  let nucleiFilled = 0;
  let filledPixels = 0;
  let enclosedOtherPixels = 0;
  for (let label = 1; label <= labels.count; label++) {
    const left = x0[label]!;
    const top = y0[label]!;
    const cropWidth = x1[label]! - left;
    const cropHeight = y1[label]! - top;
    // A hole needs a ring around it: at least 3x3.
    if (cropWidth < 3 || cropHeight < 3) continue;
    const crop = new Uint8Array(cropWidth * cropHeight);
    for (let y = 0, i = 0; y < cropHeight; y++) {
      for (let x = 0, p = (top + y) * width + left; x < cropWidth; x++, p++, i++) crop[i] = data[p] === label ? 1 : 0;
    }
    const filled = fillHoles(crop, cropWidth, cropHeight);
    let filledHere = 0;
    for (let y = 0, i = 0; y < cropHeight; y++) {
      for (let x = 0, p = (top + y) * width + left; x < cropWidth; x++, p++, i++) {
        if (filled[i] === 0 || crop[i] === 1) continue;
        if (data[p] === 0) {
          data[p] = label;
          filledHere++;
        } else enclosedOtherPixels++;
      }
    }
    if (filledHere > 0) nucleiFilled++;
    filledPixels += filledHere;
  }
  const compacted = compactLabels({ width, height, data, count: labels.count });
  return { labels: compacted, nucleiFilled, filledPixels, enclosedOtherPixels, droppedEmpty: labels.count - compacted.count };
}
