// Sum over the leading axes for wasm as one matrix product: ones [1, M] x X [M, C]. The stock kernel first
// transposes the reduced axes innermost, then reduces (16-25 ms, one thread, for [80, 14, 14, 64] over
// [0, 1, 2]; the product takes 0.4 ms). Every bias gradient and every gradient of a broadcast add or multiply
// is such a sum (over batch and space, keeping channels): hundreds per train step. Other sums go to stock.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { KernelCalls } from '../kernel-calls.js';

/** The number of leading axes `axis` names when they are exactly 0..k-1 (k >= 1), else undefined. */
export function leadingAxesCount(axis: number | number[] | undefined, rank: number): number | undefined {
  if (axis === undefined || rank === 0) return undefined;
  const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
  return axes.length > 0 && axes.every((a, i) => a === i) ? axes.length : undefined;
}

export function sumLeadingAxesConfig(stock: () => tf.KernelConfig | undefined): tf.KernelConfig {
  const kernelFunc = function sumLeadingAxes(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
    const x = args.inputs['x'];
    if (!x) throw new Error('Sum (wasm): input x is required');
    const attrs = (args.attrs ?? {}) as { axis?: number | number[]; keepDims?: boolean };
    const k = leadingAxesCount(attrs.axis, x.shape.length);
    const fallback = stock();
    if (k === undefined || x.dtype !== 'float32' || tf.util.sizeFromShape(x.shape) === 0) {
      if (!fallback) throw new Error('Sum (wasm): the stock kernel is not registered');
      return fallback.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    }
    const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
    const kept = x.shape.slice(k);
    const columns = tf.util.sizeFromShape(kept);
    const backend = args.backend as BackendWasm;
    const calls = new KernelCalls('wasm', backend as unknown as tf.KernelBackend);
    return calls.compose(() => {
      const ones = calls.adopt(backend.makeOutput([1, 1, rows], 'float32'));
      backend.typedArrayFromHeap(ones).fill(1);
      const product = calls.run('BatchMatMul', { a: ones, b: calls.reshape(x, [1, rows, columns]) }, { transposeA: false, transposeB: false });
      const outShape = attrs.keepDims ? [...x.shape.slice(0, k).map(() => 1), ...kept] : kept;
      return calls.reshape(product, outShape);
    });
  };
  return { kernelName: tf.Sum, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
