// Greedy non-maximum suppression, the same selection as tf.image.nonMaxSuppression (tfjs-core's
// nonMaxSuppressionV3Impl, which the cpu and webgpu backends run on the host) without its cost: that one checks
// each candidate against every box kept so far through a function that allocates two subarrays per pair. On the
// lent H100 the recipe's proposals (6,000 boxes an image, up to 2,000 kept) spent ~0.5 s an image there, most of
// a training step (a CPU profile of the recipe's run on an H100, bench/device/cpu-profile-top.ts).
//
// Here a candidate is checked only against kept boxes that share a cell of a uniform grid with it (box-grid.ts):
// for an IoU threshold t > 0, IoU >= t needs a positive intersection, so boxes in no common cell can never
// suppress each other. The IoU itself is computed with the same float64 operations in the same order as tfjs' (its
// intersectionOverUnion), so each comparison with the threshold, and therefore the kept list, is the same: by
// descending score, equal scores by ascending index, boxes with a NaN score or a -Infinity one never kept, at most
// maxOutput of them. Inputs tfjs would treat in its NaN-propagating ways (a non-finite coordinate) go to tfjs'
// own implementation; so does a threshold of 0, where every pair suppresses (grid or not, one box is kept).
import { BoxGrid, boxSides } from './box-grid.js';

/** Boxes [N * 4] as [y1, x1, y2, x2] (either corner order), scores [N]: the kept indices, best first. */
export function greedyNms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, maxOutput: number, fallback: () => Int32Array): Int32Array {
  const n = scores.length;
  if (!(iouThreshold > 0) || !boxes.every(Number.isFinite)) return fallback();
  const order = candidatesByScore(scores);
  const { ymin, xmin, ymax, xmax } = boxSides(boxes);
  const area = new Float64Array(n);
  for (let i = 0; i < n; i++) area[i] = (ymax[i]! - ymin[i]!) * (xmax[i]! - xmin[i]!);
  const grid = new BoxGrid({ ymin, xmin, ymax, xmax }, Array.from(order).filter((i) => area[i]! > 0));
  const kept: number[] = [];
  const seen = new Int32Array(n).fill(-1); // the candidate that last compared against each kept box
  for (let c = 0; c < order.length && kept.length < maxOutput; c++) {
    const i = order[c]!;
    // A box of no area has IoU 0 with everything (tfjs' rule): never suppressed, never suppressing.
    if (!(area[i]! > 0)) {
      kept.push(i);
      continue;
    }
    let suppressed = false;
    grid.visit(ymin[i]!, xmin[i]!, ymax[i]!, xmax[i]!, (j) => {
      if (seen[j] === c) return false;
      seen[j] = c;
      // tfjs' intersectionOverUnion(boxes, candidate, kept), operation for operation.
      const intersection = Math.max(Math.min(ymax[i]!, ymax[j]!) - Math.max(ymin[i]!, ymin[j]!), 0.0) *
        Math.max(Math.min(xmax[i]!, xmax[j]!) - Math.max(xmin[i]!, xmin[j]!), 0.0);
      suppressed = intersection / (area[i]! + area[j]! - intersection) >= iouThreshold;
      return suppressed;
    });
    if (suppressed) continue;
    kept.push(i);
    grid.add(i);
  }
  return Int32Array.from(kept);
}

/** Indices of the boxes tfjs would consider (score > -Infinity: not NaN), by descending score, ties by index. */
function candidatesByScore(scores: Float32Array): Int32Array {
  const indices: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i]! > Number.NEGATIVE_INFINITY) indices.push(i);
  // Infinity - Infinity is NaN, which || treats as a tie: by index, as tfjs' comparator does.
  indices.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return Int32Array.from(indices);
}
