// The kernels we register for the webgpu backend: Conv2DBackpropFilter and Conv2DBackpropInput as matMuls over
// the conv's patch matrix (stock webgpu runs both as direct loops, one thread per output element over the whole
// batch and image), and Sum over the leading axes as a matMul. Measured on a GPU by bench/device/webgpu-step.ts
// and webgpu-diagnose.ts against the stock kernels and the other forms (bench/device/webgpu-kernel-variants.ts).
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from '../conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from '../conv2d-backprop-input.js';
import { KernelReplacements } from '../kernel-replacements.js';
import { cacheBindGroupLayouts } from './bind-group-layouts.js';
import { sumLeadingAxesConfig } from './sum-leading-axes.js';
import { shareUniformBuffers } from './uniforms.js';
import { useWriteBufferUploads } from './uploads.js';

/** Our webgpu kernels in place of stock ones (the benchmarks' kernel variants register through it too). */
export const webgpuKernels = new KernelReplacements('webgpu');
// The stock kernels stay reachable for the cases the patch forms leave to them (a strided input gradient whose
// one image does not fit a matMul).
const productionKernels = [
  conv2dBackpropFilterConfig('webgpu', () => webgpuKernels.stockKernel(tf.Conv2DBackpropFilter), true),
  conv2dBackpropInputConfig('webgpu', () => webgpuKernels.stockKernel(tf.Conv2DBackpropInput), true),
  sumLeadingAxesConfig(() => webgpuKernels.stockKernel(tf.Sum)),
];

/** Puts back the stock webgpu kernels we replaced. */
export function restoreStockWebgpuKernels(): void {
  webgpuKernels.restore();
}

/**
 * Registers our webgpu kernels (idempotent): the filter and input gradients as patch-matrix matMuls (split-K),
 * Sum over the leading axes as a matMul. Returns the kernel names now provided by us. The other forms that
 * were measured against these live with their benchmark (bench/device/webgpu-kernel-variants.ts).
 */
export function registerWebgpuTrainingKernels(): string[] {
  restoreStockWebgpuKernels();
  for (const config of productionKernels) webgpuKernels.replace(config);
  return productionKernels.map((config) => config.kernelName);
}

export interface WebgpuBackendOptions {
  /** Uploads through queue.writeBuffer (kernels/webgpu/uploads.ts; default true). */
  writeBufferUploads?: boolean;
  /** Dispatches recorded per queue.submit (tfjs default 15; each submit costs ~1-4 ms in Dawn for Node). */
  submitBatch?: number;
  /** One bind-group layout per pipeline instead of one per dispatch (kernels/webgpu/bind-group-layouts.ts; default
   *  true; cannot be switched off again for pipelines already compiled with it). */
  cachedLayouts?: boolean;
  /** One uniform buffer per uniform content, written once (kernels/webgpu/uniforms.ts; default true): no
   *  queue.writeBuffer per dispatch. */
  sharedUniforms?: boolean;
}

/** Settings of the active webgpu backend instance (call after tf.setBackend('webgpu')). */
export function configureWebgpuBackend(options: WebgpuBackendOptions = {}): void {
  useWriteBufferUploads(options.writeBufferUploads ?? true);
  if (options.cachedLayouts ?? true) cacheBindGroupLayouts();
  shareUniformBuffers(options.sharedUniforms ?? true);
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', options.submitBatch ?? 100);
}
