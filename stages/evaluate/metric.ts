// The Kaggle DSB2018 score, exactly:
//   for each image and each IoU threshold t in 0.50, 0.55, …, 0.95, a predicted object is a true positive when
//   its IoU with a ground-truth object is > t (strictly); precision(t) = TP / (TP + FP + FN);
//   image score = mean over the 10 thresholds; dataset score = mean over images.
//
// Choices the competition left open, made here and tested:
// - An image with no ground-truth object and no predicted object scores 1 (nothing to find, nothing claimed
//   wrongly); with objects on only one side it scores 0. (The stage-1 sets have no empty-truth image.)
// - An instance with no pixels is not an object (an empty EncodedPixels row means "no nucleus").
// - Comparisons are in integers (100 * intersection > t% * union), so an IoU of exactly 0.55 is not > 0.55.
// - Matches are unique when masks do not overlap (two objects can't both hold more than half of a third).
//   Overlapping inputs (raw, un-post-processed predictions) are matched greedily by descending IoU, one to one.
//
// IoUs come from one label-overlap histogram: every predicted pixel looks up the truth label under it, so the
// cost is O(image + predicted pixels), not O(pairs x pixels).
import { cropArea, type CropMask } from './crop-mask.js';

/** The thresholds as whole percentages: 50, 55, …, 95. */
export const iouThresholdsPercent: readonly number[] = Object.freeze([50, 55, 60, 65, 70, 75, 80, 85, 90, 95]);

/** Intersection and union (in pixels) of one predicted and one true object that share at least one pixel. */
export interface Overlap {
  prediction: number;
  truth: number;
  intersection: number;
  union: number;
}

export interface ImageScore {
  /** Mean of `precisions`. */
  score: number;
  /** TP / (TP + FP + FN) at each of iouThresholdsPercent. */
  precisions: number[];
  truePositives: number[];
  truthCount: number;
  predictionCount: number;
  /**
   * Sum of the IoUs of the pairs matched at 0.50 (truePositives[0] of them): the mean, this over that, says how
   * well the found nuclei are outlined, apart from how many are found.
   */
  matchedIoUSum: number;
}

/**
 * Every (prediction, truth) pair with a non-empty intersection, with the pair's intersection and union.
 * Indices are into the arrays given. Crops lie inside a width x height image.
 */
export function overlaps(truth: readonly CropMask[], predictions: readonly CropMask[], width: number, height: number): Overlap[] {
  // owner[pixel] = truth index + 1 (0 = background); pixels claimed by several truths keep the others in `extra`.
  const owner = new Int32Array(width * height);
  const extra = new Map<number, number[]>();
  const truthAreas = truth.map(cropArea);
  truth.forEach((crop, index) => {
    forEachPixel(crop, width, (pixel) => {
      if (owner[pixel] === 0) owner[pixel] = index + 1;
      else {
        const others = extra.get(pixel);
        if (others) others.push(index + 1);
        else extra.set(pixel, [index + 1]);
      }
    });
  });
  const counts = new Int32Array(truth.length + 1); // intersection per truth label, reset after each prediction
  const touched: number[] = [];
  const result: Overlap[] = [];
  const bump = (label: number): void => {
    if (counts[label] === 0) touched.push(label);
    counts[label]!++;
  };
  predictions.forEach((crop, prediction) => {
    let area = 0;
    forEachPixel(crop, width, (pixel) => {
      area++;
      const label = owner[pixel]!;
      if (label === 0) return;
      bump(label);
      if (extra.size > 0) extra.get(pixel)?.forEach(bump);
    });
    for (const label of touched) {
      const intersection = counts[label]!;
      result.push({ prediction, truth: label - 1, intersection, union: area + truthAreas[label - 1]! - intersection });
      counts[label] = 0;
    }
    touched.length = 0;
  });
  return result;
}

/** The Kaggle score of one image. Crops lie inside a width x height image. */
export function scoreImage(truth: readonly CropMask[], predictions: readonly CropMask[], width: number, height: number): ImageScore {
  const realTruth = truth.filter((crop) => cropArea(crop) > 0);
  const realPredictions = predictions.filter((crop) => cropArea(crop) > 0);
  const truthCount = realTruth.length;
  const predictionCount = realPredictions.length;
  // Only pairs with IoU > 0.5 can ever match; best first.
  const candidates = overlaps(realTruth, realPredictions, width, height)
    .filter((pair) => 2 * pair.intersection > pair.union)
    .sort((a, b) => b.intersection * a.union - a.intersection * b.union || a.prediction - b.prediction || a.truth - b.truth);
  let matchedIoUSum = 0;
  const truePositives = iouThresholdsPercent.map((percent, level) => {
    const usedPrediction = new Set<number>();
    const usedTruth = new Set<number>();
    for (const pair of candidates) {
      if (100 * pair.intersection <= percent * pair.union) break; // sorted: no later pair passes either
      if (usedPrediction.has(pair.prediction) || usedTruth.has(pair.truth)) continue;
      usedPrediction.add(pair.prediction);
      usedTruth.add(pair.truth);
      if (level === 0) matchedIoUSum += pair.intersection / pair.union;
    }
    return usedPrediction.size;
  });
  const precisions = truePositives.map((tp) => {
    if (truthCount === 0 && predictionCount === 0) return 1;
    const falsePositives = predictionCount - tp;
    const falseNegatives = truthCount - tp;
    return tp / (tp + falsePositives + falseNegatives);
  });
  return { score: mean(precisions), precisions, truePositives, truthCount, predictionCount, matchedIoUSum };
}

/** The dataset score: the mean of the image scores (0 images -> NaN is not useful: throws instead). */
export function datasetScore(imageScores: readonly number[]): number {
  if (imageScores.length === 0) throw new Error('no images to score');
  return mean(imageScores);
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Calls `visit` with the image index (y * imageWidth + x) of every foreground pixel of the crop. */
function forEachPixel(crop: CropMask, imageWidth: number, visit: (pixel: number) => void): void {
  for (let y = 0; y < crop.height; y++) {
    const row = y * crop.width;
    const base = (crop.y + y) * imageWidth + crop.x;
    for (let x = 0; x < crop.width; x++) if (crop.data[row + x] !== 0) visit(base + x);
  }
}
