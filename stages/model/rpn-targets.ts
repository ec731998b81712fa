// What the RPN should predict for one image (Matterport's build_rpn_targets): anchors are matched to GT boxes
// (IoU >= 0.7 positive, < 0.3 negative, every GT's best anchors positive), then `batchSizePerImage` anchors are
// sampled, at most half of them positive; positives also get box-delta targets from their matched GT box.
// Everything here is plain arrays: targets are constants of the training step.
import { encodeBoxes, type StdDev } from './box-coder.js';
import { matchBoxes } from './box-matcher.js';
import { sampleBalanced, type Rng } from './sampler.js';

export interface RpnTargetOptions {
  batchSizePerImage: number;
  positiveFraction: number;
  fgIouThresh: number;
  bgIouThresh: number;
  bboxStdDev: StdDev;
}

export interface RpnTargets {
  /** Anchor indices the objectness loss sees: Int32Array [K], positives first. */
  sampledAnchors: Int32Array;
  /** 1 = object, 0 = background, per sampled anchor: Int32Array [K]. */
  sampledLabels: Int32Array;
  /** The positive anchors (a prefix of sampledAnchors): Int32Array [P]. */
  positiveAnchors: Int32Array;
  /** Their regression targets (already / bboxStdDev): Float32Array [P * 4]. */
  positiveDeltas: Float32Array;
}

/** anchors Float32Array [A * 4], gtBoxes Float32Array [G * 4], both pixels [y1, x1, y2, x2]. */
export function rpnTargets(anchors: Float32Array, gtBoxes: Float32Array, options: RpnTargetOptions, rng: Rng): RpnTargets {
  const numAnchors = anchors.length / 4;
  const numGt = gtBoxes.length / 4;
  const matches = matchBoxes(anchors, gtBoxes, {
    fgIouThresh: options.fgIouThresh,
    bgIouThresh: options.bgIouThresh,
    allowLowQualityMatches: true,
  });
  const { positives, negatives } = sampleBalanced(matches, options.batchSizePerImage, options.positiveFraction, rng);
  const sampledAnchors = new Int32Array(positives.length + negatives.length);
  sampledAnchors.set(positives, 0);
  sampledAnchors.set(negatives, positives.length);
  const sampledLabels = new Int32Array(sampledAnchors.length);
  sampledLabels.fill(1, 0, positives.length);

  const references = new Float32Array(positives.length * 4);
  const matched = new Float32Array(positives.length * 4);
  positives.forEach((anchor, i) => {
    const gt = matches[anchor]!;
    references.set(anchors.subarray(4 * anchor, 4 * anchor + 4), 4 * i);
    matched.set(gtBoxes.subarray(4 * gt, 4 * gt + 4), 4 * i);
  });
  return {
    sampledAnchors,
    sampledLabels,
    positiveAnchors: positives,
    positiveDeltas: encodeBoxes(references, matched, options.bboxStdDev),
  };
}
