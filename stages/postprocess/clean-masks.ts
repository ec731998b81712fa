// The recipe's post-processing of one image's predicted instances, in its order:
//   1. drop masks of area <= minArea;
//   2. order by score, highest first;
//   3. for each mask: fill holes; closing (dilate then erode with a 3x3 cross); remove the pixels already
//      claimed by higher-scoring masks; if what is left falls into several (8-connected) pieces, keep the
//      largest ('largest'), delete the mask ('delete': what the original code did) or keep all ('keep');
//   4. drop masks of area <= minArea again.
// Each step can be switched off. The result does not overlap (when removeOverlap is on).
//
// A mask claims the pixels it keeps after step 3 (the original also let masks that step 3 then deleted
// keep their claim, which blocks lower-scoring masks for nothing).
//
// Every step works on the mask's bounding box grown by one pixel (clipped to the image): hole filling on it
// equals hole filling on the whole image (the ring is background connected to the outside), and closing
// needs exactly one pixel of room to grow into. So the cost is the nuclei's area, not the image's.
import { closeCross, largestComponent } from '../imaging/morphology.js';
import { connectedComponents, fillHoles } from '../imaging/components.js';
import { cropArea, padCrop, tightenCrop, type CropMask } from '../evaluate/crop-mask.js';
import type { MaskInstance } from '../predict/predictions.js';

export type PiecesRule = 'largest' | 'delete' | 'keep';

export interface CleanOptions {
  /** Masks with area <= minArea are dropped, before and after the per-mask steps. */
  minArea: number;
  fillHoles: boolean;
  closing: boolean;
  removeOverlap: boolean;
  pieces: PiecesRule;
}

export const defaultCleanOptions: CleanOptions = { minArea: 10, fillHoles: true, closing: true, removeOverlap: true, pieces: 'largest' };

/** What the steps did, summed over the image's masks. */
export interface CleanStats {
  input: number;
  droppedSmallBefore: number;
  holePixelsFilled: number;
  closingPixelsAdded: number;
  overlapPixelsRemoved: number;
  /** Masks that fell into several pieces after overlap removal. */
  split: number;
  /** Masks deleted because they fell into pieces (pieces: 'delete'). */
  deletedSplit: number;
  droppedSmallAfter: number;
  output: number;
}

export function emptyCleanStats(): CleanStats {
  return {
    input: 0,
    droppedSmallBefore: 0,
    holePixelsFilled: 0,
    closingPixelsAdded: 0,
    overlapPixelsRemoved: 0,
    split: 0,
    deletedSplit: 0,
    droppedSmallAfter: 0,
    output: 0,
  };
}

export function addCleanStats(total: CleanStats, one: CleanStats): void {
  for (const key of Object.keys(total) as Array<keyof CleanStats>) total[key] += one[key];
}

/** Post-processes one image's instances (masks inside a width x height image). Does not modify its input. */
export function cleanMasks(
  instances: readonly MaskInstance[],
  width: number,
  height: number,
  options: CleanOptions = defaultCleanOptions,
): { instances: MaskInstance[]; stats: CleanStats } {
  const stats = emptyCleanStats();
  stats.input = instances.length;
  const big = instances.filter((instance) => cropArea(instance.mask) > options.minArea);
  stats.droppedSmallBefore = instances.length - big.length;
  // Stable sort: equal scores keep the detector's order.
  const ordered = big.map((instance, index) => ({ instance, index })).sort((a, b) => b.instance.score - a.instance.score || a.index - b.index);
  const claimed = new Uint8Array(width * height); // [height * width], 1 = kept by a higher-scoring mask
  const kept: MaskInstance[] = [];
  for (const { instance } of ordered) {
    const mask = cleanOne(instance.mask, width, height, claimed, options, stats);
    if (mask === undefined) continue; // deleted for falling into pieces
    if (cropArea(mask) > options.minArea) kept.push({ ...instance, mask });
    else stats.droppedSmallAfter++;
  }
  stats.output = kept.length;
  return { instances: kept, stats };
}

function cleanOne(source: CropMask, width: number, height: number, claimed: Uint8Array, options: CleanOptions, stats: CleanStats): CropMask | undefined {
  // padCrop copies, so the input instance is never modified.
  const crop = padCrop(source, 1, width, height);
  const { width: w, height: h } = crop;
  let data = crop.data; // [h * w]
  let area = cropArea(crop);
  if (options.fillHoles) {
    data = fillHoles(data, w, h);
    const filledArea = countOn(data);
    stats.holePixelsFilled += filledArea - area;
    area = filledArea;
  }
  if (options.closing) {
    data = closeCross(data, w, h);
    const closedArea = countOn(data);
    stats.closingPixelsAdded += closedArea - area;
    area = closedArea;
  }
  if (options.removeOverlap) {
    for (let y = 0; y < h; y++) {
      const row = (crop.y + y) * width + crop.x;
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (data[i] !== 0 && claimed[row + x] !== 0) {
          data[i] = 0;
          stats.overlapPixelsRemoved++;
        }
      }
    }
  }
  if (options.pieces !== 'keep') {
    const pieces = options.pieces === 'largest' ? largestComponent(data, w, h, 8) : { mask: data, pieces: connectedComponents(data, w, h, 8).count };
    if (pieces.pieces > 1) {
      stats.split++;
      if (options.pieces === 'delete') {
        stats.deletedSplit++;
        return undefined;
      }
      data = pieces.mask;
    }
  }
  const result = tightenCrop({ x: crop.x, y: crop.y, width: w, height: h, data });
  if (options.removeOverlap) {
    for (let y = 0; y < result.height; y++) {
      const row = (result.y + y) * width + result.x;
      for (let x = 0; x < result.width; x++) if (result.data[y * result.width + x] !== 0) claimed[row + x] = 1;
    }
  }
  return result;
}

function countOn(data: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) count++;
  return count;
}
