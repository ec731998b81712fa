// The per-ROI heads (torchvision's roi_heads.py): ROIAlign from p2..p5 (roi-align.ts), the box head and the mask
// head (heads.ts). Training samples ROIs from the proposals against the ground truth (detection-targets.ts) and
// returns the three head losses; inference refines the box head's output into detections (detect.ts) and runs
// the mask head on them. One part of MaskRcnn (mask-rcnn.ts).
import * as tf from '@tensorflow/tfjs';
import type { MaskRcnnConfig } from './config.js';
import { refineDetections, type RefinedDetections } from './detect.js';
import type { Pyramid } from './fpn.js';
import { boxHead, maskHead } from './heads.js';
import { boxRegressionLoss, maskLoss, selectClass, softmaxCrossEntropy } from './losses.js';
import type { TrainBatch } from './molding.js';
import type { ParameterStore } from './params.js';
import type { Proposals } from './proposals.js';
import type { ReadBack } from './read-back.js';
import { roiAlign, type RoiAlignImplementation } from './roi-align.js';
import type { Rng } from './sampler.js';
import { concatRois, headStepTargets } from './step-targets.js';

export interface RoiHeadLosses {
  loss_classifier: tf.Scalar;
  loss_box_reg: tf.Scalar;
  loss_mask: tf.Scalar;
}

/** One image's detections in the S x S frame, with the mask probabilities of each in its class ([n * M * M]). */
export interface FrameDetections extends RefinedDetections {
  maskProbs: Float32Array;
}

export class RoiHeads {
  constructor(
    private readonly store: ParameterStore,
    private readonly config: MaskRcnnConfig,
  ) {}

  /** Creates the heads' variables (box head, then mask head) with one pass on a single box of a 64 px input. */
  build(pyramid: Pyramid): void {
    const { config } = this;
    const box = new Float32Array([0, 0, 32, 32]);
    boxHead(this.store, this.pool(pyramid, box, new Int32Array(1), config.roi.poolSize, 'gather', 64), config.numClasses, config.box.fcDim, false);
    maskHead(this.store, this.pool(pyramid, box, new Int32Array(1), config.roi.maskPoolSize, 'gather', 64), config.numClasses, config.mask.headChannels, false);
  }

  /**
   * The head losses over the ROIs sampled from each image's proposals (Float32Array [n * 4] pixels) against its
   * ground truth, positives of each image first: classifier over every sampled ROI, box regression and mask over
   * the positives.
   */
  losses(pyramid: Pyramid, proposals: readonly Float32Array[], batch: TrainBatch, rng: Rng, trainingBn: boolean, implementation: RoiAlignImplementation): RoiHeadLosses {
    const { config } = this;
    const heads = headStepTargets(proposals, batch, config, rng);
    const head = boxHead(this.store, this.pool(pyramid, heads.rois, heads.batchIndex, config.roi.poolSize, implementation), config.numClasses, config.box.fcDim, trainingBn);
    const loss_classifier = softmaxCrossEntropy(head.classLogits, heads.classIds);

    const { positiveRows, positiveClasses } = heads;
    if (positiveRows.length === 0) return { loss_classifier, loss_box_reg: tf.scalar(0), loss_mask: tf.scalar(0) };
    const rows = tf.tensor1d(positiveRows, 'int32');
    const loss_box_reg = boxRegressionLoss(tf.gather(head.deltas, rows) as tf.Tensor3D, positiveClasses, heads.positiveDeltas);
    const positiveBoxes = new Float32Array(positiveRows.length * 4);
    positiveRows.forEach((row, i) => positiveBoxes.set(heads.rois.subarray(4 * row, 4 * row + 4), 4 * i));
    const pooled = this.pool(pyramid, positiveBoxes, Int32Array.from(positiveRows, (row) => heads.batchIndex[row]!), config.roi.maskPoolSize, implementation);
    const maskLogits = maskHead(this.store, pooled, config.numClasses, config.mask.headChannels, trainingBn);
    const loss_mask = maskLoss(maskLogits, positiveClasses, heads.positiveMasks);
    return { loss_classifier, loss_box_reg, loss_mask };
  }

  /**
   * Inference: the box head on every image's proposals (read back through `readBack`), refined per image inside
   * its window ([y1, x1, y2, x2] of the S x S frame), then the mask head on the detections (read back too).
   */
  async detect(pyramid: Pyramid, proposals: readonly Proposals[], windows: readonly (readonly [number, number, number, number])[], readBack: ReadBack): Promise<FrameDetections[]> {
    const { numClasses, detection, box } = this.config;
    const [probs, classDeltas] = await readBack.read(tf.tidy(() => {
      const head = this.classify(pyramid, proposals, readBack.roiAlign);
      return [head.probs, head.deltas];
    }));
    const found = rowsPerImage(proposals, probs!, classDeltas!, numClasses).map((rows, b) =>
      refineDetections(rows.rois, rows.probs, rows.deltas, numClasses, windows[b]!, { ...detection, bboxStdDev: box.bboxStdDev }));
    const withInstances = found.flatMap((f, b) => (f.scores.length > 0 ? [b] : []));
    const maskValues = await readBack.read(tf.tidy(() => withInstances.map((b) => this.maskProbs(pyramid, found[b]!, b, readBack.roiAlign))));
    return found.map((f, b) => {
      const k = withInstances.indexOf(b);
      return { ...f, maskProbs: k >= 0 ? maskValues[k]! : new Float32Array(0) };
    });
  }

  /** Box head on every image's proposals: class probabilities [N, C] and deltas [N, C, 4]. */
  private classify(pyramid: Pyramid, proposals: readonly Proposals[], implementation: RoiAlignImplementation): { probs: tf.Tensor2D; deltas: tf.Tensor3D } {
    const { config } = this;
    const { boxes, batchIndex } = concatRois(proposals.map((p) => p.boxes));
    const head = boxHead(this.store, this.pool(pyramid, boxes, batchIndex, config.roi.poolSize, implementation), config.numClasses, config.box.fcDim, false);
    return { probs: tf.softmax(head.classLogits), deltas: head.deltas };
  }

  /** Mask probabilities of image b's detections in their classes: [n, M, M]. */
  private maskProbs(pyramid: Pyramid, found: RefinedDetections, b: number, implementation: RoiAlignImplementation): tf.Tensor {
    const { config } = this;
    const count = found.scores.length;
    const pooled = this.pool(pyramid, found.boxes, new Int32Array(count).fill(b), config.roi.maskPoolSize, implementation);
    const logits = maskHead(this.store, pooled, config.numClasses, config.mask.headChannels, false); // [n, M, M, C]
    return tf.sigmoid(selectClass(logits.transpose([0, 3, 1, 2]), found.classIds));
  }

  /** ROIAlign of pixel boxes [N * 4] (image batchIndex [N]) from p2..p5: [N, poolSize, poolSize, C]. */
  private pool(
    pyramid: Pyramid,
    boxes: Float32Array,
    batchIndex: Int32Array,
    poolSize: number,
    implementation: RoiAlignImplementation,
    imageSize = this.config.image.size,
  ): tf.Tensor4D {
    const s = imageSize;
    const normalized = boxes.map((v) => v / s); // Float32Array: rounded as tf's float32 division would
    const [p2, p3, p4, p5] = pyramid;
    return roiAlign([p2, p3, p4, p5], normalized, batchIndex, poolSize, [s, s], implementation);
  }
}

/** Each image's proposals with its rows of the box head's probs [n * C] and deltas [n * C * 4]. */
function rowsPerImage(proposals: readonly Proposals[], probs: Float32Array, deltas: Float32Array, c: number): { rois: Float32Array; probs: Float32Array; deltas: Float32Array }[] {
  let offset = 0;
  return proposals.map(({ boxes }) => {
    const n = boxes.length / 4;
    const rows = { rois: boxes, probs: probs.subarray(offset * c, (offset + n) * c), deltas: deltas.subarray(offset * c * 4, (offset + n) * c * 4) };
    offset += n;
    return rows;
  });
}
