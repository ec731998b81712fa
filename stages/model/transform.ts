// Between images as they are and the network (torchvision's GeneralizedRCNNTransform): original images molded
// into the S x S input batch (molding.ts), the input's shape checked, and detections in the S x S frame mapped
// back to each original image (boxes, masks pasted at full size). One part of MaskRcnn (mask-rcnn.ts).
import type * as tf from '@tensorflow/tfjs';
import type { Image8 } from '../imaging/dataset.js';
import type { MaskRcnnConfig } from './config.js';
import { moldImages, unmoldBoxes, unmoldMasks, type ImageMeta } from './molding.js';
import type { FrameDetections } from './roi-heads.js';

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

export class ImageTransform {
  constructor(private readonly config: MaskRcnnConfig) {}

  /** Original images -> the input batch [B, S, S, 3] (the caller disposes it) and where each image lies in it. */
  batch(images: readonly Image8[]): { images: tf.Tensor4D; metas: ImageMeta[] } {
    return moldImages(images, this.config.image.size, this.config.image.meanPixel);
  }

  /** Throws unless images is [expectedBatch, S, S, 3]. */
  checkImages(images: tf.Tensor4D, expectedBatch: number): void {
    const s = this.config.image.size;
    const [b, h, w, c] = images.shape;
    if (h !== s || w !== s || c !== 3) throw new Error(`mask-rcnn: images must be [B, ${s}, ${s}, 3] (config.image.size), got [${images.shape}]`);
    if (b !== expectedBatch) throw new Error(`mask-rcnn: ${b} images but ${expectedBatch} metas`);
  }

  /** One image's detections in the S x S frame -> its instances at the original size. */
  postprocess(found: FrameDetections, meta: ImageMeta): Detection {
    const { mask, detection } = this.config;
    return {
      boxes: unmoldBoxes(found.boxes, meta),
      scores: found.scores,
      classIds: found.classIds,
      masks: unmoldMasks(found.boxes, found.maskProbs, mask.outputSize, meta, detection.maskThreshold),
    };
  }
}
