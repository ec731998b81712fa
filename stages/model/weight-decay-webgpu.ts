// Matterport's L2 regulariser on webgpu in fewer dispatches (each costs ~56 us of JavaScript on the lent H100,
// whatever its size), with the same values: per decayed weight,
//   value     weightDecay / size(w) * sum(w^2), 7 weights per dispatch (kernels/webgpu/sum-of-squares.ts),
//             instead of a square and a mean per weight;
//   gradient  w * (dy * 2 * weightDecay / size(w)) as one program instead of two multiplies.
// ~5 dispatches per weight become ~2 (the recipe's ResNet-101 has ~250 decayed weights). cpu and wasm keep
// losses.ts' op-by-op form.
import * as tf from '@tensorflow/tfjs';
import { runElementwise } from './kernels/webgpu/elementwise-program.js';
import { sumOfSquares } from './kernels/webgpu/sum-of-squares.js';

const decayGradient = { name: 'weight_decay_gradient', inputs: ['w', 'dy'], uniforms: ['c'], body: 'let result = getWByOutputIndex(index) * (getDyByOutputIndex(index) * uniforms.c);' };

/** The regulariser's value and gradient, as losses.ts' decayOf computes them, in fewer webgpu dispatches. */
export function webgpuDecayOf(weightDecay: number): (...weights: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const weights = inputs.slice(0, -1) as tf.Tensor[];
    const value = sumOfSquares(weights, weights.map((w) => weightDecay / w.size));
    return {
      value,
      gradFunc: (dy: tf.Tensor) => weights.map((w) => runElementwise(decayGradient, [w, dy], [(2 * weightDecay) / w.size])),
    };
  });
}
