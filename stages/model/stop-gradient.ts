// tf.stopGradient does not exist in tfjs: an identity whose gradient is zero. Used where a value computed by the
// network is used as a constant input (proposal boxes fed to ROIAlign), as Matterport's tf.stop_gradient.
import * as tf from '@tensorflow/tfjs';

const identityWithZeroGradient = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = inputs[0] as tf.Tensor;
  return { value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
});

/** x unchanged in the forward pass; no gradient flows back through it. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return identityWithZeroGradient(x) as T;
}
