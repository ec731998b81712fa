// The webgpu gradient kernels' other forms, measured against the production ones (stages/model/kernels/webgpu/
// register.ts) by webgpu-step.ts and webgpu-diagnose.ts, and kept here, out of the production registry:
//   filter  'patches' (production: patch matrix and split-K matMul, every stride), 'conv' (one forward conv for
//           stride 1, stock for strided: the first form), 'none' (stock)
//   input   'patches' (production: forward conv for stride 1, matMul + col2im for strided), 'all' (forward conv of
//           the zero-dilated dy for every stride), 'stride1' (forward conv for stride 1, stock for strided),
//           'none' (stock)
//   sum     Sum over the leading axes as a matMul with a row of ones (default true)
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from '../../stages/model/kernels/conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from '../../stages/model/kernels/conv2d-backprop-input.js';
import { sumLeadingAxesConfig } from '../../stages/model/kernels/webgpu/sum-leading-axes.js';
import { restoreStockWebgpuKernels, webgpuKernels } from '../../stages/model/kernels/webgpu/register.js';

export interface WebgpuKernelOptions {
  filter?: 'patches' | 'conv' | 'none';
  input?: 'patches' | 'all' | 'stride1' | 'none';
  sum?: boolean;
}

// Strided convs stay on the stock kernels in the forward-conv forms: webgpu's forward conv gets the dilated
// filter gradient wrong (measured).
const stockFilter = () => webgpuKernels.stockKernel(tf.Conv2DBackpropFilter);
const stockInput = () => webgpuKernels.stockKernel(tf.Conv2DBackpropInput);
const filterKernels = {
  patches: conv2dBackpropFilterConfig('webgpu', stockFilter, true),
  conv: conv2dBackpropFilterConfig('webgpu', stockFilter),
};
const inputKernels = {
  patches: conv2dBackpropInputConfig('webgpu', stockInput, true),
  all: conv2dBackpropInputConfig('webgpu'),
  stride1: conv2dBackpropInputConfig('webgpu', stockInput),
};
const sumKernel = sumLeadingAxesConfig(() => webgpuKernels.stockKernel(tf.Sum));

/** Registers the kernels of `options` in place of the stock ones (and of any other variant). */
export function registerWebgpuKernelVariant(options: WebgpuKernelOptions = {}): string[] {
  restoreStockWebgpuKernels();
  const configs: tf.KernelConfig[] = [];
  const filter = options.filter ?? 'patches';
  if (filter !== 'none') configs.push(filterKernels[filter]);
  const input = options.input ?? 'patches';
  if (input !== 'none') configs.push(inputKernels[input]);
  if (options.sum ?? true) configs.push(sumKernel);
  for (const config of configs) webgpuKernels.replace(config);
  return configs.map((config) => config.kernelName);
}
