// Keras' clipnorm as a tensor, never read back: min(1, clipNorm / global norm of the gradients) (a zero norm
// gives 1), for the asynchronous train step (webgpu in Node has no synchronous read).
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';

export function clipFactor(grads: readonly tf.Tensor[], clipNorm: number): tf.Scalar {
  if (grads.length === 0) return tf.scalar(1);
  // On webgpu each gradient's sum of squares is one dot product (one matMul dispatch) instead of a square and a
  // sum; elsewhere the square-and-sum of the synchronous path, for the same arithmetic. One squared gradient
  // alive at a time.
  const dot = tf.getBackend() === 'webgpu';
  const squares = grads.map((g) => tf.tidy(() => (dot ? tf.reshape(tf.matMul(g.reshape([1, -1]), g.reshape([-1, 1])), []) : tf.sum(tf.square(g)))));
  return tf.tidy(() => tf.minimum(1, tf.div(clipNorm, tf.sqrt(addAll(squares)))) as tf.Scalar);
}
