// What the box and mask heads should predict for one image (Matterport's detection_targets_graph, torchvision's
// select_training_samples): proposals are matched to GT boxes (IoU >= 0.5 positive, else negative), then
// `batchSizePerImage` ROIs are sampled with at most `positiveFraction` positives (negatives fill the rest).
// Positives get their GT's class, box-delta targets, and a mask target: the GT's mini-mask cut by the ROI and
// resampled to maskSize x maskSize, thresholded at 0.5. Pixel-centre convention: ROI output pixel i covers
// [y1 + i*h/M, y1 + (i+1)*h/M), mini-mask pixel k covers the k-th of m equal rows of the GT box.
import { encodeBoxes, type StdDev } from './box-coder.js';
import { matchBoxes } from './box-matcher.js';
import { sampleBilinearClamped } from './paste-masks.js';
import { sampleBalanced, type Rng } from './sampler.js';

export interface DetectionTargetOptions {
  batchSizePerImage: number;
  positiveFraction: number;
  fgIouThresh: number;
  bboxStdDev: StdDev;
  /** Side of the mask targets (the mask head's output, 28). */
  maskSize: number;
  /** Side of the stored GT mini-masks (56). */
  miniMaskSize: number;
  addGtAsProposals: boolean;
}

export interface ImageGroundTruth {
  /** Float32Array [G * 4] pixels [y1, x1, y2, x2] in the network input frame. */
  boxes: Float32Array;
  /** Int32Array [G], >= 1. */
  classIds: Int32Array;
  /** Uint8Array [G * m * m] 0/1 mini-masks, each the instance cropped to its box and resized to m x m. */
  miniMasks: Uint8Array;
}

export interface DetectionTargets {
  /** Sampled ROIs, positives first: Float32Array [R * 4] pixels. */
  rois: Float32Array;
  /** Class of each ROI (0 = background): Int32Array [R]. */
  classIds: Int32Array;
  /** Number of positive ROIs P (the first P of rois). */
  numPositive: number;
  /** Box targets of the positives (already / bboxStdDev): Float32Array [P * 4]. */
  deltas: Float32Array;
  /** Mask targets of the positives, 0/1: Float32Array [P * maskSize * maskSize]. */
  masks: Float32Array;
}

/** proposals: Float32Array [n * 4] pixels. */
export function detectionTargets(proposals: Float32Array, gt: ImageGroundTruth, options: DetectionTargetOptions, rng: Rng): DetectionTargets {
  const numGt = gt.classIds.length;
  const m = options.miniMaskSize;
  if (gt.boxes.length !== numGt * 4 || gt.miniMasks.length !== numGt * m * m) {
    throw new Error(`detection targets: ${numGt} GT classes but ${gt.boxes.length / 4} boxes and ${gt.miniMasks.length / (m * m)} mini-masks`);
  }
  let candidates = proposals;
  if (options.addGtAsProposals && numGt > 0) {
    candidates = new Float32Array(proposals.length + gt.boxes.length);
    candidates.set(proposals, 0);
    candidates.set(gt.boxes, proposals.length);
  }
  const numCandidates = candidates.length / 4;
  const matches = matchBoxes(candidates, gt.boxes, {
    fgIouThresh: options.fgIouThresh,
    bgIouThresh: options.fgIouThresh,
    allowLowQualityMatches: false,
  });
  const { positives, negatives } = sampleBalanced(matches, options.batchSizePerImage, options.positiveFraction, rng);
  const numPositive = positives.length;
  const count = numPositive + negatives.length;
  const rois = new Float32Array(count * 4);
  const classIds = new Int32Array(count);
  const matchedGt = new Float32Array(numPositive * 4);
  const size = options.maskSize;
  const masks = new Float32Array(numPositive * size * size);
  [...positives, ...negatives].forEach((candidate, i) => rois.set(candidates.subarray(4 * candidate, 4 * candidate + 4), 4 * i));
  positives.forEach((candidate, i) => {
    const g = matches[candidate]!;
    classIds[i] = gt.classIds[g]!;
    matchedGt.set(gt.boxes.subarray(4 * g, 4 * g + 4), 4 * i);
    const target = maskTarget(rois.subarray(4 * i, 4 * i + 4), gt.boxes.subarray(4 * g, 4 * g + 4), gt.miniMasks.subarray(g * m * m, (g + 1) * m * m), m, size);
    masks.set(target, i * size * size);
  });
  return {
    rois,
    classIds,
    numPositive,
    deltas: encodeBoxes(rois.subarray(0, numPositive * 4), matchedGt, options.bboxStdDev),
    masks,
  };
}

/** The GT mini-mask [m * m] (covering gtBox) seen through `roi`, resampled to size x size and thresholded. */
export function maskTarget(roi: Float32Array, gtBox: Float32Array, miniMask: Uint8Array, m: number, size: number): Float32Array {
  const out = new Float32Array(size * size);
  const [ry1, rx1, ry2, rx2] = [roi[0]!, roi[1]!, roi[2]!, roi[3]!];
  const [gy1, gx1, gy2, gx2] = [gtBox[0]!, gtBox[1]!, gtBox[2]!, gtBox[3]!];
  const gh = gy2 - gy1;
  const gw = gx2 - gx1;
  if (gh <= 0 || gw <= 0) return out;
  for (let i = 0; i < size; i++) {
    const py = ry1 + ((i + 0.5) / size) * (ry2 - ry1);
    if (py < gy1 || py > gy2) continue;
    const u = ((py - gy1) / gh) * m - 0.5;
    for (let j = 0; j < size; j++) {
      const px = rx1 + ((j + 0.5) / size) * (rx2 - rx1);
      if (px < gx1 || px > gx2) continue;
      const v = ((px - gx1) / gw) * m - 0.5;
      out[i * size + j] = sampleBilinearClamped(miniMask, m, m, u, v) >= 0.5 ? 1 : 0;
    }
  }
  return out;
}
