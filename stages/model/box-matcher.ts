// matchPredictions(iouMatrix(predictions, gt), ...) without the matrix. The RPN's targets match every anchor
// (65,472 at the recipe's 512 px) to every GT box: with 300 nuclei that is a 20M-entry matrix, ~170 ms an image
// here, the largest host cost left in a GPU training step on crowded images once NMS was fast (docs/backend.md). An IoU is positive only
// where the boxes overlap, so only the GT boxes sharing a grid cell with a prediction (box-grid.ts) are measured;
// every other entry of the matrix is 0, and the matcher's rules (matcher.ts) are applied as if it were there:
// the same float32 IoU values, the same first-best GT on ties, the same low-quality matches. Boxes with a
// non-finite coordinate take the dense path.
import { BoxGrid } from './box-grid.js';
import { boxAreas, iouMatrix } from './iou.js';
import { ignoredMatch, matchPredictions, negativeMatch, type MatcherOptions } from './matcher.js';

/** predictions [N * 4], gt [G * 4], pixels [y1, x1, y2, x2]: per prediction its GT index, negativeMatch or ignoredMatch. */
export function matchBoxes(predictions: Float32Array, gt: Float32Array, options: MatcherOptions): Int32Array {
  const n = predictions.length / 4;
  const g = gt.length / 4;
  if (g === 0 || !predictions.every(Number.isFinite) || !gt.every(Number.isFinite)) return matchPredictions(iouMatrix(predictions, gt), n, g, options);
  // iouMatrix's corners as given (no swap): a box with y2 <= y1 or x2 <= x1 overlaps nothing.
  const sides = { ymin: new Float64Array(g), xmin: new Float64Array(g), ymax: new Float64Array(g), xmax: new Float64Array(g) };
  const members: number[] = [];
  for (let j = 0; j < g; j++) {
    sides.ymin[j] = gt[4 * j]!;
    sides.xmin[j] = gt[4 * j + 1]!;
    sides.ymax[j] = gt[4 * j + 2]!;
    sides.xmax[j] = gt[4 * j + 3]!;
    if (sides.ymax[j]! > sides.ymin[j]! && sides.xmax[j]! > sides.xmin[j]!) members.push(j);
  }
  const grid = new BoxGrid(sides, members);
  for (const j of members) grid.add(j);
  const areasGt = boxAreas(gt);

  // Pass 1: each prediction's positive IoUs (sparse), its best GT, and each GT's best IoU.
  const start = new Int32Array(n + 1);
  const pairGt: number[] = [];
  const pairIou: number[] = [];
  const bestGt = new Int32Array(n);
  const best = new Float32Array(n);
  const bestPerGt = new Float32Array(g);
  const seen = new Int32Array(g).fill(-1);
  for (let i = 0; i < n; i++) {
    start[i] = pairGt.length;
    const y1 = predictions[4 * i]!, x1 = predictions[4 * i + 1]!, y2 = predictions[4 * i + 2]!, x2 = predictions[4 * i + 3]!;
    if (y2 > y1 && x2 > x1) {
      const area = Math.max(0, y2 - y1) * Math.max(0, x2 - x1);
      grid.visit(y1, x1, y2, x2, (j) => {
        if (seen[j] === i) return false;
        seen[j] = i;
        // iouMatrix's arithmetic, operation for operation.
        const ih = Math.min(y2, gt[4 * j + 2]!) - Math.max(y1, gt[4 * j]!);
        if (ih <= 0) return false;
        const iw = Math.min(x2, gt[4 * j + 3]!) - Math.max(x1, gt[4 * j + 1]!);
        if (iw <= 0) return false;
        const intersection = ih * iw;
        const value = Math.fround(intersection / (area + areasGt[j]! - intersection)); // stored as float32 there
        pairGt.push(j);
        pairIou.push(value);
        // The dense loop's strict > over ascending GT indices: the first of equal bests.
        if (value > best[i]! || (value === best[i]! && value > 0 && j < bestGt[i]!)) {
          best[i] = value;
          bestGt[i] = j;
        }
        if (value > bestPerGt[j]!) bestPerGt[j] = value;
        return false;
      });
    }
  }
  start[n] = pairGt.length;

  // Pass 2: the matcher's rules on those values (every other IoU is 0).
  const matches = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const value = best[i]!;
    matches[i] = value >= options.fgIouThresh ? bestGt[i]! : value >= options.bgIouThresh ? ignoredMatch : negativeMatch;
    if (!options.allowLowQualityMatches) continue;
    for (let k = start[i]!; k < start[i + 1]!; k++) {
      if (pairIou[k]! > 0 && pairIou[k] === bestPerGt[pairGt[k]!]) {
        matches[i] = bestGt[i]!;
        break;
      }
    }
  }
  return matches;
}
