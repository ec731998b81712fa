// Connected components, relabelling and hole filling on row-major masks and label maps.
//
// Hand-written typed-array loops rather than OpenCV.js: these run once per nucleus on small crops (~30,000
// calls over the training set), where OpenCV.js would cost a copy into and out of its wasm heap, a Mat to
// delete() by hand per call, and ~0.4 s of wasm start-up per process — more than the work itself. A scan-order
// flood fill with an explicit stack is O(pixels), allocation-free per pixel, and easy to check by hand.
import type { LabelMap } from './dataset.js';

/** Largest label a Uint16 label map can hold. */
const maxLabel = 0xffff;
// Neighbour offsets: the first 4 are the cross (4-connectivity), all 8 the square.
const offsetX = [-1, 1, 0, 0, -1, 1, -1, 1];
const offsetY = [0, 0, -1, 1, -1, -1, 1, 1];

/**
 * Labels the 4- or 8-connected pieces where `values` is non-zero and equal between neighbours; pieces are
 * numbered 1..count in raster order of their first pixel. values: [height * width].
 */
function labelPieces(
  values: Uint8Array | Uint16Array,
  width: number,
  height: number,
  connectivity: 4 | 8,
): { labels: Uint16Array; count: number } {
  const size = width * height;
  if (values.length !== size) throw new Error(`mask has ${values.length} pixels, expected ${width}x${height}`);
  const labels = new Uint16Array(size);
  const stack = new Int32Array(size);
  const neighbours = connectivity;
  let count = 0;
  for (let start = 0; start < size; start++) {
    const value = values[start]!;
    if (value === 0 || labels[start] !== 0) continue;
    if (count === maxLabel) throw new Error(`more than ${maxLabel} connected components in a ${width}x${height} mask`);
    const label = ++count;
    labels[start] = label;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const p = stack[--top]!;
      const x = p % width;
      const y = (p - x) / width;
      for (let k = 0; k < neighbours; k++) {
        const nx = x + offsetX[k]!;
        const ny = y + offsetY[k]!;
        if (nx < 0 || nx >= width || ny < 0 || ny >= height) continue;
        const q = ny * width + nx;
        if (values[q] === value && labels[q] === 0) {
          labels[q] = label;
          stack[top++] = q;
        }
      }
    }
  }
  return { labels, count };
}

/**
 * Connected components of a binary mask (non-zero = foreground), numbered 1..count in raster order of their
 * first pixel; 0 = background. mask: [height * width]; labels: [height * width].
 */
export function connectedComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  connectivity: 4 | 8,
): { labels: Uint16Array; count: number } {
  // Collapse every non-zero value to 1 so that "same value" means "foreground".
  const binary = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) binary[i] = mask[i] !== 0 ? 1 : 0;
  return labelPieces(binary, width, height, connectivity);
}

/**
 * Each connected piece of each label becomes its own label, numbered 1..n in raster order of its first pixel
 * (so labels with no pixels disappear and numbering has no gaps).
 */
export function relabel(labels: LabelMap, connectivity: 4 | 8): LabelMap {
  const { width, height } = labels;
  const pieces = labelPieces(labels.data, width, height, connectivity);
  return { width, height, data: pieces.labels, count: pieces.count };
}

/**
 * Fills holes: background (0) pixels not 4-connected to the image border become foreground (1); foreground
 * stays 1. Background is 4-connected, as in scipy.ndimage.binary_fill_holes, so a diagonal gap in an
 * 8-connected outline does not count as an opening. mask: [height * width] -> [height * width] of 0/1.
 */
export function fillHoles(mask: Uint8Array, width: number, height: number): Uint8Array {
  const size = width * height;
  if (mask.length !== size) throw new Error(`mask has ${mask.length} pixels, expected ${width}x${height}`);
  // outside[p] = 1 for background reachable from the border.
  const outside = new Uint8Array(size);
  const stack = new Int32Array(size);
  let top = 0;
  const seed = (p: number): void => {
    if (mask[p] === 0 && outside[p] === 0) {
      outside[p] = 1;
      stack[top++] = p;
    }
  };
  for (let x = 0; x < width; x++) {
    seed(x);
    seed((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    seed(y * width);
    seed(y * width + width - 1);
  }
  while (top > 0) {
    const p = stack[--top]!;
    const x = p % width;
    if (x > 0) seed(p - 1);
    if (x < width - 1) seed(p + 1);
    if (p >= width) seed(p - width);
    if (p + width < size) seed(p + width);
  }
  const filled = new Uint8Array(size);
  for (let p = 0; p < size; p++) filled[p] = outside[p] === 0 ? 1 : 0;
  return filled;
}

/** Pixel count per label: areas[label] for label 0..count. */
export function labelAreas(labels: LabelMap): Uint32Array {
  const areas = new Uint32Array(labels.count + 1);
  for (let i = 0; i < labels.data.length; i++) areas[labels.data[i]!]!++;
  return areas;
}

/** Renumbers labels 1..n keeping their order and dropping labels with no pixels. */
export function compactLabels(labels: LabelMap): LabelMap {
  const areas = labelAreas(labels);
  const next = new Uint16Array(labels.count + 1);
  let count = 0;
  for (let label = 1; label <= labels.count; label++) if (areas[label]! > 0) next[label] = ++count;
  if (count === labels.count) return labels;
  const data = new Uint16Array(labels.data.length);
  for (let i = 0; i < data.length; i++) data[i] = next[labels.data[i]!]!;
  return { width: labels.width, height: labels.height, data, count };
}
