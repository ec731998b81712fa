// The kernels the wasm backend needs for training Mask R-CNN and does not ship (found by
// test/model/kernels/wasm-gradient-coverage.test.ts, which takes the gradient of every op the model uses).
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from '../conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from '../conv2d-backprop-input.js';
import { wasmUnsortedSegmentSumConfig } from './unsorted-segment-sum.js';
import { withExplicitSamePadding } from './conv2d-same-padding.js';
import { wasmMaxPoolGradConfig } from './max-pool-grad.js';
import { KernelReplacements } from '../kernel-replacements.js';
import { wasmResizeGradientKernels } from '../resize-gradients.js';
import { withMaterialisedTransposes } from './matmul-transposes.js';
import { sumLeadingAxesConfig } from './sum-leading-axes.js';
import { wasmTileConfig } from './tile.js';
import { wasmIdentityConfig } from './identity.js';
import type { BlasKernels } from '../native/blas-kernels.js';
import { nativeKernelNames, nativeWasmKernel } from '../native/wasm-blas-kernels.js';

const replacements = new KernelReplacements('wasm');

const wasmConv2dBackpropFilterConfig = conv2dBackpropFilterConfig('wasm');
const wasmConv2dBackpropInputConfig = conv2dBackpropInputConfig('wasm', () => replacements.stockKernel(tf.Conv2DBackpropInput));

/** Kernels stock wasm lacks entirely, or has with wrong results. */
export const missingWasmKernels: readonly tf.KernelConfig[] = [
  wasmConv2dBackpropFilterConfig, wasmUnsortedSegmentSumConfig, wasmMaxPoolGradConfig, ...wasmResizeGradientKernels,
];
/** Kernels stock wasm has, replaced by faster ones of ours. */
export const fasterWasmKernels: readonly tf.KernelConfig[] = [
  wasmConv2dBackpropInputConfig, wasmTileConfig, sumLeadingAxesConfig(() => replacements.stockKernel(tf.Sum)), wasmIdentityConfig,
];
/** Stock kernels that give wrong results in some cases: wrapped, not replaced. */
const wrappedStockKernels: ReadonlyArray<{ name: string; wrap: (stock: tf.KernelConfig) => tf.KernelConfig }> = [
  { name: tf.Conv2D, wrap: withExplicitSamePadding },
  { name: tf.FusedConv2D, wrap: withExplicitSamePadding },
];
/** Stock kernels that are slow in some cases: wrapped to take a faster route there. */
const fasterWrappedStockKernels: ReadonlyArray<{ name: string; wrap: (stock: tf.KernelConfig) => tf.KernelConfig }> = [
  { name: tf.BatchMatMul, wrap: withMaterialisedTransposes },
  { name: tf._FusedMatMul, wrap: withMaterialisedTransposes },
];

export interface WasmKernelOptions {
  /** Also replace stock kernels that exist but are slow (default true; false only to benchmark stock). */
  replaceSlowStock?: boolean;
  /** Run convolutions and products on this OpenBLAS addon (kernels/native/), falling back to the kernels above. */
  blas?: BlasKernels;
}

/** Registers our wasm kernels (idempotent). Returns the kernel names now provided by us. */
export function registerWasmTrainingKernels(options: WasmKernelOptions = {}): string[] {
  const wrappers = [...wrappedStockKernels, ...(options.replaceSlowStock === false ? [] : fasterWrappedStockKernels)];
  const wrapped = wrappers.flatMap(({ name, wrap }) => {
    const stock = replacements.stockKernel(name) ?? tf.getKernel(name, 'wasm');
    return stock ? [wrap(stock)] : [];
  });
  if (options.replaceSlowStock === false) restoreStockWasmKernels();
  const ours = [...missingWasmKernels, ...wrapped, ...(options.replaceSlowStock === false ? [] : fasterWasmKernels)];
  const blas = options.blas;
  const configs = blas ? ours.map((config) => (nativeKernelNames.includes(config.kernelName) ? nativeWasmKernel(blas, config) : config)) : ours;
  for (const config of configs) replacements.replace(config);
  return configs.map((config) => config.kernelName);
}

/** Puts back the stock kernels we replaced (a benchmark's "stock" arm). */
export function restoreStockWasmKernels(): void {
  replacements.restore();
}
