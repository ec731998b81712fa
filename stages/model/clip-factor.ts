// Keras' clipnorm as a tensor, never read back: min(1, clipNorm / global norm of the gradients) (a zero norm
// gives 1). The train step's one clipping on every backend (the optimizer multiplies it in; webgpu in Node could
// not read a norm back synchronously anyway).
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';
import { sumOfSquares, type DecayPart } from './kernels/webgpu/sum-of-squares.js';

/**
 * `decay[k]`, where given, is a weight-decay gradient c * w still to be added to grads[k] (webgpu folds it into
 * the optimizer's update): the norm is that of the sums.
 */
export function clipFactor(grads: readonly tf.Tensor[], clipNorm: number, decay: readonly (DecayPart | undefined)[] = []): tf.Scalar {
  if (grads.length === 0) return tf.scalar(1);
  // On webgpu the sums of squares are taken 7 gradients per dispatch (kernels/webgpu/sum-of-squares.ts) instead
  // of a square and a sum per gradient; elsewhere a square and a sum per gradient, one squared gradient alive at
  // a time.
  if (tf.getBackend() === 'webgpu') {
    return tf.tidy(() => tf.minimum(1, tf.div(clipNorm, tf.sqrt(sumOfSquares(grads, grads.map(() => 1), decay)))) as tf.Scalar);
  }
  const squares = grads.map((g, k) => tf.tidy(() => {
    const part = decay[k];
    return tf.sum(tf.square(part ? tf.add(g, tf.mul(part.weight, part.coefficient)) : g));
  }));
  return tf.tidy(() => tf.minimum(1, tf.div(clipNorm, tf.sqrt(addAll(squares)))) as tf.Scalar);
}
