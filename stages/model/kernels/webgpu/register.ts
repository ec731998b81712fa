// The kernels we register for the webgpu backend: Conv2DBackpropFilter and Conv2DBackpropInput as matMuls over
// the conv's patch matrix or through the backend's fast forward conv (stock webgpu runs both as direct loops,
// one thread per output element over the whole batch and image), and Sum over the leading axes as a matMul.
// Measured on the lent GPU by bench/device/webgpu-step.ts.
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from '../conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from '../conv2d-backprop-input.js';
import { cacheBindGroupLayouts } from './bind-group-layouts.js';
import { sumLeadingAxesConfig } from './sum-leading-axes.js';
import { shareUniformBuffers } from './uniforms.js';
import { useWriteBufferUploads } from './uploads.js';

export interface WebgpuKernelOptions {
  /**
   * Conv2DBackpropFilter: 'patches' (default: patch matrix and split-K matMul, every stride), 'conv' (one
   * forward conv for stride 1, stock for strided; session 1's form), 'none' (stock).
   */
  filter?: 'patches' | 'conv' | 'none';
  /**
   * Conv2DBackpropInput: 'patches' (default: forward conv for stride 1, matMul + col2im for strided), 'all'
   * (forward conv of the zero-dilated dy for every stride), 'stride1' (forward conv for stride 1, stock for
   * strided), 'none' (stock).
   */
  input?: 'patches' | 'all' | 'stride1' | 'none';
  /** Sum over the leading axes as a matMul with a row of ones (sum-leading-axes.ts; default true). */
  sum?: boolean;
}

const replacedStock = new Map<string, tf.KernelConfig>();
// In the forward-conv forms strided convs stay on the stock kernels: webgpu's forward conv gets the dilated
// filter gradient wrong (measured).
const stockFilter = () => replacedStock.get(tf.Conv2DBackpropFilter);
const stockInput = () => replacedStock.get(tf.Conv2DBackpropInput);
const filterKernels = {
  patches: conv2dBackpropFilterConfig('webgpu', stockFilter, true),
  conv: conv2dBackpropFilterConfig('webgpu', stockFilter),
};
const inputKernels = {
  patches: conv2dBackpropInputConfig('webgpu', stockInput, true),
  all: conv2dBackpropInputConfig('webgpu'),
  stride1: conv2dBackpropInputConfig('webgpu', stockInput),
};
const sumKernel = sumLeadingAxesConfig(() => replacedStock.get(tf.Sum));

function replace(config: tf.KernelConfig): void {
  const current = tf.getKernel(config.kernelName, 'webgpu');
  if (current === config) return;
  if (current) {
    if (!replacedStock.has(config.kernelName)) replacedStock.set(config.kernelName, current);
    tf.unregisterKernel(config.kernelName, 'webgpu');
  }
  tf.registerKernel(config);
}

/** Puts back the stock webgpu kernels we replaced. */
export function restoreStockWebgpuKernels(): void {
  for (const [name, stock] of replacedStock) {
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel(stock);
  }
  replacedStock.clear();
}

/** Registers our webgpu kernels per `options` (idempotent). Returns the kernel names now provided by us. */
export function registerWebgpuTrainingKernels(options: WebgpuKernelOptions = {}): string[] {
  restoreStockWebgpuKernels();
  const configs: tf.KernelConfig[] = [];
  const filter = options.filter ?? 'patches';
  if (filter !== 'none') configs.push(filterKernels[filter]);
  const input = options.input ?? 'patches';
  if (input !== 'none') configs.push(inputKernels[input]);
  if (options.sum ?? true) configs.push(sumKernel);
  configs.forEach(replace);
  return configs.map((config) => config.kernelName);
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
