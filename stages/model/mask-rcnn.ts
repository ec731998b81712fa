// The Mask R-CNN, composed from its parts (no logic of its own beyond wiring; torchvision's generalized_rcnn):
//
//   images [B, S, S, 3] -> backbone c2..c5 -> FPN p2..p6 -> RPN head (logits [B, A, 2], deltas [B, A, 4])
//     training:  RPN targets (anchors x GT) ........................ loss_objectness, loss_rpn_box_reg
//                proposals (top-k, decode, clip, NMS; constants) -> detection targets (sampled ROIs)
//                ROIAlign 7x7 -> box head ................................ loss_classifier, loss_box_reg
//                positive ROIs: ROIAlign 14x14 -> mask head -> 28x28 ............................ loss_mask
//                L2 on decayed weights ........................................... loss_weight_decay
//     inference: proposals -> box head -> refineDetections -> mask head on the detections -> unmold
//
// Targets and proposals are plain arrays (read back once per step), so no gradient can flow through them.
import * as tf from '@tensorflow/tfjs';
import { anchorSpec, pyramidAnchors } from './anchors.js';
import { resnetFeatures } from './backbone.js';
import { anchorsPerLocation, type MaskRcnnConfig } from './config.js';
import { refineDetections } from './detect.js';
import { detectionTargets, type DetectionTargets } from './detection-targets.js';
import { fpn, type Pyramid } from './fpn.js';
import { boxHead, maskHead } from './heads.js';
import {
  boxRegressionLoss, lossNames, maskLoss, selectClass, smoothL1, softmaxCrossEntropy, weightDecayLoss,
  type Losses, type LossTensors,
} from './losses.js';
import { moldImage, unmoldBoxes, unmoldMasks, type ImageMeta, type TrainBatch } from './molding.js';
import { ParameterStore } from './params.js';
import { leanVariableGrads } from './lean-gradients.js';
import { generateProposals, type Proposals } from './proposals.js';
import { roiAlign } from './roi-align.js';
import { rpnHead } from './rpn-head.js';
import { rpnTargets } from './rpn-targets.js';
import { seededRng, type Rng } from './sampler.js';
import type { Image8 } from '../imaging/dataset.js';

export type { Losses } from './losses.js';
export type { TrainBatch, ImageMeta } from './molding.js';

/** What trainStep needs of an optimizer (stages/train/amsgrad.ts fits): gradients and variables by store name. */
export interface GradientApplier {
  applyGradients(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>): void;
}

/** One image's instances, at the original image size. */
export interface Detection {
  /** Float32Array [n * 4], [y1, x1, y2, x2] pixels of the original image. */
  boxes: Float32Array;
  /** Float32Array [n], descending. */
  scores: Float32Array;
  /** Int32Array [n] (1 = nucleus). */
  classIds: Int32Array;
  /** One binary mask per instance, Uint8Array [H * W] row-major (threshold config.detection.maskThreshold). */
  masks: Uint8Array[];
}

export class MaskRcnn {
  readonly config: MaskRcnnConfig;
  readonly store: ParameterStore;
  private readonly anchors: Float32Array;
  private anchorsTensor: tf.Tensor2D | undefined;
  private readonly rng: Rng;
  private built = false;

  constructor(config: MaskRcnnConfig, store?: ParameterStore) {
    this.config = config;
    this.store = store ?? new ParameterStore(config.seed);
    this.anchors = pyramidAnchors(anchorSpec(config));
    this.rng = seededRng(`${config.seed}/sampling`);
  }

  /**
   * One optimizer step on the trainable variables: every loss in one gradient closure, gradients clipped to
   * config.train.clipNorm by their global norm, then optimizer.applyGradients. Returns the losses before the step.
   */
  trainStep(optimizer: GradientApplier, batch: TrainBatch): Losses {
    this.build();
    const variables = this.store.trainableVariables();
    return tidyValue(() => {
      let parts: LossTensors | undefined;
      // leanVariableGrads: tf.variableGrads' arithmetic, freeing activations and gradients during backprop.
      const { grads } = leanVariableGrads(() => {
        parts = this.lossTensors(batch, this.config.backbone.trainBatchNorm);
        for (const name of lossNames) tf.keep(parts[name]);
        return tf.addN(lossNames.map((name) => parts![name])) as tf.Scalar;
      }, variables);
      const byStoreName: Record<string, tf.Tensor> = {};
      const variablesByName: Record<string, tf.Variable> = {};
      const clipScale = this.clipScale(Object.values(grads));
      for (const variable of variables) {
        const grad = grads[variable.name];
        const name = this.store.nameOf(variable);
        if (!grad || name === undefined) continue;
        byStoreName[name] = clipScale === 1 ? grad : grad.mul(clipScale);
        variablesByName[name] = variable;
      }
      const losses = readLosses(parts!);
      for (const name of lossNames) parts![name].dispose();
      optimizer.applyGradients(byStoreName, variablesByName);
      return losses;
    });
  }

  /** The same losses without a step (validation loss; batch-norm frozen). */
  losses(batch: TrainBatch): Losses {
    this.build();
    return tidyValue(() => readLosses(this.lossTensors(batch, false)));
  }

  /**
   * images [B, S, S, 3] (molded), metas: where each original image lies in its input. Returns per image the
   * instances at the original image size.
   */
  detect(images: tf.Tensor4D, metas: ImageMeta[]): Detection[] {
    const { config } = this;
    this.checkImages(images, metas.length);
    this.build();
    return tidyValue(() => {
      const { pyramid, logits, deltas } = this.trunk(images, false);
      const proposals = this.proposals(logits, deltas, config.rpn.postNmsTopNTest);
      const { boxes: roiBoxes, batchIndex } = concatRois(proposals.map((p) => p.boxes));
      const head = boxHead(this.store, this.pool(pyramid, roiBoxes, batchIndex, config.roi.poolSize), config.numClasses, config.box.fcDim, false);
      const probs = tf.softmax(head.classLogits).dataSync() as Float32Array; // [N * C]
      const classDeltas = head.deltas.dataSync() as Float32Array; // [N * C * 4]
      const c = config.numClasses;
      let offset = 0;
      return proposals.map((proposal, b) => {
        const n = proposal.boxes.length / 4;
        const meta = metas[b]!;
        const found = refineDetections(
          proposal.boxes, probs.subarray(offset * c, (offset + n) * c), classDeltas.subarray(offset * c * 4, (offset + n) * c * 4),
          c, meta.window, { ...config.detection, bboxStdDev: config.box.bboxStdDev },
        );
        offset += n;
        const count = found.scores.length;
        let maskProbs: Float32Array = new Float32Array(0);
        if (count > 0) {
          const pooled = this.pool(pyramid, found.boxes, new Int32Array(count).fill(b), config.roi.maskPoolSize);
          const logits = maskHead(this.store, pooled, c, config.mask.headChannels, false); // [n, M, M, C]
          maskProbs = tf.sigmoid(selectClass(logits.transpose([0, 3, 1, 2]), found.classIds)).dataSync() as Float32Array;
        }
        return {
          boxes: unmoldBoxes(found.boxes, meta),
          scores: found.scores,
          classIds: found.classIds,
          masks: unmoldMasks(found.boxes, maskProbs, config.mask.outputSize, meta, config.detection.maskThreshold),
        };
      });
    });
  }

  /** Molds original images and detects: the whole inference path for images as they are read. */
  detectImages(images: Image8[]): Detection[] {
    const s = this.config.image.size;
    const molded = images.map((image) => moldImage(image, s, this.config.image.meanPixel));
    const batch = new Float32Array(images.length * s * s * 3);
    molded.forEach((m, i) => batch.set(m.pixels, i * s * s * 3));
    const input = tf.tensor4d(batch, [images.length, s, s, 3]);
    try {
      return this.detect(input, molded.map((m) => m.meta));
    } finally {
      input.dispose();
    }
  }

  dispose(): void {
    this.anchorsTensor?.dispose();
    this.anchorsTensor = undefined;
    this.store.dispose();
  }

  /**
   * Creates every variable (layers create theirs on first use) with one forward pass on a tiny blank input, so
   * the variables exist before the first gradient closure or a checkpoint load. Idempotent and cheap.
   */
  build(): void {
    if (this.built) return;
    const { config } = this;
    tf.tidy(() => {
      const features = resnetFeatures(this.store, tf.zeros([1, 64, 64, 3]), config.backbone.name, false);
      const pyramid = fpn(this.store, features, config.backbone.fpnChannels);
      rpnHead(this.store, pyramid, anchorsPerLocation(config), config.rpn.headChannels, config.rpn.anchorStride);
      const box = new Float32Array([0, 0, 32, 32]);
      boxHead(this.store, this.pool(pyramid, box, new Int32Array(1), config.roi.poolSize, 64), config.numClasses, config.box.fcDim, false);
      maskHead(this.store, this.pool(pyramid, box, new Int32Array(1), config.roi.maskPoolSize, 64), config.numClasses, config.mask.headChannels, false);
    });
    this.built = true;
  }

  /** Backbone, FPN and RPN head. */
  private trunk(images: tf.Tensor4D, training: boolean): { pyramid: Pyramid; logits: tf.Tensor3D; deltas: tf.Tensor3D } {
    const { config } = this;
    const features = resnetFeatures(this.store, images, config.backbone.name, training);
    const pyramid = fpn(this.store, features, config.backbone.fpnChannels);
    const { logits, deltas } = rpnHead(this.store, pyramid, anchorsPerLocation(config), config.rpn.headChannels, config.rpn.anchorStride);
    if (logits.shape[1] !== this.anchors.length / 4) {
      throw new Error(`mask-rcnn: the RPN head predicts ${logits.shape[1]} anchors per image, anchors.ts made ${this.anchors.length / 4}`);
    }
    return { pyramid, logits, deltas };
  }

  private lossTensors(batch: TrainBatch, trainingBn: boolean): LossTensors {
    const { config } = this;
    const batchSize = batch.images.shape[0];
    this.checkImages(batch.images, batchSize);
    if (batch.gtBoxes.length !== batchSize || batch.gtMasks.length !== batchSize || batch.gtClassIds.length !== batchSize) {
      throw new Error(`mask-rcnn: ${batchSize} images but ground truth for ${batch.gtBoxes.length}/${batch.gtMasks.length}/${batch.gtClassIds.length}`);
    }
    const { pyramid, logits, deltas } = this.trunk(batch.images, trainingBn);
    const numAnchors = this.anchors.length / 4;

    // RPN losses over the sampled anchors of every image (flattened to [B * A] rows).
    const sampled: number[] = [];
    const labels: number[] = [];
    const positive: number[] = [];
    const positiveDeltas: number[] = [];
    for (let b = 0; b < batchSize; b++) {
      const t = rpnTargets(this.anchors, batch.gtBoxes[b]!, config.rpn, this.rng);
      t.sampledAnchors.forEach((a, i) => { sampled.push(b * numAnchors + a); labels.push(t.sampledLabels[i]!); });
      t.positiveAnchors.forEach((a) => positive.push(b * numAnchors + a));
      positiveDeltas.push(...t.positiveDeltas);
    }
    const flatLogits = logits.reshape([batchSize * numAnchors, 2]) as tf.Tensor2D;
    const flatDeltas = deltas.reshape([batchSize * numAnchors, 4]) as tf.Tensor2D;
    const loss_objectness = softmaxCrossEntropy(tf.gather(flatLogits, tf.tensor1d(sampled, 'int32')), Int32Array.from(labels));
    const loss_rpn_box_reg = positive.length === 0 ? tf.scalar(0) : smoothL1(tf.gather(flatDeltas, tf.tensor1d(positive, 'int32')), tf.tensor2d(positiveDeltas, [positive.length, 4]));

    // Head losses over the sampled ROIs of every image, positives of each image first.
    const proposals = this.proposals(logits, deltas, config.rpn.postNmsTopNTrain);
    const targets: DetectionTargets[] = proposals.map((p, b) => detectionTargets(p.boxes, {
      boxes: batch.gtBoxes[b]!, classIds: batch.gtClassIds[b]!, miniMasks: batch.gtMasks[b]!,
    }, {
      ...config.roi, bboxStdDev: config.box.bboxStdDev, maskSize: config.mask.outputSize, miniMaskSize: config.image.miniMaskSize,
    }, this.rng));
    const { boxes: rois, batchIndex } = concatRois(targets.map((t) => t.rois));
    const head = boxHead(this.store, this.pool(pyramid, rois, batchIndex, config.roi.poolSize), config.numClasses, config.box.fcDim, trainingBn);
    const loss_classifier = softmaxCrossEntropy(head.classLogits, concatInt(targets.map((t) => t.classIds)));

    // Rows of the positive ROIs in the concatenation, their classes, box and mask targets.
    const positiveRows: number[] = [];
    let offset = 0;
    for (const t of targets) {
      for (let i = 0; i < t.numPositive; i++) positiveRows.push(offset + i);
      offset += t.classIds.length;
    }
    const positiveClasses = concatInt(targets.map((t) => t.classIds.subarray(0, t.numPositive)));
    let loss_box_reg: tf.Scalar = tf.scalar(0);
    let loss_mask: tf.Scalar = tf.scalar(0);
    if (positiveRows.length > 0) {
      const rows = tf.tensor1d(positiveRows, 'int32');
      loss_box_reg = boxRegressionLoss(tf.gather(head.deltas, rows) as tf.Tensor3D, positiveClasses, concatFloat(targets.map((t) => t.deltas)));
      const positiveBoxes = new Float32Array(positiveRows.length * 4);
      positiveRows.forEach((row, i) => positiveBoxes.set(rois.subarray(4 * row, 4 * row + 4), 4 * i));
      const pooled = this.pool(pyramid, positiveBoxes, Int32Array.from(positiveRows, (row) => batchIndex[row]!), config.roi.maskPoolSize);
      const maskLogits = maskHead(this.store, pooled, config.numClasses, config.mask.headChannels, trainingBn);
      loss_mask = maskLoss(maskLogits, positiveClasses, concatFloat(targets.map((t) => t.masks)));
    }
    const loss_weight_decay = weightDecayLoss(this.store.decayedVariables(), config.train.weightDecay);
    return { loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg, loss_mask, loss_weight_decay };
  }

  private proposals(logits: tf.Tensor3D, deltas: tf.Tensor3D, postNmsTopN: number): Proposals[] {
    this.anchorsTensor ??= tf.keep(tf.tensor2d(this.anchors, [this.anchors.length / 4, 4]));
    return generateProposals(logits, deltas, this.anchorsTensor, {
      preNmsTopN: this.config.rpn.preNmsTopN,
      postNmsTopN,
      nmsThresh: this.config.rpn.nmsThresh,
      bboxStdDev: this.config.rpn.bboxStdDev,
      imageSize: this.config.image.size,
    });
  }

  /** ROIAlign of pixel boxes [N * 4] (image batchIndex [N]) from p2..p5: [N, poolSize, poolSize, C]. */
  private pool(pyramid: Pyramid, boxes: Float32Array, batchIndex: Int32Array, poolSize: number, imageSize = this.config.image.size): tf.Tensor4D {
    const s = imageSize;
    const n = batchIndex.length;
    const normalized = tf.tensor2d(boxes, [n, 4]).div(s) as tf.Tensor2D;
    const [p2, p3, p4, p5] = pyramid;
    return roiAlign([p2, p3, p4, p5], normalized, tf.tensor1d(batchIndex, 'int32'), poolSize, [s, s]);
  }

  /** Global-norm clipping factor (Keras' clipnorm): clipNorm / norm when the norm exceeds it, else 1. */
  private clipScale(grads: tf.Tensor[]): number {
    if (grads.length === 0) return 1;
    // In a tidy: the squares of every gradient (the model's size again) must not live until the step ends.
    const norm = Math.sqrt(tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
    return norm > this.config.train.clipNorm ? this.config.train.clipNorm / norm : 1;
  }

  private checkImages(images: tf.Tensor4D, expectedBatch: number): void {
    const s = this.config.image.size;
    const [b, h, w, c] = images.shape;
    if (h !== s || w !== s || c !== 3) throw new Error(`mask-rcnn: images must be [B, ${s}, ${s}, 3] (config.image.size), got [${images.shape}]`);
    if (b !== expectedBatch) throw new Error(`mask-rcnn: ${b} images but ${expectedBatch} metas`);
  }
}

/** tf.tidy for a function returning plain values (typed arrays, objects): every tensor made inside is disposed. */
function tidyValue<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

/** Named scalars -> numbers (one read-back) plus their total. */
function readLosses(parts: LossTensors): Losses {
  const values = tf.stack(lossNames.map((name) => parts[name])).dataSync();
  const out = Object.fromEntries(lossNames.map((name, i) => [name, values[i]!])) as Omit<Losses, 'loss_total'>;
  return { ...out, loss_total: lossNames.reduce((sum, name) => sum + out[name], 0) };
}

/** Per-image boxes -> one Float32Array [N * 4] and the image index of each box, Int32Array [N]. */
function concatRois(perImage: Float32Array[]): { boxes: Float32Array; batchIndex: Int32Array } {
  const boxes = concatFloat(perImage);
  const batchIndex = new Int32Array(boxes.length / 4);
  let offset = 0;
  perImage.forEach((b, image) => {
    batchIndex.fill(image, offset, offset + b.length / 4);
    offset += b.length / 4;
  });
  return { boxes, batchIndex };
}

function concatFloat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

function concatInt(parts: Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}
