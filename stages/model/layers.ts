// Layers as functions of (store, name, input): each asks the ParameterStore for its Keras-named variables
// (`<name>/kernel`, `<name>/bias`, `<name>/gamma`, …) and applies them. All tensors are NHWC.
import * as tf from '@tensorflow/tfjs';
import type { ParameterStore } from './params.js';
import { batchNormFrozenWasm, batchNormFrozenWasmAvailable } from './kernels/native/batch-norm-frozen.js';
import { nativeTransposedProducts } from './kernels/native/wasm-blas-kernels.js';
import { batchNormFrozen } from './kernels/webgpu/batch-norm-frozen.js';
import { batchNormTraining, movingAverage } from './kernels/webgpu/batch-norm-training.js';

export type Padding = 'same' | 'valid';
export type Activation = 'linear' | 'relu';

export interface Conv2dOptions {
  filters: number;
  kernelSize: number;
  strides?: number;
  padding?: Padding;
  useBias?: boolean;
  /** Fused into the conv where the backend can (tf.fused.conv2d). */
  activation?: Activation;
  /**
   * The input usually needs no gradient (the image): a plain conv and a bias add, whose backward computes the
   * input's gradient only when something asks for it. tf.fused.conv2d's backward always computes it (for the
   * stem's 7x7 conv, an image-sized Conv2DBackpropInput per step, 90-190 ms on wasm under load).
   */
  constantInput?: boolean;
}

/** Keras Conv2D. x: [B, H, W, Cin] -> [B, H', W', filters]; kernel [k, k, Cin, filters], bias [filters]. */
export function conv2d(store: ParameterStore, name: string, x: tf.Tensor4D, options: Conv2dOptions): tf.Tensor4D {
  const { filters, kernelSize, strides = 1, padding = 'same', useBias = true, activation = 'linear' } = options;
  const inChannels = x.shape[3];
  const kernel = store.variable(`${name}/kernel`, [kernelSize, kernelSize, inChannels, filters], 'glorot-uniform') as tf.Tensor4D;
  const bias = useBias ? (store.variable(`${name}/bias`, [filters], 'zeros') as tf.Tensor1D) : undefined;
  if (options.constantInput) {
    const y = tf.conv2d(x, kernel, strides, padding);
    const biased: tf.Tensor4D = bias ? tf.add(y, bias) : y;
    return activation === 'relu' ? tf.relu(biased) : biased;
  }
  return tf.fused.conv2d({ x, filter: kernel, strides, pad: padding, bias, activation });
}

export interface BatchNormOptions {
  /**
   * true: normalise with the batch's statistics and update the moving averages; false: use the frozen moving
   * statistics (Matterport's TRAIN_BN = False, and inference). gamma/beta train either way.
   */
  training: boolean;
  momentum?: number;
  epsilon?: number;
  /** tf.relu of the result (one program with the frozen batch norm on webgpu). */
  relu?: boolean;
}

/**
 * Keras BatchNormalization over the last axis. x: [..., C] -> same shape. Variables gamma (ones), beta (zeros),
 * moving_mean (zeros), moving_variance (ones); the moving statistics are not trainable and gamma/beta are not
 * weight-decayed. Keras' default epsilon 1e-3 is what the ImageNet ResNet50 weights were trained with.
 */
export function batchNorm<T extends tf.Tensor>(store: ParameterStore, name: string, x: T, options: BatchNormOptions): T {
  const { training, relu = false } = options;
  if (relu && !training && x.size > 0 && (tf.getBackend() === 'webgpu' || batchNormFrozenWasmAvailable())) return batchNormLayer(store, name, x, options, true);
  const y = batchNormLayer(store, name, x, options, false);
  return relu ? tf.relu(y) : y;
}

/** batchNorm without its ReLU, or (`fusedRelu`: webgpu or wasm's native kernels, frozen statistics) with it in the same pass. */
function batchNormLayer<T extends tf.Tensor>(store: ParameterStore, name: string, x: T, options: BatchNormOptions, fusedRelu: boolean): T {
  const { training, momentum = 0.99, epsilon = 1e-3 } = options;
  const channels = x.shape[x.shape.length - 1]!;
  const gamma = store.variable(`${name}/gamma`, [channels], 'ones', { decay: false });
  const beta = store.variable(`${name}/beta`, [channels], 'zeros', { decay: false });
  const movingMean = store.variable(`${name}/moving_mean`, [channels], 'zeros', { trainable: false });
  const movingVariance = store.variable(`${name}/moving_variance`, [channels], 'ones', { trainable: false });
  // With no elements (no ROIs) there are no batch statistics: fall back to the frozen ones.
  if (!training || x.size === 0) {
    // webgpu: the same forward op, its gradient in 4 dispatches instead of ~14 (kernels/webgpu/batch-norm-frozen.ts).
    if (tf.getBackend() === 'webgpu' && x.size > 0) return batchNormFrozen(x, movingMean, movingVariance, gamma, beta, epsilon, fusedRelu) as T;
    // wasm: forward and gradient one pass each on both cores (kernels/native/batch-norm-frozen.ts).
    if (x.size > 0 && batchNormFrozenWasmAvailable()) return batchNormFrozenWasm(x, movingMean, movingVariance, gamma, beta, epsilon, fusedRelu) as T;
    return tf.batchNorm(x, movingMean, movingVariance, beta, gamma, epsilon) as T;
  }

  const count = x.size / channels;
  if (tf.getBackend() === 'webgpu') {
    // The same arithmetic in ~10 dispatches instead of ~44 (kernels/webgpu/batch-norm-training.ts).
    const { y, mean, variance } = batchNormTraining(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, epsilon);
    tf.tidy(() => {
      movingMean.assign(movingAverage(movingMean, mean, momentum));
      movingVariance.assign(movingAverage(movingVariance, variance, momentum, count > 1 ? count / (count - 1) : 1));
    });
    tf.dispose([mean, variance]);
    return y as T;
  }
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes); // [C] each, biased variance as Keras uses to normalise
  // Keras updates the moving variance with the unbiased batch variance. (The update is recorded on a gradient
  // tape when one is active, but nothing the loss depends on reads it, so no gradient flows through it.)
  tf.tidy(() => {
    const unbiased = count > 1 ? variance.mul(count / (count - 1)) : variance;
    movingMean.assign(movingMean.mul(momentum).add(mean.mul(1 - momentum)));
    movingVariance.assign(movingVariance.mul(momentum).add(unbiased.mul(1 - momentum)));
  });
  return tf.batchNorm(x, mean, variance, beta, gamma, epsilon) as T;
}

export interface DenseOptions {
  units: number;
  useBias?: boolean;
}

/** Keras Dense. x: [N, in] -> [N, units]; kernel [in, units], bias [units]. */
export function dense(store: ParameterStore, name: string, x: tf.Tensor2D, options: DenseOptions): tf.Tensor2D {
  const { units, useBias = true } = options;
  const kernel = store.variable(`${name}/kernel`, [x.shape[1], units], 'glorot-uniform') as tf.Tensor2D;
  const bias = useBias ? (store.variable(`${name}/bias`, [units], 'zeros') as tf.Tensor1D) : undefined;
  return linear(x, kernel, bias);
}

/**
 * x [N, K] @ w [K, M] (+ bias [M]) -> [N, M], with a gradient that transposes explicitly: tfjs' own matMul
 * gradient multiplies with transpose flags, which the wasm backend runs ~10x slower than transpose + matMul
 * (on the OpenBLAS kernels the flags are free, and the gradient uses them).
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  if (bias) return linearWithBias(x, w, bias) as tf.Tensor2D;
  return linearNoBias(x, w) as tf.Tensor2D;
}

/** dy w^T and x^T dy: with transpose flags where they are free (the OpenBLAS kernels), else transposed first. */
function linearGradients(dy: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  if (nativeTransposedProducts()) return [tf.matMul(dy, w, false, true), tf.matMul(x, dy, true, false)];
  return [tf.matMul(dy, w.transpose()), tf.matMul(x.transpose(), dy)];
}

const linearNoBias = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      return linearGradients(dy as tf.Tensor2D, sx, sw);
    },
  };
});

const linearWithBias = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, bias, save] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w).add(bias),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [...linearGradients(dy as tf.Tensor2D, sx, sw), dy.sum(0)];
    },
  };
});

export interface Conv2dTransposeOptions {
  filters: number;
  kernelSize: number;
  strides: number;
  padding?: Padding;
  useBias?: boolean;
}

/**
 * Keras Conv2DTranspose. x: [B, H, W, Cin] -> [B, H*s, W*s, filters] ('same') or
 * [B, (H-1)*s + k, (W-1)*s + k, filters] ('valid'); kernel [k, k, filters, Cin] (Keras' layout), bias [filters].
 */
export function conv2dTranspose(
  store: ParameterStore,
  name: string,
  x: tf.Tensor4D,
  options: Conv2dTransposeOptions,
): tf.Tensor4D {
  const { filters, kernelSize: k, strides: s, padding = 'valid', useBias = true } = options;
  const [batch, height, width, inChannels] = x.shape;
  const kernel = store.variable(`${name}/kernel`, [k, k, filters, inChannels], 'glorot-uniform') as tf.Tensor4D;
  const bias = useBias ? (store.variable(`${name}/bias`, [filters], 'zeros') as tf.Tensor1D) : undefined;
  if (k === s && padding === 'valid') {
    // Non-overlapping blocks (the mask head's 2x2 stride 2): every input pixel paints its own k x k block, i.e. a
    // matmul [B*H*W, Cin] x [Cin, k*k*filters] and a pixel shuffle. Much faster on wasm than Conv2DBackpropInput.
    const perPixel = kernel.transpose([3, 0, 1, 2]).reshape([inChannels, k * k * filters]) as tf.Tensor2D; // [Cin, (ky, kx, out)]
    const blocks = linear(x.reshape([batch * height * width, inChannels]), perPixel, bias ? tf.tile(bias, [k * k]) : undefined);
    // Pixel shuffle in rank 4 (webgpu's shaders): [B*H, W, ky, (kx, out)] -> [B*H, ky, W, (kx, out)].
    return blocks
      .reshape([batch * height, width, k, k * filters])
      .transpose([0, 2, 1, 3])
      .reshape([batch, height * k, width * k, filters]) as tf.Tensor4D;
  }
  const outHeight = padding === 'same' ? height * s : (height - 1) * s + Math.max(k, s);
  const outWidth = padding === 'same' ? width * s : (width - 1) * s + Math.max(k, s);
  const y = tf.conv2dTranspose(x, kernel, [batch, outHeight, outWidth, filters], s, padding);
  return bias ? y.add(bias) : y;
}

/** Keras MaxPooling2D. x: [B, H, W, C] -> [B, H', W', C]. */
export function maxPool(x: tf.Tensor4D, poolSize: number, strides: number, padding: Padding): tf.Tensor4D {
  return tf.maxPool(x, poolSize, strides, padding);
}

/** Nearest-neighbour 2x upsampling (Keras UpSampling2D(2)) by tiling, so its gradient is a sum of slices.
 *  Rank 4 throughout (webgpu's shaders): x as [B*H, 1, W, C] tiled to [B*H, row pair, W, column pair * C].
 *  x: [B, H, W, C] -> [B, 2H, 2W, C]. */
export function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return x
    .reshape([b * h, 1, w, c])
    .tile([1, 2, 1, 2])
    .reshape([b, 2 * h, 2 * w, c]) as tf.Tensor4D;
}
