// Batch normalisation with frozen statistics (Matterport's TRAIN_BN = False: the recipe's whole backbone) whose
// gradient takes four dispatches on webgpu where tfjs' FusedBatchNorm gradient takes ~14 (a sub, a tile and
// five multiplies over the whole activation, the rsqrt chain, two sums). The recipe's ResNet-101 has 104 of them.
//
// y = (x - mean) * r * gamma + beta with r = rsqrt(var + eps); mean and var are constants here, so
//   dx = dy * gamma * r,   dgamma = sum(dy * (x - mean) * r),   dbeta = sum(dy)
// with the sums over the M = N*H*W positions of each channel as matMuls with a row of ones ([1, M] x [M, C]).
// The forward pass is tf.batchNorm itself (one dispatch), so the values are the stock op's.
import * as tf from '@tensorflow/tfjs';
import { runElementwise, type ElementwiseFormula } from './elementwise-program.js';

const DX: ElementwiseFormula = { name: 'bn_frozen_dx', inputs: ['Dy', 'Gamma', 'Variance'], uniforms: ['eps'],
  body: 'let result = getDyByOutputIndex(index) * getGammaByOutputIndex(index) * inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);' };
const DY_XHAT: ElementwiseFormula = { name: 'bn_frozen_dy_xhat', inputs: ['Dy', 'X', 'Mean', 'Variance'], uniforms: ['eps'],
  body: `let xhat = (getXByOutputIndex(index) - getMeanByOutputIndex(index)) * inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);
         let result = getDyByOutputIndex(index) * xhat;` };

// A row of ones per M, kept across steps (one [1, M] tensor per feature-map size, never freed).
const onesRows = new Map<number, tf.Tensor2D>();
function onesRow(m: number): tf.Tensor2D {
  let r = onesRows.get(m);
  if (!r || r.isDisposed) {
    r = tf.keep(tf.ones([1, m])) as tf.Tensor2D;
    onesRows.set(m, r);
  }
  return r;
}

/** tf.batchNorm(x, mean, variance, beta, gamma, epsilon) over the last axis, with mean/variance constant; webgpu only. */
export function batchNormFrozen(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const channels = x.shape[x.shape.length - 1]!;
  const m = x.size / channels;
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    save([input, scale]);
    return {
      value: tf.batchNorm(input, mean as tf.Tensor1D, variance as tf.Tensor1D, offset, scale, epsilon),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma] = saved as [tf.Tensor, tf.Tensor1D];
        const dy2 = tf.reshape(dy, [m, channels]);
        const dx = runElementwise(DX, [dy2, savedGamma, variance], [epsilon]);
        const ones = onesRow(m);
        const dyXhat = runElementwise(DY_XHAT, [dy2, tf.reshape(savedX, [m, channels]), mean, variance], [epsilon]);
        return [tf.reshape(dx, savedX.shape), tf.reshape(tf.matMul(ones, dyXhat), [channels]), tf.reshape(tf.matMul(ones, dy2), [channels])];
      },
    };
  });
  return normalise(x, gamma, beta);
}
