// Batch normalisation in training mode (batch statistics), forward and backward in ten dispatches on webgpu
// where tf.layers' batchNormalization takes forty-four (counted on lavapipe: tf.moments' transposes and
// reductions, the FusedBatchNorm gradient's tiles, and the gradient back through the moments, each op one
// dispatch at ~56 us of JavaScript on the lent H100). A ResNet-50 has 53 of them.
//
// Same arithmetic as tf.moments + tf.batchNorm (biased variance, as tf.layers):
//   mean = sum(x) / M, var = sum((x - mean)^2) / M over the M = N*H*W positions of each channel,
//   y = (x - mean) * rsqrt(var + eps) * gamma + beta,
// and the gradient of y with mean and var as functions of x (the standard closed form):
//   xhat = (x - mean) * r, r = rsqrt(var + eps)
//   dbeta = sum(dy), dgamma = sum(dy * xhat)
//   dx = gamma * r * (dy - dbeta / M - xhat * dgamma / M)
// Sums over M run as one matMul with a row of ones ([1, M] x [M, C]): no transpose to bring the channel axis
// innermost, which tf.sum over axes [0, 1, 2] of NHWC needs.
import * as tf from '@tensorflow/tfjs';
import { constantRow } from './constant-rows.js';
import { runElementwise, type ElementwiseFormula } from './elementwise-program.js';

const CENTERED_SQUARE: ElementwiseFormula = { name: 'bn_centered_square', inputs: ['X', 'Mean'], uniforms: [],
  body: 'let d = getXByOutputIndex(index) - getMeanByOutputIndex(index); let result = d * d;' };
const DY_XHAT: ElementwiseFormula = { name: 'bn_dy_xhat', inputs: ['Dy', 'X', 'Mean', 'Variance'], uniforms: ['eps'],
  body: `let xhat = (getXByOutputIndex(index) - getMeanByOutputIndex(index)) * inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);
         let result = getDyByOutputIndex(index) * xhat;` };
const DX: ElementwiseFormula = { name: 'bn_dx', inputs: ['Dy', 'X', 'Mean', 'Variance', 'Gamma', 'SumDy', 'SumDyXhat'], uniforms: ['eps', 'invM'],
  body: `let r = inverseSqrt(getVarianceByOutputIndex(index) + uniforms.eps);
         let xhat = (getXByOutputIndex(index) - getMeanByOutputIndex(index)) * r;
         let result = getGammaByOutputIndex(index) * r * (getDyByOutputIndex(index) - getSumDyByOutputIndex(index) * uniforms.invM
                      - xhat * (getSumDyXhatByOutputIndex(index) * uniforms.invM));` };
const MOVING_AVERAGE: ElementwiseFormula = { name: 'bn_moving_average', inputs: ['Moving', 'Value'], uniforms: ['decay', 'scale'],
  body: 'let moving = getMovingByOutputIndex(index); let result = moving - (moving - getValueByOutputIndex(index) * uniforms.scale) * uniforms.decay;' };

export interface BatchNormTrainingResult {
  /** The normalised input, x's shape. */
  y: tf.Tensor;
  /** Batch mean and (biased) variance per channel, [C]: for the moving averages; not differentiable. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** Batch norm of x ([..., C], float32) with batch statistics over every axis but the last; webgpu only. */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormTrainingResult {
  const channels = x.shape[x.shape.length - 1]!;
  const m = x.size / channels;
  const { mean, variance } = tf.tidy(() => {
    const x2 = tf.reshape(x, [m, channels]);
    const mean = tf.reshape(tf.matMul(constantRow(m, 1 / m), x2), [channels]) as tf.Tensor1D;
    const squares = runElementwise(CENTERED_SQUARE, [x2, mean], []);
    return { mean, variance: tf.reshape(tf.matMul(constantRow(m, 1 / m), squares), [channels]) as tf.Tensor1D };
  });
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    // The statistics are saved too (the engine keeps saved tensors until the backward pass has used them): the
    // caller may dispose its own mean and variance once the moving averages are updated.
    save([input, scale, mean, variance]);
    return {
      value: tf.batchNorm(input, mean, variance, offset as tf.Tensor1D, scale as tf.Tensor1D, epsilon),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedMean, savedVariance] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const x2 = tf.reshape(savedX, [m, channels]);
        const dy2 = tf.reshape(dy, [m, channels]);
        const ones = constantRow(m, 1);
        const sumDy = tf.reshape(tf.matMul(ones, dy2), [channels]);
        const sumDyXhat = tf.reshape(tf.matMul(ones, runElementwise(DY_XHAT, [dy2, x2, savedMean, savedVariance], [epsilon])), [channels]);
        const dx = runElementwise(DX, [dy2, x2, savedMean, savedVariance, savedGamma, sumDy, sumDyXhat], [epsilon, 1 / m]);
        return [tf.reshape(dx, savedX.shape), sumDyXhat, sumDy];
      },
    };
  });
  return { y: normalise(x, gamma, beta), mean, variance };
}

/**
 * moving <- moving - (moving - value * scale) * (1 - momentum), as tf.layers' batchNormalization updates its
 * statistics (scale 1) or Keras' does its moving variance (scale M / (M - 1): the unbiased batch variance); one dispatch.
 */
export function movingAverage(moving: tf.Tensor, value: tf.Tensor, momentum: number, scale = 1): tf.Tensor1D {
  return runElementwise(MOVING_AVERAGE, [moving, value], [1 - momentum, scale]) as tf.Tensor1D;
}
