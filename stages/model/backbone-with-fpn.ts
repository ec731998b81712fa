// The detector's feature extractor (torchvision's BackboneWithFPN): the ResNet's c2..c5 (backbone.ts) through the
// feature pyramid (fpn.ts), p2..p6. One part of MaskRcnn (mask-rcnn.ts).
import type * as tf from '@tensorflow/tfjs';
import { resnetFeatures } from './backbone.js';
import type { MaskRcnnConfig } from './config.js';
import { fpn, type Pyramid } from './fpn.js';
import type { ParameterStore } from './params.js';

export class BackboneWithFpn {
  constructor(
    private readonly store: ParameterStore,
    private readonly config: MaskRcnnConfig,
  ) {}

  /** images [B, S, S, 3] (S a multiple of 64) -> [p2, …, p6]; `training`: batch-norm mode. */
  features(images: tf.Tensor4D, training: boolean): Pyramid {
    const { backbone } = this.config;
    return fpn(this.store, resnetFeatures(this.store, images, backbone.name, training), backbone.fpnChannels);
  }
}
