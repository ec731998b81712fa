// The five Mask R-CNN losses (named as torchvision's) plus weight decay, each a scalar tensor. Means follow
// Matterport: cross-entropies average over the sampled anchors/ROIs, smooth-L1 over every coordinate of the
// positives, mask BCE over every pixel of the positives. Nothing to average over (no positive, no ROI) -> 0,
// never NaN, so an image without nuclei trains only the background.
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';
import { sumOfSquares } from './kernels/webgpu/sum-of-squares.js';
import { webgpuDecayOf } from './weight-decay-webgpu.js';

export interface Losses {
  loss_objectness: number;
  loss_rpn_box_reg: number;
  loss_classifier: number;
  loss_box_reg: number;
  loss_mask: number;
  loss_weight_decay: number;
  loss_total: number;
}

export const lossNames = ['loss_objectness', 'loss_rpn_box_reg', 'loss_classifier', 'loss_box_reg', 'loss_mask', 'loss_weight_decay'] as const;
export type LossTensors = Record<(typeof lossNames)[number], tf.Scalar>;

/** Mean softmax cross-entropy: logits [N, C], labels Int32Array [N] in 0..C-1. Empty -> 0. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  const [n, c] = logits.shape;
  if (labels.length !== n) throw new Error(`cross-entropy: ${labels.length} labels for ${n} logits`);
  if (n === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), c);
    return tf.neg(tf.mean(tf.sum(oneHot.mul(tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/** Mean smooth-L1 (beta 1: 0.5 d^2 below 1, |d| - 0.5 above) over every element. Empty -> 0. */
export function smoothL1(predicted: tf.Tensor, target: tf.Tensor): tf.Scalar {
  if (predicted.size !== target.size) throw new Error(`smooth-L1: ${predicted.size} predictions for ${target.size} targets`);
  if (predicted.size === 0) return tf.scalar(0);
  return tf.tidy(() => {
    // With c = min(d, 1): 0.5 c^2 + (d - c) is both branches at once, and differentiable (no tf.where on a mask).
    const d = tf.abs(predicted.reshape([-1]).sub(target.reshape([-1])));
    const c = tf.minimum(d, 1);
    return tf.mean(c.square().mul(0.5).add(d.sub(c))) as tf.Scalar;
  });
}

/** Mean binary cross-entropy on logits (numerically stable form). Empty -> 0. */
export function sigmoidCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  if (logits.size !== targets.size) throw new Error(`BCE: ${logits.size} logits for ${targets.size} targets`);
  if (logits.size === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const x = logits.reshape([-1]);
    const z = targets.reshape([-1]);
    // max(x, 0) - x z + log(1 + exp(-|x|))
    return tf.mean(tf.relu(x).sub(x.mul(z)).add(tf.log1p(tf.exp(tf.neg(tf.abs(x)))))) as tf.Scalar;
  });
}

/**
 * Picks each row's class-specific slice: values [N, C, ...rest], classIds Int32Array [N] -> [N, ...rest].
 * (tf.gather on the flattened [N * C, ...] rows; differentiable.)
 */
export function selectClass(values: tf.Tensor, classIds: Int32Array): tf.Tensor {
  const [n, c, ...rest] = values.shape as number[];
  if (classIds.length !== n) throw new Error(`selectClass: ${classIds.length} class ids for ${n} rows`);
  const rows = new Int32Array(n!);
  for (let i = 0; i < n!; i++) rows[i] = i * c! + classIds[i]!;
  return tf.tidy(() => tf.gather(values.reshape([n! * c!, ...rest]), tf.tensor1d(rows, 'int32')));
}

/** Box-head regression: deltas [P, C, 4] of the positive ROIs, their classes, targets Float32Array [P * 4]. */
export function boxRegressionLoss(deltas: tf.Tensor3D, classIds: Int32Array, targets: Float32Array): tf.Scalar {
  if (classIds.length === 0) return tf.scalar(0);
  return tf.tidy(() => smoothL1(selectClass(deltas, classIds), tf.tensor2d(targets, [classIds.length, 4])));
}

/** Mask BCE: logits [P, M, M, C] of the positive ROIs, their classes, targets Float32Array [P * M * M] (0/1). */
export function maskLoss(logits: tf.Tensor4D, classIds: Int32Array, targets: Float32Array): tf.Scalar {
  if (classIds.length === 0) return tf.scalar(0);
  const [p, m] = logits.shape;
  return tf.tidy(() => {
    const perClass = logits.transpose([0, 3, 1, 2]); // [P, C, M, M]
    return sigmoidCrossEntropy(selectClass(perClass, classIds), tf.tensor3d(targets, [p, m, m]));
  });
}

/** Matterport's L2 regulariser: weightDecay * sum over weights of mean(w^2) (Keras l2 divided by the weight's size). */
export function weightDecayLoss(weights: tf.Variable[], weightDecay: number): tf.Scalar {
  if (weights.length === 0 || weightDecay === 0) return tf.scalar(0);
  const decay = tf.getBackend() === 'webgpu' ? webgpuDecayOf(weightDecay) : decayOf(weightDecay);
  return decay(...weights) as tf.Scalar;
}

/** The regulariser's value alone, for a step that adds its gradient elsewhere (webgpu: in the optimizer). */
export function weightDecayValue(weights: tf.Variable[], weightDecay: number): tf.Scalar {
  if (weights.length === 0 || weightDecay === 0) return tf.scalar(0);
  if (tf.getBackend() === 'webgpu') return sumOfSquares(weights, weights.map((w) => weightDecay / w.size));
  return tf.tidy(() => addAll(weights.map((w) => tf.mean(tf.square(w)))).mul(weightDecay) as tf.Scalar);
}

/**
 * The regulariser as one op with its gradient written out (d/dw = weightDecay * 2w / size(w)): tfjs' own
 * gradient of square + mean would keep a squared copy of every weight (the model's size again) until backprop.
 */
function decayOf(weightDecay: number): (...weights: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const weights = inputs.slice(0, -1) as tf.Tensor[];
    // One weight at a time, so at most one squared copy exists at once.
    const means = weights.map((w) => tf.tidy(() => tf.mean(tf.square(w))));
    const value = tf.tidy(() => addAll(means).mul(weightDecay) as tf.Scalar);
    tf.dispose(means);
    return {
      value,
      gradFunc: (dy: tf.Tensor) => weights.map((w) => tf.tidy(() => w.mul(dy.mul((2 * weightDecay) / w.size)))),
    };
  });
}
