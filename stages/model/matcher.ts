// Assigns each prediction (anchor or proposal) to a ground-truth box by IoU (torchvision's Matcher; Matterport's
// build_rpn_targets and detection_targets_graph follow the same rules):
//   best IoU >= fgIouThresh              -> matched to its argmax GT (positive)
//   best IoU <  bgIouThresh              -> negative (-1)
//   otherwise                            -> ignored (-2)
//   allowLowQualityMatches: every GT's best predictions (all ties, IoU > 0) are positive too, matched to their own
//   argmax GT — so no GT box is left without an anchor.

export const negativeMatch = -1;
export const ignoredMatch = -2;

export interface MatcherOptions {
  fgIouThresh: number;
  bgIouThresh: number;
  allowLowQualityMatches: boolean;
}

/**
 * iou: Float32Array [numPredictions * numGt] (iouMatrix(predictions, gt)).
 * Returns Int32Array [numPredictions]: the matched GT index, negativeMatch or ignoredMatch.
 * With no GT at all every prediction is negative.
 */
export function matchPredictions(iou: Float32Array, numPredictions: number, numGt: number, options: MatcherOptions): Int32Array {
  if (iou.length !== numPredictions * numGt) {
    throw new Error(`matcher: IoU matrix has ${iou.length} entries, expected ${numPredictions} x ${numGt}`);
  }
  const matches = new Int32Array(numPredictions).fill(negativeMatch);
  if (numGt === 0) return matches;
  const bestGt = new Int32Array(numPredictions);
  const bestPerGt = new Float32Array(numGt);
  for (let i = 0; i < numPredictions; i++) {
    let best = -1;
    let arg = 0;
    for (let j = 0; j < numGt; j++) {
      const value = iou[i * numGt + j]!;
      if (value > best) {
        best = value;
        arg = j;
      }
      if (value > bestPerGt[j]!) bestPerGt[j] = value;
    }
    bestGt[i] = arg;
    if (best >= options.fgIouThresh) matches[i] = arg;
    else if (best >= options.bgIouThresh) matches[i] = ignoredMatch;
  }
  if (options.allowLowQualityMatches) {
    for (let i = 0; i < numPredictions; i++) {
      for (let j = 0; j < numGt; j++) {
        const value = iou[i * numGt + j]!;
        if (value > 0 && value === bestPerGt[j]) {
          matches[i] = bestGt[i]!;
          break;
        }
      }
    }
  }
  return matches;
}
