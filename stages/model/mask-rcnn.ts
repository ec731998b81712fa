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
//
// Each read-back point has an asynchronous form for backends with no synchronous read (webgpu in Node; see
// read-back.ts): trainStepAsync runs one forward under the gradient tape that awaits the RPN's outputs between
// the trunk and the heads, samples the targets from them (step-targets.ts) and uses them as constants;
// detectAsync awaits its reads between the stages of inference. Both give the synchronous forms' numbers.
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';
import { clipFactor } from './clip-factor.js';
import type { DecayPart } from './kernels/webgpu/sum-of-squares.js';
import { anchorSpec, pyramidAnchors } from './anchors.js';
import { resnetFeatures } from './backbone.js';
import { anchorsPerLocation, type MaskRcnnConfig } from './config.js';
import { refineDetections, type RefinedDetections } from './detect.js';
import { fpn, type Pyramid } from './fpn.js';
import { boxHead, maskHead } from './heads.js';
import {
  boxRegressionLoss, lossNames, maskLoss, selectClass, smoothL1, softmaxCrossEntropy, weightDecayLoss, weightDecayValue,
  type Losses, type LossTensors,
} from './losses.js';
import { moldImage, moldImageAsync, unmoldBoxes, unmoldMasks, type ImageMeta, type TrainBatch } from './molding.js';
import { ParameterStore } from './params.js';
import { leanVariableGrads, leanVariableGradsAsync } from './lean-gradients.js';
import { tidyAsync } from './tidy-async.js';
import { generateProposals, generateProposalsAsync, type ProposalOptions, type Proposals } from './proposals.js';
import { readAndDispose } from './read-back.js';
import { roiAlign, type RoiAlignImplementation } from './roi-align.js';
import { rpnHead } from './rpn-head.js';
import { seededRng, type Rng } from './sampler.js';
import { checkGroundTruth, concatRois, headStepTargets, rpnStepTargets, type StepTargets } from './step-targets.js';
import type { Image8 } from '../imaging/dataset.js';

export type { Losses } from './losses.js';
export type { TrainBatch, ImageMeta } from './molding.js';

/**
 * What trainStep needs of an optimizer (stages/train/amsgrad.ts fits): gradients and variables by store name;
 * `gradientScale`, where given, multiplies every gradient first (the clip factor, which webgpu folds into the
 * update's own programs instead of a multiply per gradient).
 */
export interface GradientApplier {
  applyGradients(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, gradientScale?: tf.Scalar, decay?: Record<string, number>): void;
  /**
   * true: `decay[name]` = c adds c * variable to that gradient first (the weight decay's gradient), so on webgpu
   * trainStepAsync leaves the regulariser off the tape and the optimizer folds it into its own programs.
   */
  readonly foldsWeightDecay?: boolean;
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
  private rng: Rng;
  private built = false;
  /**
   * ROIAlign of the synchronous paths ('auto': JS loops on cpu/wasm, gathers elsewhere). The asynchronous paths
   * always gather (the JS loops read the feature maps synchronously); tests set 'gather' here to compare the
   * two paths' arithmetic exactly.
   */
  roiAlignImplementation: RoiAlignImplementation = 'auto';

  constructor(config: MaskRcnnConfig, store?: ParameterStore) {
    this.config = config;
    this.store = store ?? new ParameterStore(config.seed);
    this.anchors = pyramidAnchors(anchorSpec(config));
    this.rng = seededRng(`${config.seed}/sampling`);
  }

  /**
   * Restarts the random stream of target sampling (RPN anchors, ROIs) from `label`. The train stage calls it at
   * each epoch's start so an epoch's sampling depends on the seed and epoch only: a phase resumed from a
   * checkpoint then repeats exactly what the uninterrupted run would have done.
   */
  reseedSampling(label: string): void {
    this.rng = seededRng(`${this.config.seed}/sampling/${label}`);
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
        return addAll(lossNames.map((name) => parts![name])) as tf.Scalar;
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
      const losses = lossesOf(tf.stack(lossNames.map((name) => parts![name])).dataSync());
      for (const name of lossNames) parts![name].dispose();
      optimizer.applyGradients(byStoreName, variablesByName);
      return losses;
    });
  }

  /**
   * trainStep with no synchronous read-back (webgpu in Node), same losses and weights afterwards. One forward under
   * the gradient tape (leanVariableGradsAsync): the trunk, an awaited read of the RPN's best boxes, on the CPU the
   * proposals (NMS) and targets, then the heads and losses with those targets as constants; gradients, the clip
   * factor min(1, clipNorm / norm) as a tensor, optimizer.applyGradients; then one awaited read of the losses.
   * The optimizer must not read tensors synchronously either (Amsgrad does not).
   */
  async trainStepAsync(optimizer: GradientApplier, batch: TrainBatch): Promise<Losses> {
    return (await this.trainStepQueued(optimizer, batch)).losses;
  }

  /**
   * trainStepAsync without waiting for the device to finish: returns once the update is queued, with the losses'
   * read still pending. A training loop can then prepare and queue the next step while the device computes this
   * one (the next step's own proposal read waits for it anyway): one host-device sync per step instead of two.
   * The batch may be disposed as soon as this returns.
   */
  async trainStepQueued(optimizer: GradientApplier, batch: TrainBatch): Promise<{ losses: Promise<Losses> }> {
    this.build();
    const trainingBn = this.config.backbone.trainBatchNorm;
    const variables = this.store.trainableVariables();
    // webgpu: the weight decay's gradient c * w is added inside the optimizer's update (and the clip norm's sums)
    // instead of on the tape: two dispatches per decayed weight fewer (its gradient and the engine's add).
    const foldDecay = tf.getBackend() === 'webgpu' && optimizer.foldsWeightDecay === true && this.config.train.weightDecay > 0;
    let parts: LossTensors | undefined;
    // One taped forward: the trunk, an awaited read of its proposals for the targets, the heads and losses.
    const { value, grads } = await leanVariableGradsAsync(async () => {
      parts = await this.lossTensorsReadingProposals(batch, trainingBn, !foldDecay);
      for (const name of lossNames) tf.keep(parts[name]);
      return addAll(lossNames.map((name) => parts![name])) as tf.Scalar;
    }, variables);
    const stacked = tf.tidy(() => {
      const decay = new Map<string, DecayPart>();
      if (foldDecay) {
        const decayed = this.store.decayedVariables();
        const weightDecay = this.config.train.weightDecay;
        for (const w of decayed) {
          decay.set(w.name, { weight: w, coefficient: (2 * weightDecay) / w.size });
          grads[w.name] ??= tf.zerosLike(w); // a weight off the loss's path (no positive ROI: the mask head) still decays
        }
        parts!.loss_weight_decay.dispose();
        parts!.loss_weight_decay = weightDecayValue(decayed, weightDecay);
      }
      const byStoreName: Record<string, tf.Tensor> = {};
      const variablesByName: Record<string, tf.Variable> = {};
      const decayByStoreName: Record<string, number> = {};
      const gradList = Object.entries(grads);
      const clipScale = clipFactor(gradList.map(([, g]) => g), this.config.train.clipNorm, gradList.map(([name]) => decay.get(name)));
      for (const variable of variables) {
        const grad = grads[variable.name];
        const name = this.store.nameOf(variable);
        if (!grad || name === undefined) continue;
        byStoreName[name] = grad;
        variablesByName[name] = variable;
        const part = decay.get(variable.name);
        if (part) decayByStoreName[name] = part.coefficient;
      }
      const values = tf.stack(lossNames.map((name) => parts![name])); // [6]
      for (const name of lossNames) parts![name].dispose();
      optimizer.applyGradients(byStoreName, variablesByName, clipScale, foldDecay ? decayByStoreName : undefined);
      return values;
    });
    tf.dispose([value, ...Object.values(grads)]);
    return { losses: readAndDispose([stacked]).then(([values]) => lossesOf(values!)) };
  }

  /** The same losses without a step (validation loss; batch-norm frozen). */
  losses(batch: TrainBatch): Losses {
    this.build();
    return tidyValue(() => {
      const parts = this.lossTensors(batch, false);
      return lossesOf(tf.stack(lossNames.map((name) => parts[name])).dataSync());
    });
  }

  /** losses with no synchronous read-back: one forward, its proposals read back (awaited) for the targets. */
  async lossesAsync(batch: TrainBatch): Promise<Losses> {
    this.build();
    const stacked = await tidyAsync('losses', async () => {
      const parts = await this.lossTensorsReadingProposals(batch, false, true);
      return tf.stack(lossNames.map((name) => parts[name]));
    });
    const [values] = await readAndDispose([stacked]);
    return lossesOf(values!);
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
      const proposals = generateProposals(logits, deltas, this.anchorTensor(), this.proposalOptions(config.rpn.postNmsTopNTest));
      const head = this.classify(pyramid, proposals, this.roiAlignImplementation);
      const found = this.refine(proposals, head.probs.dataSync() as Float32Array, head.deltas.dataSync() as Float32Array, metas);
      return found.map((f, b) => {
        const maskProbs = f.scores.length > 0 ? (this.maskProbs(pyramid, f, b, this.roiAlignImplementation).dataSync() as Float32Array) : new Float32Array(0);
        return this.toDetection(f, maskProbs, metas[b]!);
      });
    });
  }

  /** detect with no synchronous read-back (webgpu in Node): awaited reads between the stages; same detections. */
  async detectAsync(images: tf.Tensor4D, metas: ImageMeta[]): Promise<Detection[]> {
    const { config } = this;
    this.checkImages(images, metas.length);
    this.build();
    const { pyramid, logits, deltas } = tf.tidy(() => this.trunk(images, false));
    try {
      const proposals = await generateProposalsAsync(logits, deltas, this.anchorTensor(), this.proposalOptions(config.rpn.postNmsTopNTest));
      const [probs, classDeltas] = await readAndDispose(tf.tidy(() => {
        const head = this.classify(pyramid, proposals, 'gather');
        return [head.probs, head.deltas];
      }));
      const found = this.refine(proposals, probs!, classDeltas!, metas);
      const withInstances = found.flatMap((f, b) => (f.scores.length > 0 ? [b] : []));
      const maskValues = await readAndDispose(tf.tidy(() => withInstances.map((b) => this.maskProbs(pyramid, found[b]!, b, 'gather'))));
      return found.map((f, b) => {
        const k = withInstances.indexOf(b);
        return this.toDetection(f, k >= 0 ? maskValues[k]! : new Float32Array(0), metas[b]!);
      });
    } finally {
      tf.dispose([...pyramid, logits, deltas]);
    }
  }

  /** Molds original images and detects: the whole inference path for images as they are read. */
  detectImages(images: Image8[]): Detection[] {
    const molded = images.map((image) => moldImage(image, this.config.image.size, this.config.image.meanPixel));
    const input = this.batchOf(molded.map((m) => m.pixels));
    try {
      return this.detect(input, molded.map((m) => m.meta));
    } finally {
      input.dispose();
    }
  }

  /** detectImages with no synchronous read-back. */
  async detectImagesAsync(images: Image8[]): Promise<Detection[]> {
    const molded = [];
    for (const image of images) molded.push(await moldImageAsync(image, this.config.image.size, this.config.image.meanPixel));
    const input = this.batchOf(molded.map((m) => m.pixels));
    try {
      return await this.detectAsync(input, molded.map((m) => m.meta));
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
      boxHead(this.store, this.pool(pyramid, box, new Int32Array(1), config.roi.poolSize, 'gather', 64), config.numClasses, config.box.fcDim, false);
      maskHead(this.store, this.pool(pyramid, box, new Int32Array(1), config.roi.maskPoolSize, 'gather', 64), config.numClasses, config.mask.headChannels, false);
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

  /**
   * The losses as tensors. Without `targets`, they are sampled here, reading the proposals back in the middle of
   * the forward pass; with them (sampleTargetsAsync's), nothing is read and ROIAlign gathers on the device.
   */
  /** `decayOnTape` false: loss_weight_decay is a placeholder zero (trainStepAsync adds the value and gradient itself). */
  private lossTensors(batch: TrainBatch, trainingBn: boolean, targets?: StepTargets, decayOnTape = true, trunkOutputs?: ReturnType<MaskRcnn['trunk']>): LossTensors {
    const { config } = this;
    const batchSize = batch.images.shape[0];
    this.checkImages(batch.images, batchSize);
    checkGroundTruth(batch);
    const { pyramid, logits, deltas } = trunkOutputs ?? this.trunk(batch.images, trainingBn);
    const numAnchors = this.anchors.length / 4;

    // RPN losses over the sampled anchors of every image (flattened to [B * A] rows).
    const rpn = targets?.rpn ?? rpnStepTargets(this.anchors, batch.gtBoxes, config, this.rng);
    const flatLogits = logits.reshape([batchSize * numAnchors, 2]) as tf.Tensor2D;
    const flatDeltas = deltas.reshape([batchSize * numAnchors, 4]) as tf.Tensor2D;
    const loss_objectness = softmaxCrossEntropy(tf.gather(flatLogits, tf.tensor1d(rpn.sampledRows, 'int32')), rpn.sampledLabels);
    const numPositive = rpn.positiveRows.length;
    const loss_rpn_box_reg = numPositive === 0 ? tf.scalar(0) : smoothL1(tf.gather(flatDeltas, tf.tensor1d(rpn.positiveRows, 'int32')), tf.tensor2d(rpn.positiveDeltas, [numPositive, 4]));

    // Head losses over the sampled ROIs of every image, positives of each image first.
    const heads = targets?.heads ?? headStepTargets(
      generateProposals(logits, deltas, this.anchorTensor(), this.proposalOptions(config.rpn.postNmsTopNTrain)).map((p) => p.boxes), batch, config, this.rng,
    );
    const implementation: RoiAlignImplementation = targets ? 'gather' : this.roiAlignImplementation;
    const head = boxHead(this.store, this.pool(pyramid, heads.rois, heads.batchIndex, config.roi.poolSize, implementation), config.numClasses, config.box.fcDim, trainingBn);
    const loss_classifier = softmaxCrossEntropy(head.classLogits, heads.classIds);

    const { positiveRows, positiveClasses } = heads;
    let loss_box_reg: tf.Scalar = tf.scalar(0);
    let loss_mask: tf.Scalar = tf.scalar(0);
    if (positiveRows.length > 0) {
      const rows = tf.tensor1d(positiveRows, 'int32');
      loss_box_reg = boxRegressionLoss(tf.gather(head.deltas, rows) as tf.Tensor3D, positiveClasses, heads.positiveDeltas);
      const positiveBoxes = new Float32Array(positiveRows.length * 4);
      positiveRows.forEach((row, i) => positiveBoxes.set(heads.rois.subarray(4 * row, 4 * row + 4), 4 * i));
      const pooled = this.pool(pyramid, positiveBoxes, Int32Array.from(positiveRows, (row) => heads.batchIndex[row]!), config.roi.maskPoolSize, implementation);
      const maskLogits = maskHead(this.store, pooled, config.numClasses, config.mask.headChannels, trainingBn);
      loss_mask = maskLoss(maskLogits, positiveClasses, heads.positiveMasks);
    }
    const loss_weight_decay = decayOnTape ? weightDecayLoss(this.store.decayedVariables(), config.train.weightDecay) : tf.scalar(0);
    return { loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg, loss_mask, loss_weight_decay };
  }

  /**
   * lossTensors with the trunk run once, for leanVariableGradsAsync: the RPN's boxes are read back (awaited) for
   * NMS and the detection targets between the trunk and the heads, the sampler's RNG consumed in lossTensors'
   * order (RPN targets, then detection targets).
   */
  private async lossTensorsReadingProposals(batch: TrainBatch, trainingBn: boolean, decayOnTape: boolean): Promise<LossTensors> {
    this.checkImages(batch.images, batch.images.shape[0]);
    checkGroundTruth(batch);
    const rpn = rpnStepTargets(this.anchors, batch.gtBoxes, this.config, this.rng);
    const trunk = this.trunk(batch.images, trainingBn);
    const proposals = await generateProposalsAsync(trunk.logits, trunk.deltas, this.anchorTensor(), this.proposalOptions(this.config.rpn.postNmsTopNTrain));
    const heads = headStepTargets(proposals.map((p) => p.boxes), batch, this.config, this.rng);
    return this.lossTensors(batch, trainingBn, { rpn, heads }, decayOnTape, trunk);
  }

  /** Box head on every image's proposals: class probabilities [N, C] and deltas [N, C, 4]. */
  private classify(pyramid: Pyramid, proposals: Proposals[], implementation: RoiAlignImplementation): { probs: tf.Tensor2D; deltas: tf.Tensor3D } {
    const { config } = this;
    const { boxes, batchIndex } = concatRois(proposals.map((p) => p.boxes));
    const head = boxHead(this.store, this.pool(pyramid, boxes, batchIndex, config.roi.poolSize, implementation), config.numClasses, config.box.fcDim, false);
    return { probs: tf.softmax(head.classLogits), deltas: head.deltas };
  }

  /** Per image, the refined detections of its proposals; probs [N * C] and classDeltas [N * C * 4] as read back. */
  private refine(proposals: Proposals[], probs: Float32Array, classDeltas: Float32Array, metas: ImageMeta[]): RefinedDetections[] {
    const { numClasses, detection, box } = this.config;
    return rowsPerImage(proposals, probs, classDeltas, numClasses).map((rows, b) =>
      refineDetections(rows.rois, rows.probs, rows.deltas, numClasses, metas[b]!.window, { ...detection, bboxStdDev: box.bboxStdDev }));
  }

  /** Mask probabilities of image b's detections in their classes: [n, M, M]. */
  private maskProbs(pyramid: Pyramid, found: RefinedDetections, b: number, implementation: RoiAlignImplementation): tf.Tensor {
    const { config } = this;
    const count = found.scores.length;
    const pooled = this.pool(pyramid, found.boxes, new Int32Array(count).fill(b), config.roi.maskPoolSize, implementation);
    const logits = maskHead(this.store, pooled, config.numClasses, config.mask.headChannels, false); // [n, M, M, C]
    return tf.sigmoid(selectClass(logits.transpose([0, 3, 1, 2]), found.classIds));
  }

  private toDetection(found: RefinedDetections, maskProbs: Float32Array, meta: ImageMeta): Detection {
    const { config } = this;
    return {
      boxes: unmoldBoxes(found.boxes, meta),
      scores: found.scores,
      classIds: found.classIds,
      masks: unmoldMasks(found.boxes, maskProbs, config.mask.outputSize, meta, config.detection.maskThreshold),
    };
  }

  private batchOf(pixels: Float32Array[]): tf.Tensor4D {
    const s = this.config.image.size;
    const batch = new Float32Array(pixels.length * s * s * 3);
    pixels.forEach((p, i) => batch.set(p, i * s * s * 3));
    return tf.tensor4d(batch, [pixels.length, s, s, 3]);
  }

  private anchorTensor(): tf.Tensor2D {
    this.anchorsTensor ??= tf.keep(tf.tensor2d(this.anchors, [this.anchors.length / 4, 4]));
    return this.anchorsTensor;
  }

  private proposalOptions(postNmsTopN: number): ProposalOptions {
    const { rpn, image } = this.config;
    return { preNmsTopN: rpn.preNmsTopN, postNmsTopN, nmsThresh: rpn.nmsThresh, bboxStdDev: rpn.bboxStdDev, imageSize: image.size };
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

  /** Global-norm clipping factor (Keras' clipnorm): clipNorm / norm when the norm exceeds it, else 1. */
  private clipScale(grads: tf.Tensor[]): number {
    if (grads.length === 0) return 1;
    // In a tidy: the squares of every gradient (the model's size again) must not live until the step ends.
    const norm = Math.sqrt(tf.tidy(() => addAll(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
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

/** Each image's proposals with its rows of the box head's probs [n * C] and deltas [n * C * 4]. */
function rowsPerImage(proposals: Proposals[], probs: Float32Array, deltas: Float32Array, c: number): { rois: Float32Array; probs: Float32Array; deltas: Float32Array }[] {
  let offset = 0;
  return proposals.map(({ boxes }) => {
    const n = boxes.length / 4;
    const rows = { rois: boxes, probs: probs.subarray(offset * c, (offset + n) * c), deltas: deltas.subarray(offset * c * 4, (offset + n) * c * 4) };
    offset += n;
    return rows;
  });
}

/** The named losses as read back, [6] in lossNames' order, plus their total. */
function lossesOf(values: ArrayLike<number>): Losses {
  const out = Object.fromEntries(lossNames.map((name, i) => [name, values[i]!])) as Omit<Losses, 'loss_total'>;
  return { ...out, loss_total: lossNames.reduce((sum, name) => sum + out[name], 0) };
}
