// The kernels we register for the webgpu backend: Conv2DBackpropFilter and Conv2DBackpropInput expressed
// through the backend's fast forward conv (stock webgpu runs both as direct loops, one thread per output
// element over the whole batch and image). Measured on the lent GPU by bench/device/webgpu-step.ts.
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from '../conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from '../conv2d-backprop-input.js';
import { cacheBindGroupLayouts } from './bind-group-layouts.js';
import { sumLeadingAxesConfig } from './sum-leading-axes.js';
import { shareUniformBuffers } from './uniforms.js';
import { useWriteBufferUploads } from './uploads.js';

export interface WebgpuKernelOptions {
  /** Our Conv2DBackpropFilter for stride 1, stock for strided (default true). */
  filter?: boolean;
  /** Our Conv2DBackpropInput: for every stride, for stride 1 only (strided ones stock), or not at all. */
  input?: 'all' | 'stride1' | 'none';
  /** Sum over the leading axes as a matMul with a row of ones (sum-leading-axes.ts; default true). */
  sum?: boolean;
}

const replacedStock = new Map<string, tf.KernelConfig>();
// Strided convs stay on the stock kernels: webgpu's forward conv gets the dilated form wrong (measured).
const filterKernel = conv2dBackpropFilterConfig('webgpu', () => replacedStock.get(tf.Conv2DBackpropFilter));
const inputAllStrides = conv2dBackpropInputConfig('webgpu');
const inputStride1 = conv2dBackpropInputConfig('webgpu', () => replacedStock.get(tf.Conv2DBackpropInput));
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
  if (options.filter ?? true) configs.push(filterKernel);
  const input = options.input ?? 'stride1';
  if (input !== 'none') configs.push(input === 'all' ? inputAllStrides : inputStride1);
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
