// The region proposal network (torchvision's rpn.py): the head over the pyramid (rpn-head.ts), the anchors it
// predicts for (anchors.ts), proposals from its outputs (proposals.ts) and, in training, its two losses over the
// anchors sampled against the ground truth (rpn-targets.ts). One part of MaskRcnn (mask-rcnn.ts).
import * as tf from '@tensorflow/tfjs';
import { anchorSpec, pyramidAnchors } from './anchors.js';
import { anchorsPerLocation, type MaskRcnnConfig } from './config.js';
import type { Pyramid } from './fpn.js';
import { smoothL1, softmaxCrossEntropy } from './losses.js';
import type { ParameterStore } from './params.js';
import { generateProposals, type ProposalOptions, type Proposals } from './proposals.js';
import type { ReadBack } from './read-back.js';
import { rpnHead, type RpnOutput } from './rpn-head.js';
import type { Rng } from './sampler.js';
import { rpnStepTargets, type RpnStepTargets } from './step-targets.js';

export interface RpnLosses {
  loss_objectness: tf.Scalar;
  loss_rpn_box_reg: tf.Scalar;
}

/** What training gives the RPN: each image's GT boxes (Float32Array [n * 4] pixels) and the sampler's stream. */
export interface RpnTraining {
  gtBoxes: readonly Float32Array[];
  rng: Rng;
}

export class RegionProposalNetwork {
  /** Float32Array [A * 4] pixels, in the head's output order. */
  readonly anchors: Float32Array;
  private anchorsTensor: tf.Tensor2D | undefined;

  constructor(
    private readonly store: ParameterStore,
    private readonly config: MaskRcnnConfig,
  ) {
    this.anchors = pyramidAnchors(anchorSpec(config));
  }

  /**
   * Each image's proposals; with `training`, also the two losses. The anchors are sampled first (the sampler's
   * RNG is drawn by the RPN, then by the ROI heads: step-targets.ts), the ranked boxes come back through
   * `readBack`, and the losses are taken over the sampled anchors of every image ([B * A] rows).
   */
  async forward(pyramid: Pyramid, readBack: ReadBack, training?: RpnTraining): Promise<{ proposals: Proposals[]; losses?: RpnLosses }> {
    const targets = training && rpnStepTargets(this.anchors, training.gtBoxes, this.config, training.rng);
    const head = this.head(pyramid);
    const { rpn, image } = this.config;
    const options: ProposalOptions = {
      preNmsTopN: rpn.preNmsTopN, postNmsTopN: training ? rpn.postNmsTopNTrain : rpn.postNmsTopNTest,
      nmsThresh: rpn.nmsThresh, bboxStdDev: rpn.bboxStdDev, imageSize: image.size,
    };
    const proposals = await generateProposals(head.logits, head.deltas, this.anchorTensor(), options, readBack);
    return targets ? { proposals, losses: this.losses(head, targets) } : { proposals };
  }

  /** Creates the head's variables (on any input size: the anchors are not checked). */
  build(pyramid: Pyramid): void {
    const { rpn } = this.config;
    rpnHead(this.store, pyramid, anchorsPerLocation(this.config), rpn.headChannels, rpn.anchorStride);
  }

  /** The head's outputs on the pyramid: logits [B, A, 2], deltas [B, A, 4]. */
  private head(pyramid: Pyramid): RpnOutput {
    const { config } = this;
    const out = rpnHead(this.store, pyramid, anchorsPerLocation(config), config.rpn.headChannels, config.rpn.anchorStride);
    if (out.logits.shape[1] !== this.anchors.length / 4) {
      throw new Error(`mask-rcnn: the RPN head predicts ${out.logits.shape[1]} anchors per image, anchors.ts made ${this.anchors.length / 4}`);
    }
    return out;
  }

  dispose(): void {
    this.anchorsTensor?.dispose();
    this.anchorsTensor = undefined;
  }

  /** Objectness cross-entropy over the sampled anchors, smooth-L1 over the positives' deltas. */
  private losses({ logits, deltas }: RpnOutput, targets: RpnStepTargets): RpnLosses {
    const [batchSize, numAnchors] = logits.shape;
    const flatLogits = logits.reshape([batchSize * numAnchors, 2]) as tf.Tensor2D;
    const flatDeltas = deltas.reshape([batchSize * numAnchors, 4]) as tf.Tensor2D;
    const loss_objectness = softmaxCrossEntropy(tf.gather(flatLogits, tf.tensor1d(targets.sampledRows, 'int32')), targets.sampledLabels);
    const numPositive = targets.positiveRows.length;
    const loss_rpn_box_reg = numPositive === 0
      ? tf.scalar(0)
      : smoothL1(tf.gather(flatDeltas, tf.tensor1d(targets.positiveRows, 'int32')), tf.tensor2d(targets.positiveDeltas, [numPositive, 4]));
    return { loss_objectness, loss_rpn_box_reg };
  }

  private anchorTensor(): tf.Tensor2D {
    this.anchorsTensor ??= tf.keep(tf.tensor2d(this.anchors, [this.anchors.length / 4, 4]));
    return this.anchorsTensor;
  }
}
