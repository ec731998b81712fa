// The Mask R-CNN, composed of parts passed in (torchvision's GeneralizedRCNN(backbone, rpn, roi_heads, transform));
// it wires them and owns the train step (loss sum, gradients, clipping, the optimizer's update):
//
//   transform      images as read -> input batch [B, S, S, 3] + metas ................................ transform.ts
//   backbone       c2..c5 -> FPN p2..p6 ......................................................... backbone-with-fpn.ts
//   rpn            head, proposals (read back); training: ........ loss_objectness, loss_rpn_box_reg  rpn.ts
//   roiHeads       training: sampled ROIs -> box and mask heads .... loss_classifier, loss_box_reg, loss_mask
//                  inference: box head -> refined detections -> mask head ......................... roi-heads.ts
//   model          L2 on decayed weights ........................................... loss_weight_decay
//   transform      detections back to each original image
//
// Targets and proposals are plain arrays (read back once per step), so no gradient can flow through them. Every
// read goes through one ReadBack (read-back.ts), chosen once for the backend: synchronous on cpu/wasm, awaited on
// webgpu in Node. The model has one code path either way: its entry points await.
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';
import { BackboneWithFpn } from './backbone-with-fpn.js';
import { clipFactor } from './clip-factor.js';
import type { MaskRcnnConfig } from './config.js';
import type { DecayPart } from './kernels/webgpu/sum-of-squares.js';
import { leanVariableGrads } from './lean-gradients.js';
import { lossNames, weightDecayLoss, weightDecayValue, type Losses, type LossTensors } from './losses.js';
import type { ImageMeta, TrainBatch } from './molding.js';
import { ParameterStore } from './params.js';
import { readBackFor, type ReadBack } from './read-back.js';
import { RoiHeads } from './roi-heads.js';
import { RegionProposalNetwork } from './rpn.js';
import { seededRng, type Rng } from './sampler.js';
import { checkGroundTruth } from './step-targets.js';
import { tidyAsync } from './tidy-async.js';
import { ImageTransform, type Detection } from './transform.js';
import type { Image8 } from '../imaging/dataset.js';

export type { Losses } from './losses.js';
export type { TrainBatch, ImageMeta } from './molding.js';
export type { Detection } from './transform.js';

/**
 * What a train step needs of an optimizer (stages/train/amsgrad.ts fits): gradients and variables by store name,
 * and `gradientScale`, the clip factor, which multiplies every gradient first (webgpu folds the multiply into the
 * update's own programs).
 */
export interface GradientApplier {
  applyGradients(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, gradientScale: tf.Scalar, decay?: Record<string, number>): void;
  /**
   * true: `decay[name]` = c adds c * variable to that gradient first (the weight decay's gradient), so the step
   * leaves the regulariser off the tape and the optimizer folds it into its own update.
   */
  readonly foldsWeightDecay?: boolean;
}

/** A step whose update is queued on the device; its losses may still be being read. */
export interface QueuedStep {
  losses: Promise<Losses>;
}

/** The model's parts (defaultParts builds the recipe's from a config and a store). */
export interface MaskRcnnParts {
  backbone: BackboneWithFpn;
  rpn: RegionProposalNetwork;
  roiHeads: RoiHeads;
  transform: ImageTransform;
}

export interface MaskRcnnOptions {
  /** The weights (default: a fresh store seeded with config.seed). */
  store?: ParameterStore;
  /** How tensors are read back (default: readBackFor the active backend). */
  readBack?: ReadBack;
  /** The parts (default: defaultParts(config, store)). */
  parts?: MaskRcnnParts;
}

export function defaultParts(config: MaskRcnnConfig, store: ParameterStore): MaskRcnnParts {
  return {
    backbone: new BackboneWithFpn(store, config),
    rpn: new RegionProposalNetwork(store, config),
    roiHeads: new RoiHeads(store, config),
    transform: new ImageTransform(config),
  };
}

export class MaskRcnn {
  readonly config: MaskRcnnConfig;
  readonly store: ParameterStore;
  readonly readBack: ReadBack;
  readonly parts: MaskRcnnParts;
  private rng: Rng;
  private built = false;

  constructor(config: MaskRcnnConfig, options: MaskRcnnOptions = {}) {
    this.config = config;
    this.store = options.store ?? new ParameterStore(config.seed);
    this.readBack = options.readBack ?? readBackFor();
    this.parts = options.parts ?? defaultParts(config, this.store);
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
   * One optimizer step on the trainable variables; returns the losses before the step. Every loss in one
   * gradient closure, gradients clipped to config.train.clipNorm by their global norm, then the optimizer's
   * update. The optimizer must not read tensors synchronously where the read-back is awaited (Amsgrad does not).
   */
  async trainStep(optimizer: GradientApplier, batch: TrainBatch): Promise<Losses> {
    return (await this.queueTrainStep(optimizer, batch)).losses;
  }

  /**
   * trainStep, returning once the update is queued, with the losses' read still pending where the read-back is
   * awaited (webgpu): a training loop can then prepare and queue the next step while the device computes this
   * one (the next step's own proposal read waits for it anyway), one host-device sync per step instead of two.
   * The batch may be disposed as soon as this returns.
   */
  async queueTrainStep(optimizer: GradientApplier, batch: TrainBatch): Promise<QueuedStep> {
    this.build();
    const variables = this.store.trainableVariables();
    const { weightDecay, clipNorm } = this.config.train;
    const foldDecay = optimizer.foldsWeightDecay === true && weightDecay > 0;
    let parts: LossTensors | undefined;
    // One taped forward (leanVariableGrads: tf.variableGrads' arithmetic, freeing memory during backprop,
    // the tape held open across the proposals' read).
    const { value, grads } = await leanVariableGrads(async () => {
      parts = await this.lossTensors(batch, this.config.backbone.trainBatchNorm, !foldDecay);
      for (const name of lossNames) tf.keep(parts[name]);
      return addAll(lossNames.map((name) => parts![name])) as tf.Scalar;
    }, variables);
    const stacked = tf.tidy(() => {
      const decay = new Map<string, DecayPart>();
      if (foldDecay) {
        const decayed = this.store.decayedVariables();
        for (const w of decayed) {
          decay.set(w.name, { weight: w, coefficient: (2 * weightDecay) / w.size });
          grads[w.name] ??= tf.zerosLike(w); // a weight off the loss's path (no positive ROI: the mask head) still decays
        }
        parts!.loss_weight_decay.dispose();
        parts!.loss_weight_decay = weightDecayValue(decayed, weightDecay);
      }
      const gradList = Object.entries(grads);
      const clipScale = clipFactor(gradList.map(([, g]) => g), clipNorm, gradList.map(([name]) => decay.get(name)));
      const byStoreName: Record<string, tf.Tensor> = {};
      const variablesByName: Record<string, tf.Variable> = {};
      const decayByStoreName: Record<string, number> = {};
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
    return { losses: this.readBack.read([stacked]).then(([values]) => lossesOf(values!)) };
  }

  /** The same losses without a step (validation loss; batch-norm frozen). */
  async losses(batch: TrainBatch): Promise<Losses> {
    this.build();
    return tidyAsync('losses', async () => {
      const parts = await this.lossTensors(batch, false, true);
      const [values] = await this.readBack.read([tf.stack(lossNames.map((name) => parts[name]))]);
      return lossesOf(values!);
    });
  }

  /**
   * images [B, S, S, 3] (molded), metas: where each original image lies in its input. Returns per image the
   * instances at the original image size.
   */
  async detect(images: tf.Tensor4D, metas: ImageMeta[]): Promise<Detection[]> {
    const { backbone, rpn, roiHeads, transform } = this.parts;
    transform.checkImages(images, metas.length);
    this.build();
    return tidyAsync('detect', async () => {
      const pyramid = backbone.features(images, false);
      const { proposals } = await rpn.forward(pyramid, this.readBack);
      const found = await roiHeads.detect(pyramid, proposals, metas.map((m) => m.window), this.readBack);
      return found.map((f, b) => transform.postprocess(f, metas[b]!));
    });
  }

  /** Molds original images and detects: the whole inference path for images as they are read. */
  async detectImages(images: Image8[]): Promise<Detection[]> {
    const input = this.parts.transform.batch(images);
    try {
      return await this.detect(input.images, input.metas);
    } finally {
      input.images.dispose();
    }
  }

  dispose(): void {
    this.parts.rpn.dispose();
    this.store.dispose();
  }

  /**
   * Creates every variable (layers create theirs on first use) with one forward pass on a tiny blank input, so
   * the variables exist before the first gradient closure or a checkpoint load. Idempotent and cheap.
   */
  build(): void {
    if (this.built) return;
    const { backbone, rpn, roiHeads } = this.parts;
    tf.tidy(() => {
      const pyramid = backbone.features(tf.zeros([1, 64, 64, 3]), false);
      rpn.build(pyramid);
      roiHeads.build(pyramid);
    });
    this.built = true;
  }

  /**
   * The losses as tensors: the backbone, the RPN's (its proposals read back in the middle of the forward pass),
   * the ROI heads' on ROIs sampled from those proposals, then the regulariser (`decayOnTape` false: a placeholder
   * zero, for a step whose optimizer adds the decay's gradient itself).
   */
  private async lossTensors(batch: TrainBatch, trainingBn: boolean, decayOnTape: boolean): Promise<LossTensors> {
    const { backbone, rpn, roiHeads, transform } = this.parts;
    transform.checkImages(batch.images, batch.images.shape[0]);
    checkGroundTruth(batch);
    const pyramid = backbone.features(batch.images, trainingBn);
    const proposed = await rpn.forward(pyramid, this.readBack, { gtBoxes: batch.gtBoxes, rng: this.rng });
    const heads = roiHeads.losses(pyramid, proposed.proposals.map((p) => p.boxes), batch, this.rng, trainingBn, this.readBack.roiAlign);
    const loss_weight_decay = decayOnTape ? weightDecayLoss(this.store.decayedVariables(), this.config.train.weightDecay) : tf.scalar(0);
    return { ...proposed.losses!, ...heads, loss_weight_decay };
  }
}

/** The named losses as read back, [6] in lossNames' order, plus their total. */
function lossesOf(values: ArrayLike<number>): Losses {
  const out = Object.fromEntries(lossNames.map((name, i) => [name, values[i]!])) as Omit<Losses, 'loss_total'>;
  return { ...out, loss_total: lossNames.reduce((sum, name) => sum + out[name], 0) };
}
