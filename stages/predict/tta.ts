// Test-time augmentation by left-right flip, merged with the recipe's union rule:
//   predict the image and its mirror image; flip the mirror pass's masks back; then for each mask of the
//   plain pass, if its best mask-IoU with a flipped-pass mask is > 0.1, replace it by the union of the two,
//   otherwise delete it as a false positive. Masks found only in the flipped pass are dropped.
// So TTA here is a filter (a nucleus must be seen twice) and a smoother (the union fills what one pass missed).
import { overlaps } from '../evaluate/metric.js';
import { cropArea, subCrop, type CropMask } from '../evaluate/crop-mask.js';
import type { Box, MaskInstance } from './predictions.js';

export interface FlipMergeOptions {
  /** A plain-pass mask survives when its best IoU with a flipped-pass mask is strictly above this. */
  minIou: number;
}

export const defaultFlipMergeOptions: FlipMergeOptions = { minIou: 0.1 };

/** Mirrors a crop left-right within an image of the given width. */
export function flipCropHorizontally(crop: CropMask, imageWidth: number): CropMask {
  const data = new Uint8Array(crop.data.length);
  for (let y = 0; y < crop.height; y++) {
    const row = y * crop.width;
    for (let x = 0; x < crop.width; x++) data[row + crop.width - 1 - x] = crop.data[row + x]!;
  }
  return { x: imageWidth - crop.x - crop.width, y: crop.y, width: crop.width, height: crop.height, data };
}

/** Mirrors a box [y1, x1, y2, x2] (ends exclusive) left-right within an image of the given width. */
export function flipBoxHorizontally(box: Box, imageWidth: number): Box {
  return [box[0], imageWidth - box[3], box[2], imageWidth - box[1]];
}

/** Mirrors instances of the flipped pass back into the original image's frame. */
export function flipInstancesBack(instances: readonly MaskInstance[], imageWidth: number): MaskInstance[] {
  return instances.map(({ score, box, mask }) => ({
    score,
    box: flipBoxHorizontally(box, imageWidth),
    mask: flipCropHorizontally(mask, imageWidth),
  }));
}

/** The union of two crops of one image, over the rectangle that holds both. */
export function unionCrops(a: CropMask, b: CropMask): CropMask {
  if (cropArea(a) === 0) return b;
  if (cropArea(b) === 0) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  const width = Math.max(a.x + a.width, b.x + b.width) - x;
  const height = Math.max(a.y + a.height, b.y + b.height) - y;
  const union = subCrop(a, x, y, width, height);
  const other = subCrop(b, x, y, width, height);
  for (let i = 0; i < union.data.length; i++) union.data[i] = union.data[i]! | other.data[i]!;
  return union;
}

/**
 * The recipe's merge. `plain`: the plain pass; `flippedBack`: the mirror pass, already flipped back (see
 * flipInstancesBack). Returns the surviving plain-pass instances, in their order, each replaced by its union
 * with its best-matching flipped mask (ties: the first such mask, like numpy's argmax); the plain score and
 * the box enclosing both boxes are kept.
 */
export function mergeFlipUnion(
  plain: readonly MaskInstance[],
  flippedBack: readonly MaskInstance[],
  imageWidth: number,
  imageHeight: number,
  options: FlipMergeOptions = defaultFlipMergeOptions,
): MaskInstance[] {
  // best[i] = index of plain mask i's best flipped mask (by IoU), with that IoU as a fraction.
  const bestIndex = new Int32Array(plain.length).fill(-1);
  const bestIntersection = new Float64Array(plain.length);
  const bestUnion = new Float64Array(plain.length).fill(1);
  const pairs = overlaps(
    flippedBack.map((instance) => instance.mask),
    plain.map((instance) => instance.mask),
    imageWidth,
    imageHeight,
  );
  for (const { prediction, truth, intersection, union } of pairs) {
    const currentBetter = intersection * bestUnion[prediction]! - bestIntersection[prediction]! * union;
    if (currentBetter > 0 || (currentBetter === 0 && bestIndex[prediction]! >= 0 && truth < bestIndex[prediction]!)) {
      bestIndex[prediction] = truth;
      bestIntersection[prediction] = intersection;
      bestUnion[prediction] = union;
    }
  }
  const merged: MaskInstance[] = [];
  plain.forEach((instance, i) => {
    const match = bestIndex[i]!;
    if (match < 0 || !(bestIntersection[i]! / bestUnion[i]! > options.minIou)) return;
    const partner = flippedBack[match]!;
    merged.push({
      score: instance.score,
      box: [
        Math.min(instance.box[0], partner.box[0]),
        Math.min(instance.box[1], partner.box[1]),
        Math.max(instance.box[2], partner.box[2]),
        Math.max(instance.box[3], partner.box[3]),
      ],
      mask: unionCrops(instance.mask, partner.mask),
    });
  });
  return merged;
}
