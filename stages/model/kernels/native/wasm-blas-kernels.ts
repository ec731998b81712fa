// wasm kernels that run on the OpenBLAS addon (blas-kernels.c): Conv2D, FusedConv2D, Conv2DBackpropInput,
// Conv2DBackpropFilter, BatchMatMul and _FusedMatMul. Operands are read where they lie in the wasm heap and the
// result is written into an output made by the wasm backend, so nothing is copied in or out.
//
// Each wraps the kernel wasm would otherwise run (ours or stock) and hands it every case it does not cover:
// non-float32 tensors, NCHW, empty tensors, grouped/depthwise shapes, bias shapes other than [Co] / [N],
// activations other than linear and relu, PReLU weights, batch shapes that broadcast other than by one matrix.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { BlasKernels } from './blas-kernels.js';

type KernelArgs = Parameters<tf.KernelFunc>[0];

interface WasmHeapAccess {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { HEAPU8: Uint8Array };
}

/** The names this module provides a native kernel for. */
export const nativeKernelNames: readonly string[] = [
  tf.Conv2D, tf.FusedConv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul, tf._FusedMatMul,
];

/** The heap as floats and each tensor's element offset in it, taken after every output is allocated. */
function heapOffsets(backend: BackendWasm, tensors: tf.TensorInfo[]): { heap: Float32Array; offsets: number[] } | undefined {
  const access = backend as unknown as WasmHeapAccess;
  const buffer = access.wasm.HEAPU8.buffer;
  const offsets: number[] = [];
  for (const t of tensors) {
    const bytes = access.dataIdMap.get(t.dataId)?.memoryOffset;
    const size = tf.util.sizeFromShape(t.shape);
    if (bytes === undefined || size === 0 || bytes % 4 !== 0 || bytes + size * 4 > buffer.byteLength) return undefined;
    offsets.push(bytes / 4);
  }
  return { heap: new Float32Array(buffer), offsets };
}

function allFloat32(tensors: Array<tf.TensorInfo | undefined>): tensors is tf.TensorInfo[] {
  return tensors.every((t) => t !== undefined && t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) > 0);
}

/** The 15 numbers blas-kernels.c's Geometry holds, from tfjs' own conv arithmetic (so pads match the cpu backend). */
function geometry(info: tf.backend_util.Conv2DInfo): number[] {
  return [info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth, info.outChannels,
    info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth, info.padInfo.top, info.padInfo.left,
    info.outHeight, info.outWidth];
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
  filterShape?: number[];
  inputShape?: number[];
}

function isRank4(shape: readonly number[]): shape is [number, number, number, number] {
  return shape.length === 4;
}

function convInfo(xShape: readonly number[], filterShape: readonly number[], attrs: ConvAttrs, dilations: number | [number, number]): tf.backend_util.Conv2DInfo | undefined {
  if (attrs.dataFormat === 'NCHW' || !isRank4(xShape) || !isRank4(filterShape) || filterShape[2] !== xShape[3]) return undefined;
  return tf.backend_util.computeConv2DInfo(xShape, filterShape, attrs.strides, dilations, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
}

/** Conv2D and FusedConv2D (bias [Co], activation linear or relu). */
function forwardConv(blas: BlasKernels, fallback: tf.KernelConfig, fused: boolean): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = function nativeConv2d(args: KernelArgs) {
    const { x, filter, bias, preluActivationWeights } = args.inputs;
    const attrs = args.attrs as unknown as ConvAttrs;
    const activation = fused ? attrs.activation ?? 'linear' : 'linear';
    const info = allFloat32([x, filter]) && !preluActivationWeights && (activation === 'linear' || activation === 'relu')
      ? convInfo(x!.shape, filter!.shape, attrs, attrs.dilations ?? 1) : undefined;
    if (!info || (bias && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== info.outChannels))) return fallback.kernelFunc(args);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(info.outShape, 'float32');
    const heap = heapOffsets(backend, bias ? [x!, filter!, bias, out] : [x!, filter!, out]);
    if (!heap) {
      backend.disposeData(out.dataId);
      return fallback.kernelFunc(args);
    }
    const [xAt, wAt, ...rest] = heap.offsets as [number, number, ...number[]];
    const yAt = rest.at(-1)!;
    blas.conv2d(heap.heap, ...geometry(info), xAt, wAt, bias ? rest[0]! : -1, activation === 'relu' ? 1 : 0, yAt);
    return out;
  };
  return { ...fallback, kernelFunc };
}

function backpropInput(blas: BlasKernels, fallback: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = function nativeConv2dBackpropInput(args: KernelArgs) {
    const { dy, filter } = args.inputs;
    const attrs = args.attrs as unknown as ConvAttrs;
    const info = allFloat32([dy, filter]) && attrs.inputShape && tf.util.sizeFromShape(attrs.inputShape) > 0
      ? convInfo(attrs.inputShape, filter!.shape, attrs, 1) : undefined;
    if (!info || !tf.util.arraysEqual(dy!.shape, info.outShape)) return fallback.kernelFunc(args);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(info.inShape, 'float32');
    const heap = heapOffsets(backend, [dy!, filter!, out]);
    if (!heap) {
      backend.disposeData(out.dataId);
      return fallback.kernelFunc(args);
    }
    blas.conv2dBackpropInput(heap.heap, ...geometry(info), ...heap.offsets);
    return out;
  };
  return { ...fallback, kernelFunc };
}

function backpropFilter(blas: BlasKernels, fallback: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = function nativeConv2dBackpropFilter(args: KernelArgs) {
    const { x, dy } = args.inputs;
    const attrs = args.attrs as unknown as ConvAttrs;
    const info = allFloat32([x, dy]) && attrs.filterShape ? convInfo(x!.shape, attrs.filterShape, attrs, 1) : undefined;
    if (!info || !tf.util.arraysEqual(dy!.shape, info.outShape)) return fallback.kernelFunc(args);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(attrs.filterShape!, 'float32');
    const heap = heapOffsets(backend, [x!, dy!, out]);
    if (!heap) {
      backend.disposeData(out.dataId);
      return fallback.kernelFunc(args);
    }
    blas.conv2dBackpropFilter(heap.heap, ...geometry(info), ...heap.offsets);
    return out;
  };
  return { ...fallback, kernelFunc };
}

/**
 * BatchMatMul and _FusedMatMul on operands of rank >= 2 (the kernel gets them as the op was given them): the
 * leading axes are the batch, the same on both sides or of size 1 on one side (one matrix for every entry).
 */
function matMul(blas: BlasKernels, fallback: tf.KernelConfig, fused: boolean): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = function nativeMatMul(args: KernelArgs) {
    const { a, b, bias, preluActivationWeights } = args.inputs;
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean; activation?: string };
    const activation = fused ? attrs.activation ?? 'linear' : 'linear';
    if (!allFloat32([a, b]) || preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return fallback.kernelFunc(args);
    if (a!.shape.length < 2 || b!.shape.length < 2) return fallback.kernelFunc(args);
    const [a1, a2] = a!.shape.slice(-2) as [number, number];
    const [b1, b2] = b!.shape.slice(-2) as [number, number];
    const [outerA, outerB] = [a!.shape.slice(0, -2), b!.shape.slice(0, -2)];
    const [batchA, batchB] = [tf.util.sizeFromShape(outerA), tf.util.sizeFromShape(outerB)];
    const [m, k] = attrs.transposeA ? [a2, a1] : [a1, a2];
    const [kB, n] = attrs.transposeB ? [b2, b1] : [b1, b2];
    const sameBatch = tf.util.arraysEqual(outerA, outerB);
    if (k !== kB || !(sameBatch || batchA === 1 || batchB === 1)) return fallback.kernelFunc(args);
    const outer = sameBatch ? outerA : tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
    const batch = Math.max(batchA, batchB);
    if (bias && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== n || bias.shape.at(-1) !== n)) return fallback.kernelFunc(args);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput([...outer, m, n], 'float32');
    const heap = heapOffsets(backend, bias ? [a!, b!, bias, out] : [a!, b!, out]);
    if (!heap) {
      backend.disposeData(out.dataId);
      return fallback.kernelFunc(args);
    }
    const [aAt, bAt, ...rest] = heap.offsets as [number, number, ...number[]];
    blas.matMul(heap.heap, batch, m, n, k, attrs.transposeA ? 1 : 0, attrs.transposeB ? 1 : 0,
      batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n, aAt, bAt, bias ? rest[0]! : -1, activation === 'relu' ? 1 : 0, rest.at(-1)!);
    return out;
  };
  return { ...fallback, kernelFunc };
}

/** The kernel functions made here: to tell whether the active backend's products run on the addon. */
const nativeProducts = new WeakSet<tf.KernelFunc>();

/**
 * Whether tf.matMul with transpose flags runs on the addon now (wasm, with these kernels registered): the
 * transposes are then free inside sgemm, where tfjs-wasm's own kernel is ~10x slower with them.
 */
export function nativeTransposedProducts(): boolean {
  const kernel = tf.getBackend() === 'wasm' ? tf.getKernel(tf.BatchMatMul, 'wasm') : undefined;
  return kernel !== undefined && nativeProducts.has(kernel.kernelFunc);
}

/** The native version of `fallback` (a wasm kernel named in nativeKernelNames), which it runs for cases it leaves. */
export function nativeWasmKernel(blas: BlasKernels, fallback: tf.KernelConfig): tf.KernelConfig {
  const config = nativeConfig(blas, fallback);
  if (config.kernelName === tf.BatchMatMul) nativeProducts.add(config.kernelFunc);
  return config;
}

function nativeConfig(blas: BlasKernels, fallback: tf.KernelConfig): tf.KernelConfig {
  switch (fallback.kernelName) {
    case tf.Conv2D:
      return forwardConv(blas, fallback, false);
    case tf.FusedConv2D:
      return forwardConv(blas, fallback, true);
    case tf.Conv2DBackpropInput:
      return backpropInput(blas, fallback);
    case tf.Conv2DBackpropFilter:
      return backpropFilter(blas, fallback);
    case tf.BatchMatMul:
      return matMul(blas, fallback, false);
    case tf._FusedMatMul:
      return matMul(blas, fallback, true);
    default:
      return fallback;
  }
}
