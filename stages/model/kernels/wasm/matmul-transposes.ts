// Stock wasm BatchMatMul / _FusedMatMul hand XNNPACK only the untransposed case; with transposeA or transposeB
// they fall back to a plain loop 5-9x slower than transposing the operand first and multiplying (one thread:
// x^T dy of [256, 3136] x [256, 256] 305 ms vs 60 ms; dy W^T with W [3136, 256] 378 ms vs 43 ms). Every dense
// layer's backward pass multiplies by a transpose (tfjs: da = dy b^T, db = a^T dy), so the box head's
// gradients ran on the slow path. This wrapper materialises the transposes with the Transpose kernel and calls
// the stock kernel untransposed: the same products, summed in XNNPACK's order.
import * as tf from '@tensorflow/tfjs';
import { KernelCalls } from '../kernel-calls.js';

/** The last two axes swapped. */
function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/** Wraps stock BatchMatMul or _FusedMatMul so transposed operands are transposed before the multiply. */
export function withMaterialisedTransposes(stock: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = function matMulWithMaterialisedTransposes(args) {
    const a = args.inputs['a'];
    const b = args.inputs['b'];
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!a || !b || (!attrs.transposeA && !attrs.transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
    const calls = new KernelCalls('wasm', args.backend as tf.KernelBackend);
    return calls.compose(() => {
      const inputs = {
        ...args.inputs,
        a: attrs.transposeA ? calls.transpose(a, swapLastTwo(a.shape.length)) : a,
        b: attrs.transposeB ? calls.transpose(b, swapLastTwo(b.shape.length)) : b,
      };
      const result = stock.kernelFunc({ ...args, inputs, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
      if (Array.isArray(result)) throw new Error(`${stock.kernelName} (wasm) returned several outputs`);
      return calls.adopt(result);
    });
  };
  return { ...stock, kernelFunc };
}
