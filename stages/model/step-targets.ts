// What one training step's losses are measured against, as plain arrays: the RPN's sampled anchors (labels and
// box targets) from the ground truth alone, and the heads' sampled ROIs (classes, box and mask targets) from the
// ground truth and the proposals (read back in the middle of the forward pass). The losses are built from these
// constants, so no gradient flows through them (Matterport's stop_gradient on targets and ROIs).
//
// The sampler's RNG is consumed in one fixed order: the RPN targets of every image (rpn.ts), then the detection
// targets of every image (roi-heads.ts), so a seed samples the same anchors and ROIs whatever the read-back.
import type { MaskRcnnConfig } from './config.js';
import { detectionTargets } from './detection-targets.js';
import type { TrainBatch } from './molding.js';
import { rpnTargets } from './rpn-targets.js';
import type { Rng } from './sampler.js';

/** The RPN's targets over the whole batch, rows of the flattened [B * A] anchor axis. */
export interface RpnStepTargets {
  /** Rows the objectness loss sees: Int32Array [K]. */
  sampledRows: Int32Array;
  /** 1 = object, 0 = background: Int32Array [K]. */
  sampledLabels: Int32Array;
  /** Rows of the positive anchors: Int32Array [P]. */
  positiveRows: Int32Array;
  /** Their box targets (already / bboxStdDev): Float32Array [P * 4]. */
  positiveDeltas: Float32Array;
}

/** The heads' targets over the whole batch: every image's sampled ROIs, positives of each image first. */
export interface HeadStepTargets {
  /** Float32Array [R * 4] pixels [y1, x1, y2, x2]. */
  rois: Float32Array;
  /** Image of each ROI: Int32Array [R]. */
  batchIndex: Int32Array;
  /** Class of each ROI (0 = background): Int32Array [R]. */
  classIds: Int32Array;
  /** Rows of the positive ROIs in `rois`: Int32Array [P]. */
  positiveRows: Int32Array;
  /** Their classes: Int32Array [P]. */
  positiveClasses: Int32Array;
  /** Their box targets (already / bboxStdDev): Float32Array [P * 4]. */
  positiveDeltas: Float32Array;
  /** Their mask targets, 0/1: Float32Array [P * M * M]. */
  positiveMasks: Float32Array;
}

export interface StepTargets {
  rpn: RpnStepTargets;
  heads: HeadStepTargets;
}

/** Checks the batch's ground truth lists match its images. */
export function checkGroundTruth(batch: TrainBatch): void {
  const batchSize = batch.images.shape[0];
  if (batch.gtBoxes.length !== batchSize || batch.gtMasks.length !== batchSize || batch.gtClassIds.length !== batchSize) {
    throw new Error(`mask-rcnn: ${batchSize} images but ground truth for ${batch.gtBoxes.length}/${batch.gtMasks.length}/${batch.gtClassIds.length}`);
  }
}

/** anchors Float32Array [A * 4] pixels; one rpnTargets per image, in image order. */
export function rpnStepTargets(anchors: Float32Array, gtBoxes: readonly Float32Array[], config: MaskRcnnConfig, rng: Rng): RpnStepTargets {
  const numAnchors = anchors.length / 4;
  const sampled: number[] = [];
  const labels: number[] = [];
  const positive: number[] = [];
  const positiveDeltas: number[] = [];
  gtBoxes.forEach((boxes, b) => {
    const t = rpnTargets(anchors, boxes, config.rpn, rng);
    t.sampledAnchors.forEach((a, i) => { sampled.push(b * numAnchors + a); labels.push(t.sampledLabels[i]!); });
    t.positiveAnchors.forEach((a) => positive.push(b * numAnchors + a));
    positiveDeltas.push(...t.positiveDeltas);
  });
  return {
    sampledRows: Int32Array.from(sampled),
    sampledLabels: Int32Array.from(labels),
    positiveRows: Int32Array.from(positive),
    positiveDeltas: Float32Array.from(positiveDeltas),
  };
}

/** proposals: per image Float32Array [n * 4] pixels; one detectionTargets per image, in image order. */
export function headStepTargets(proposals: readonly Float32Array[], batch: TrainBatch, config: MaskRcnnConfig, rng: Rng): HeadStepTargets {
  const options = {
    ...config.roi, bboxStdDev: config.box.bboxStdDev, maskSize: config.mask.outputSize, miniMaskSize: config.image.miniMaskSize,
  };
  const targets = proposals.map((boxes, b) => detectionTargets(boxes, {
    boxes: batch.gtBoxes[b]!, classIds: batch.gtClassIds[b]!, miniMasks: batch.gtMasks[b]!,
  }, options, rng));
  const { boxes: rois, batchIndex } = concatRois(targets.map((t) => t.rois));
  const positiveRows: number[] = [];
  let offset = 0;
  for (const t of targets) {
    for (let i = 0; i < t.numPositive; i++) positiveRows.push(offset + i);
    offset += t.classIds.length;
  }
  return {
    rois,
    batchIndex,
    classIds: concatInt(targets.map((t) => t.classIds)),
    positiveRows: Int32Array.from(positiveRows),
    positiveClasses: concatInt(targets.map((t) => t.classIds.subarray(0, t.numPositive))),
    positiveDeltas: concatFloat(targets.map((t) => t.deltas)),
    positiveMasks: concatFloat(targets.map((t) => t.masks)),
  };
}

/** Per-image boxes -> one Float32Array [N * 4] and the image index of each box, Int32Array [N]. */
export function concatRois(perImage: readonly Float32Array[]): { boxes: Float32Array; batchIndex: Int32Array } {
  const boxes = concatFloat(perImage);
  const batchIndex = new Int32Array(boxes.length / 4);
  let offset = 0;
  perImage.forEach((b, image) => {
    batchIndex.fill(image, offset, offset + b.length / 4);
    offset += b.length / 4;
  });
  return { boxes, batchIndex };
}

function concatFloat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

function concatInt(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}
