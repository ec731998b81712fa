// Matterport's L2 regulariser on webgpu in fewer dispatches (each costs ~56 us of JavaScript on the lent H100,
// whatever its size), with the same values: per decayed weight,
//   value     sum(w^2) as one dot product (a matMul) instead of a square and a mean; the weights' terms
//             scaled by weightDecay / size(w) and added in one program per 7 (WebGPU binds 8 buffers per shader);
//   gradient  w * (dy * 2 * weightDecay / size(w)) as one program instead of two multiplies.
// ~5 dispatches per weight become ~3 (the recipe's ResNet-101 has ~250 decayed weights). cpu and wasm keep
// losses.ts' op-by-op form.
import * as tf from '@tensorflow/tfjs';
import { addAll } from './add-all.js';
import { runElementwise } from './kernels/webgpu/elementwise-program.js';

const GROUP = 7;
const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

/** sum over k of scales[k] * squares[k] (scalars [1, 1]), one program per group of 7. */
function scaledSum(squares: tf.Tensor[], scales: number[]): tf.Scalar {
  const groups: tf.Tensor[] = [];
  for (let i = 0; i < squares.length; i += GROUP) {
    const inputs = squares.slice(i, i + GROUP);
    const used = names.slice(0, inputs.length);
    groups.push(runElementwise({
      name: `weight_decay_sum_${inputs.length}`,
      inputs: used,
      uniforms: used.map((n) => `s${n}`),
      body: `let result = ${used.map((n) => `get${n.toUpperCase()}ByOutputIndex(index) * uniforms.s${n}`).join(' + ')};`,
    }, inputs, scales.slice(i, i + GROUP)));
  }
  return tf.tidy(() => tf.reshape(addAll(groups), []) as tf.Scalar);
}

const decayGradient = { name: 'weight_decay_gradient', inputs: ['w', 'dy'], uniforms: ['c'], body: 'let result = getWByOutputIndex(index) * (getDyByOutputIndex(index) * uniforms.c);' };

/** The regulariser's value and gradient, as losses.ts' decayOf computes them, in fewer webgpu dispatches. */
export function webgpuDecayOf(weightDecay: number): (...weights: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const weights = inputs.slice(0, -1) as tf.Tensor[];
    const squares = weights.map((w) => tf.tidy(() => tf.matMul(w.reshape([1, -1]), w.reshape([-1, 1]))));
    const value = scaledSum(squares, weights.map((w) => weightDecay / w.size));
    tf.dispose(squares);
    return {
      value,
      gradFunc: (dy: tf.Tensor) => weights.map((w) => runElementwise(decayGradient, [w, dy], [(2 * weightDecay) / w.size])),
    };
  });
}
