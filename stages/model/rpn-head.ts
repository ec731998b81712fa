// Region proposal head (Matterport's rpn_graph), shared by every pyramid level: a 3x3 relu conv
// `rpn_conv_shared`, then 1x1 convs `rpn_class_raw` (2 logits per anchor: background, foreground) and
// `rpn_bbox_pred` (4 deltas per anchor: dy, dx, log dh, log dw). The two 1x1 convs run as one conv over their
// concatenated kernels (fewer, larger ops on a 2-core CPU); their variables keep Matterport's names and shapes.
import * as tf from '@tensorflow/tfjs';
import type { ParameterStore } from './params.js';
import { conv2d, linear } from './layers.js';

export interface RpnOutput {
  /** [B, A, 2] (background, foreground) logits. */
  logits: tf.Tensor3D;
  /** [B, A, 4] box deltas (dy, dx, dh, dw), to be multiplied by the RPN bbox std dev. */
  deltas: tf.Tensor3D;
}

/**
 * features: [p2, …, p6], each [B, h_l, w_l, C]. Returns A = sum over levels of ceil(h_l/s)*ceil(w_l/s)*anchorsPerLocation
 * rows, ordered level-major, then row y, column x, then anchor (ratio) — the order of anchors.ts.
 * `channels`: width of the shared conv (Matterport: 512). `anchorStride` s: anchors on every s-th cell (1).
 */
export function rpnHead(
  store: ParameterStore,
  features: readonly tf.Tensor4D[],
  anchorsPerLocation: number,
  channels: number,
  anchorStride = 1,
): RpnOutput {
  if (features.length === 0) throw new Error('rpnHead: no feature maps');
  const inChannels = features[0]!.shape[3];
  for (const [i, f] of features.entries()) {
    if (f.shape[3] !== inChannels) throw new Error(`rpnHead: level ${i} has ${f.shape[3]} channels, level 0 has ${inChannels}`);
  }
  const k = anchorsPerLocation;
  const classKernel = store.variable('rpn_class_raw/kernel', [1, 1, channels, 2 * k], 'glorot-uniform');
  const classBias = store.variable('rpn_class_raw/bias', [2 * k], 'zeros');
  const boxKernel = store.variable('rpn_bbox_pred/kernel', [1, 1, channels, 4 * k], 'glorot-uniform');
  const boxBias = store.variable('rpn_bbox_pred/bias', [4 * k], 'zeros');
  const kernel = tf.concat([classKernel, boxKernel], 3).reshape([channels, 6 * k]) as tf.Tensor2D; // [C', 6k]
  const bias = tf.concat([classBias, boxBias]) as tf.Tensor1D; // [6k]

  const batch = features[0]!.shape[0];
  const perLevel = features.map((feature) => {
    const shared = conv2d(store, 'rpn_conv_shared', feature, {
      filters: channels,
      kernelSize: 3,
      strides: anchorStride,
      padding: 'same',
      activation: 'relu',
    }); // [B, h, w, C']
    const [, h, w] = shared.shape;
    // A 1x1 conv is a matmul over the pixels: [B*h*w, C'] x [C', 6k] -> [B, h*w, 6k].
    return linear(shared.reshape([batch * h * w, channels]), kernel, bias).reshape([batch, h * w, 6 * k]);
  });
  const all = (perLevel.length === 1 ? perLevel[0]! : tf.concat(perLevel, 1)) as tf.Tensor3D; // [B, cells, 6k]
  const cells = all.shape[1];
  // Per cell the channels are [anchor0 (bg, fg), anchor1 (bg, fg), …] then [anchor0 (4 deltas), …], so a
  // row-major reshape yields y, x, anchor order.
  const logits = all.slice([0, 0, 0], [batch, cells, 2 * k]).reshape([batch, cells * k, 2]) as tf.Tensor3D;
  const deltas = all.slice([0, 0, 2 * k], [batch, cells, 4 * k]).reshape([batch, cells * k, 4]) as tf.Tensor3D;
  return { logits, deltas };
}
