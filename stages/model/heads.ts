// The per-ROI heads of Matterport's Mask R-CNN, with its layer names. ROIs are flattened into the batch
// dimension N (no TimeDistributed), so batch norm statistics, when trained, are over all ROIs of the batch.
import * as tf from '@tensorflow/tfjs';
import type { ParameterStore } from './params.js';
import { batchNorm, conv2d, conv2dTranspose, dense, linear } from './layers.js';

export interface BoxHeadOutput {
  /** [N, numClasses] class logits (softmax at loss / detection time). */
  classLogits: tf.Tensor2D;
  /** [N, numClasses, 4] box deltas per class (dy, dx, dh, dw), to be multiplied by the bbox std dev. */
  deltas: tf.Tensor3D;
}

/**
 * fpn_classifier_graph: a P x P 'valid' conv to fcDim (the "FC" layer mrcnn_class_conv1, kernel
 * [P, P, C, fcDim]), BN, relu, a 1x1 conv mrcnn_class_conv2, BN, relu, then dense mrcnn_class_logits and
 * mrcnn_bbox_fc. A P x P valid conv on a P x P input is a matmul of the flattened input with the reshaped kernel,
 * which is how we run it (one large op).
 * pooled: [N, P, P, C] (P = 7 in the recipe).
 */
export function boxHead(
  store: ParameterStore,
  pooled: tf.Tensor4D,
  numClasses: number,
  fcDim: number,
  training: boolean,
): BoxHeadOutput {
  const [n, ph, pw, c] = pooled.shape;
  const conv1 = store.variable('mrcnn_class_conv1/kernel', [ph, pw, c, fcDim], 'glorot-uniform');
  const bias1 = store.variable('mrcnn_class_conv1/bias', [fcDim], 'zeros') as tf.Tensor1D;
  const conv2 = store.variable('mrcnn_class_conv2/kernel', [1, 1, fcDim, fcDim], 'glorot-uniform');
  const bias2 = store.variable('mrcnn_class_conv2/bias', [fcDim], 'zeros') as tf.Tensor1D;

  let x = linear(pooled.reshape([n, ph * pw * c]), conv1.reshape([ph * pw * c, fcDim]), bias1);
  x = batchNorm(store, 'mrcnn_class_bn1', x, { training, relu: true });
  x = linear(x, conv2.reshape([fcDim, fcDim]), bias2);
  const shared = batchNorm(store, 'mrcnn_class_bn2', x, { training, relu: true }); // [N, fcDim]

  const classLogits = dense(store, 'mrcnn_class_logits', shared, { units: numClasses }); // [N, numClasses]
  const deltas = dense(store, 'mrcnn_bbox_fc', shared, { units: numClasses * 4 }).reshape([n, numClasses, 4]) as tf.Tensor3D;
  return { classLogits, deltas };
}

/**
 * build_fpn_mask_graph: 4 x (3x3 conv `channels` mrcnn_mask_conv{i}, BN mrcnn_mask_bn{i}, relu), a 2x2 stride-2
 * transposed conv mrcnn_mask_deconv with relu, and a 1x1 conv mrcnn_mask to one logit map per class (the sigmoid
 * is applied by the loss / at detection time).
 * pooled: [N, P, P, C] (P = 14) -> [N, 2P, 2P, numClasses] logits.
 */
export function maskHead(
  store: ParameterStore,
  pooled: tf.Tensor4D,
  numClasses: number,
  channels: number,
  training: boolean,
): tf.Tensor4D {
  let x = pooled;
  for (let i = 1; i <= 4; i++) {
    x = conv2d(store, `mrcnn_mask_conv${i}`, x, { filters: channels, kernelSize: 3, padding: 'same' });
    x = batchNorm(store, `mrcnn_mask_bn${i}`, x, { training, relu: true });
  }
  x = tf.relu(conv2dTranspose(store, 'mrcnn_mask_deconv', x, { filters: channels, kernelSize: 2, strides: 2 }));
  return conv2d(store, 'mrcnn_mask', x, { filters: numClasses, kernelSize: 1 }); // [N, 2P, 2P, numClasses]
}
