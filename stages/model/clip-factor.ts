// Keras' clipnorm as a tensor, never read back: min(1, clipNorm / global norm of the gradients) (a zero norm
// gives 1), for the asynchronous train step (webgpu in Node has no synchronous read).
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';
import { sumOfSquares } from './kernels/webgpu/sum-of-squares.js';

export function clipFactor(grads: readonly tf.Tensor[], clipNorm: number): tf.Scalar {
  if (grads.length === 0) return tf.scalar(1);
  // On webgpu the sums of squares are taken 7 gradients per dispatch (kernels/webgpu/sum-of-squares.ts) instead
  // of a square and a sum per gradient; elsewhere the square-and-sum of the synchronous path, for the same
  // arithmetic. One squared gradient alive at a time.
  if (tf.getBackend() === 'webgpu') {
    return tf.tidy(() => tf.minimum(1, tf.div(clipNorm, tf.sqrt(sumOfSquares(grads, grads.map(() => 1))))) as tf.Scalar);
  }
  const squares = grads.map((g) => tf.tidy(() => tf.sum(tf.square(g))));
  return tf.tidy(() => tf.minimum(1, tf.div(clipNorm, tf.sqrt(addAll(squares)))) as tf.Scalar);
}
