// Batch normalisation with frozen statistics (Matterport's TRAIN_BN = False: the recipe's whole backbone) whose
// gradient takes four dispatches on webgpu where tfjs' FusedBatchNorm gradient takes ~14 (a sub, a tile and
// five multiplies over the whole activation, the rsqrt chain, two sums). The recipe's ResNet-101 has 104 of them.
//
// y = (x - mean) * r * gamma + beta with r = rsqrt(var + eps); mean and var are constants here, so
//   dx = dy * gamma * r,   dgamma = sum(dy * (x - mean) * r),   dbeta = sum(dy)
// with the sums over the M = N*H*W positions of each channel as matMuls with a row of ones ([1, M] x [M, C]).
// The forward pass is tf.batchNorm itself (one dispatch), so the values are the stock op's. With `relu`, the ReLU
// that follows most batch norms is in the same program (tfjs' batch-norm expression, then the ReLU: one dispatch,
// not two), and its gradient mask is recomputed from x in the backward pass (dz = dy * step(z), then as above
// with dz: five dispatches, as the separate ReLU gradient and batch-norm gradient took).
import * as tf from '@tensorflow/tfjs';
import { constantRow } from './constant-rows.js';
import { runElementwise, type ElementwiseFormula } from './elementwise-program.js';

const DX: ElementwiseFormula = { name: 'bn_frozen_dx', inputs: ['Dy', 'Gamma', 'Variance'], uniforms: ['eps'],
  body: 'let result = getDyByOutputIndex(index) * getGammaByOutputIndex(index) * inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);' };
const DY_XHAT: ElementwiseFormula = { name: 'bn_frozen_dy_xhat', inputs: ['Dy', 'X', 'Mean', 'Variance'], uniforms: ['eps'],
  body: `let xhat = (getXByOutputIndex(index) - getMeanByOutputIndex(index)) * inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);
         let result = getDyByOutputIndex(index) * xhat;` };

// z as tfjs' BatchNormProgram computes it (so the mask matches the forward's value bit for bit).
const Z = `let inv = getGammaByOutputIndex(index) * inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);
           let z = dot(vec3<f32>(getXByOutputIndex(index), -getMeanByOutputIndex(index), getBetaByOutputIndex(index)), vec3<f32>(inv, inv, 1.0));`;
const FORWARD_RELU: ElementwiseFormula = { name: 'bn_frozen_relu', inputs: ['X', 'Mean', 'Variance', 'Gamma', 'Beta'], uniforms: ['eps'],
  body: `${Z} let result = select(z, 0.0, z < 0.0);` };
// tfjs' step as relu-gradient.ts: 1 where z > 0, 0 elsewhere, NaN through.
const DZ: ElementwiseFormula = { name: 'bn_frozen_relu_dz', inputs: ['Dy', 'X', 'Mean', 'Variance', 'Gamma', 'Beta'], uniforms: ['eps'],
  body: `${Z} let result = getDyByOutputIndex(index) * select(select(0.0, 1.0, z > 0.0), z, isnan(z));` };

/**
 * tf.batchNorm(x, mean, variance, beta, gamma, epsilon) over the last axis, with mean/variance constant, and
 * then tf.relu where `relu`; webgpu only.
 */
export function batchNormFrozen(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, relu = false): tf.Tensor {
  const channels = x.shape[x.shape.length - 1]!;
  const m = x.size / channels;
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    save(relu ? [input, scale, offset] : [input, scale]);
    return {
      value: relu
        ? runElementwise(FORWARD_RELU, [input, mean, variance, scale, offset], [epsilon])
        : tf.batchNorm(input, mean as tf.Tensor1D, variance as tf.Tensor1D, offset, scale, epsilon),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedBeta] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D | undefined];
        const x2 = tf.reshape(savedX, [m, channels]);
        const upstream = tf.reshape(dy, [m, channels]);
        const dz = savedBeta ? runElementwise(DZ, [upstream, x2, mean, variance, savedGamma, savedBeta], [epsilon]) : upstream;
        const dx = runElementwise(DX, [dz, savedGamma, variance], [epsilon]);
        const ones = constantRow(m, 1);
        const dzXhat = runElementwise(DY_XHAT, [dz, x2, mean, variance], [epsilon]);
        return [tf.reshape(dx, savedX.shape), tf.reshape(tf.matMul(ones, dzXhat), [channels]), tf.reshape(tf.matMul(ones, dz), [channels])];
      },
    };
  });
  return normalise(x, gamma, beta);
}
