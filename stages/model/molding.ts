// Between images as they are and the network's square input (Matterport's mold_image / resize_image /
// minimize_mask / unmold_detections):
//   image  H x W -> scaled by S / max(H, W) (bilinear), zero-padded centred to S x S, mean pixel subtracted
//                   (padding becomes -mean, as in Matterport, which pads before subtracting);
//   labels        -> GT boxes in the S x S frame and 56 x 56 mini-masks, cut from the full-resolution masks
//                   (no resampling of the label map first, so small nuclei keep their shape);
//   detections    -> boxes back in original pixels and masks pasted at original size.
import * as tf from '@tensorflow/tfjs';
import type { Image8, LabelMap } from '../imaging/dataset.js';
import { pasteMask, sampleBilinearClamped } from './paste-masks.js';
import { chooseWithoutReplacement, type Rng } from './sampler.js';

/** Where an original image lies in the S x S input. */
export interface ImageMeta {
  originalHeight: number;
  originalWidth: number;
  /** Network input side S. */
  size: number;
  /** Resized = original * scale. */
  scale: number;
  /** [y1, x1, y2, x2] of the resized image inside the S x S frame (pixels). */
  window: [number, number, number, number];
}

/** One training batch, as MaskRcnn.trainStep takes it. */
export interface TrainBatch {
  /** [B, S, S, 3], mean-subtracted. */
  images: tf.Tensor4D;
  /** Per image Float32Array [n * 4], pixels [y1, x1, y2, x2] in the S x S frame. */
  gtBoxes: Float32Array[];
  /** Per image Uint8Array [n * m * m] 0/1 mini-masks. */
  gtMasks: Uint8Array[];
  /** Per image Int32Array [n], >= 1. */
  gtClassIds: Int32Array[];
}

export interface GroundTruth {
  boxes: Float32Array;
  classIds: Int32Array;
  miniMasks: Uint8Array;
}

export function imageMeta(height: number, width: number, size: number): ImageMeta {
  if (!(height > 0 && width > 0)) throw new Error(`molding: image of ${width}x${height} pixels`);
  const scale = size / Math.max(height, width);
  const h = Math.min(size, Math.round(height * scale));
  const w = Math.min(size, Math.round(width * scale));
  const top = Math.floor((size - h) / 2);
  const left = Math.floor((size - w) / 2);
  return { originalHeight: height, originalWidth: width, size, scale, window: [top, left, top + h, left + w] };
}

/**
 * Image8s (1, 3 or 4 channels; alpha dropped, grey repeated) -> the network input [B, S, S, 3] and where each
 * image lies in it. Nothing is read back: the batch is built on the backend (the caller disposes it).
 */
export function moldImages(images: readonly Image8[], size: number, meanPixel: readonly [number, number, number]): { images: tf.Tensor4D; metas: ImageMeta[] } {
  const metas = images.map((image) => imageMeta(image.height, image.width, size));
  if (images.length === 0) return { images: tf.zeros([0, size, size, 3]), metas };
  return { images: tf.tidy(() => tf.stack(images.map((image, b) => moldedTensor(image, metas[b]!, meanPixel))) as tf.Tensor4D), metas };
}

/** The network input [S, S, 3] of an image (call in a tidy). */
function moldedTensor(image: Image8, meta: ImageMeta, meanPixel: readonly [number, number, number]): tf.Tensor3D {
  const { size } = meta;
  const [top, left, bottom, right] = meta.window;
  let rgb = tf.tensor3d(image.data, [image.height, image.width, image.channels], 'int32').toFloat();
  if (image.channels === 1) rgb = tf.tile(rgb, [1, 1, 3]);
  else if (image.channels === 4) rgb = rgb.slice([0, 0, 0], [image.height, image.width, 3]);
  const resized = tf.image.resizeBilinear(rgb as tf.Tensor3D, [bottom - top, right - left], false, true);
  const padded = tf.pad(resized, [[top, size - bottom], [left, size - right], [0, 0]]);
  return padded.sub(tf.tensor1d([...meanPixel]));
}

/**
 * Instance labels (0 = background, 1..count) -> GT boxes in the S x S frame, class ids (all 1: nucleus) and
 * mini-masks. Above maxInstances, a random subset is kept (the recipe's MAX_GT_INSTANCES).
 */
export function moldInstances(labels: LabelMap, meta: ImageMeta, miniMaskSize: number, maxInstances: number, rng: Rng): GroundTruth {
  const { width, height, data } = labels;
  if (width !== meta.originalWidth || height !== meta.originalHeight) {
    throw new Error(`molding: label map is ${width}x${height} but its image is ${meta.originalWidth}x${meta.originalHeight}`);
  }
  // Bounding box of every label: rows [y0, y1), columns [x0, x1) (Matterport's extract_bboxes).
  const bounds = new Map<number, [number, number, number, number]>();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const id = data[y * width + x]!;
      if (id === 0) continue;
      const b = bounds.get(id);
      if (!b) bounds.set(id, [y, x, y + 1, x + 1]);
      else {
        if (x < b[1]) b[1] = x;
        if (y + 1 > b[2]) b[2] = y + 1;
        if (x + 1 > b[3]) b[3] = x + 1;
      }
    }
  }
  let ids = [...bounds.keys()].sort((a, b) => a - b);
  if (ids.length > maxInstances) ids = chooseWithoutReplacement(ids, maxInstances, rng).sort((a, b) => a - b);
  const m = miniMaskSize;
  const boxes = new Float32Array(ids.length * 4);
  const miniMasks = new Uint8Array(ids.length * m * m);
  const [top, left] = meta.window;
  ids.forEach((id, i) => {
    const [y0, x0, y1, x1] = bounds.get(id)!;
    boxes.set([top + y0 * meta.scale, left + x0 * meta.scale, top + y1 * meta.scale, left + x1 * meta.scale], 4 * i);
    const crop = new Float32Array((y1 - y0) * (x1 - x0));
    const cw = x1 - x0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) crop[(y - y0) * cw + (x - x0)] = data[y * width + x] === id ? 1 : 0;
    const ch = y1 - y0;
    for (let r = 0; r < m; r++) {
      const u = ((r + 0.5) / m) * ch - 0.5;
      for (let c = 0; c < m; c++) {
        const v = ((c + 0.5) / m) * cw - 0.5;
        miniMasks[i * m * m + r * m + c] = sampleBilinearClamped(crop, ch, cw, u, v) >= 0.5 ? 1 : 0;
      }
    }
  });
  return { boxes, classIds: new Int32Array(ids.length).fill(1), miniMasks };
}

export interface BatchOptions {
  size: number;
  meanPixel: readonly [number, number, number];
  miniMaskSize: number;
  maxGtInstances: number;
}

/** Samples -> TrainBatch (the images tensor is the caller's to dispose); nothing is read back. */
export function buildTrainBatch(samples: ReadonlyArray<{ image: Image8; labels: LabelMap }>, options: BatchOptions, rng: Rng): TrainBatch {
  // The ground truth first: a label map that does not fit its image is an error before any tensor exists.
  const gts = samples.map((sample) => {
    const meta = imageMeta(sample.image.height, sample.image.width, options.size);
    return moldInstances(sample.labels, meta, options.miniMaskSize, options.maxGtInstances, rng);
  });
  const { images } = moldImages(samples.map((sample) => sample.image), options.size, options.meanPixel);
  return { images, gtBoxes: gts.map((gt) => gt.boxes), gtMasks: gts.map((gt) => gt.miniMasks), gtClassIds: gts.map((gt) => gt.classIds) };
}

/** Boxes [n * 4] in the S x S frame -> original image pixels, clipped to the image. */
export function unmoldBoxes(boxes: Float32Array, meta: ImageMeta): Float32Array {
  const out = new Float32Array(boxes.length);
  const [top, left] = meta.window;
  for (let i = 0; i < boxes.length; i += 4) {
    out[i] = Math.min(Math.max((boxes[i]! - top) / meta.scale, 0), meta.originalHeight);
    out[i + 1] = Math.min(Math.max((boxes[i + 1]! - left) / meta.scale, 0), meta.originalWidth);
    out[i + 2] = Math.min(Math.max((boxes[i + 2]! - top) / meta.scale, 0), meta.originalHeight);
    out[i + 3] = Math.min(Math.max((boxes[i + 3]! - left) / meta.scale, 0), meta.originalWidth);
  }
  return out;
}

/**
 * Masks predicted for boxes in the S x S frame (probabilities [n * M * M]) -> binary masks at original size.
 * The mask is pasted with the box it was predicted for (unclipped, mapped to original pixels), so a box running
 * off the image still places its mask correctly.
 */
export function unmoldMasks(boxes: Float32Array, masks: Float32Array, maskSize: number, meta: ImageMeta, threshold: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const [top, left] = meta.window;
  const n = boxes.length / 4;
  for (let i = 0; i < n; i++) {
    const box = [
      (boxes[4 * i]! - top) / meta.scale,
      (boxes[4 * i + 1]! - left) / meta.scale,
      (boxes[4 * i + 2]! - top) / meta.scale,
      (boxes[4 * i + 3]! - left) / meta.scale,
    ];
    out.push(pasteMask(masks.subarray(i * maskSize * maskSize, (i + 1) * maskSize * maskSize), maskSize, box, meta.originalHeight, meta.originalWidth, threshold));
  }
  return out;
}
