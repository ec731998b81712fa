// Gradients of Sum and Mean that broadcast dy on the device instead of multiplying it by a ones tensor.
//
// tfjs' stock gradFuncs compute dx = reshape(dy) * ones(x.shape) (Mean: / n as well), and `ones` is built as a
// JS array on the CPU: on the webgpu backend every batch-norm layer in training mode (tf.moments: two means
// over the whole activation) filled and uploaded a full activation-sized array each step — 1.6 s of a 3.8 s
// ResNet-50 step on an H100 (bench/device/webgpu-diagnose.ts, V8 profile), plus the staging buffers of the
// uploads. broadcastTo (the Tile kernel) produces the same values where the data lives, with no upload.
// The values are bit-identical to stock: x * 1 is x, and the division by n happens before instead of after
// the (exact) broadcast.
import * as tf from '@tensorflow/tfjs';

/** dy reshaped to x's rank with the reduced axes as 1. */
function expandedDy(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return tf.reshape(dy, shape);
}

const sumGradient: tf.GradConfig = {
  kernelName: tf.Sum,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const { axis } = attrs as unknown as tf.SumAttrs;
    return { x: () => tf.broadcastTo(tf.cast(expandedDy(dy as tf.Tensor, x, axis), 'float32'), x.shape) };
  },
};

const meanGradient: tf.GradConfig = {
  kernelName: tf.Mean,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const { axis } = attrs as unknown as tf.MeanAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const reduceSize = axes.reduce((n, a) => n * x.shape[a]!, 1);
    return { x: () => tf.broadcastTo(tf.div(expandedDy(dy as tf.Tensor, x, axis), reduceSize), x.shape) };
  },
};

/** Replaces the Sum and Mean gradients for every backend (gradients are global in tfjs). Idempotent. */
export function registerReductionGradients(): void {
  if (tf.getGradient(tf.Sum) !== sumGradient) tf.registerGradient(sumGradient);
  if (tf.getGradient(tf.Mean) !== meanGradient) tf.registerGradient(meanGradient);
}
