// Conv2DBackpropInput (also what conv2dTranspose runs) as one forward conv of the backend.
//
// For a forward conv with stride s and zero padding `top`, input row y received dy[oy] * w[i] wherever
// oy*s + i = y + top. With D = dy with s-1 zeros inserted between rows ("dilated", length (Ho-1)*s + 1):
//   dx[y] = sum over i' of  D[y + top - (kh-1) + i'] * w[kh-1-i']
// i.e. a stride-1 correlation of D, padded by kh-1-top in front, with the spatially flipped filter whose
// in/out channels are swapped ([kh, kw, Co, Ci]). Same for columns.
//
// On wasm it is used for stride 1 only (bench/model-kernels.ts: 3.8x faster than stock's loops for 3x3/1).
// For stride s > 1 the zero-inserted D costs XNNPACK s*s times the work and stock wins or ties, so strided
// convs go to the stock kernel given as `stockForStrides`. On webgpu with `patches`, strided convs are instead
// one matMul and a col2im (webgpu/conv-gradients.ts; the stock kernel is a direct loop per dx element).
import * as tf from '@tensorflow/tfjs';
import { KernelCalls, type ComposingBackend } from './kernel-calls.js';
import { inputGradientByPatches } from './webgpu/conv-gradients.js';
import { patchGeometry } from './webgpu/conv-patches.js';
import { flippedFilter } from './webgpu/flipped-filter.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

/**
 * Inserts stride-1 zeros between rows and columns of [B, H, W, C] -> [B, (H-1)*sh+1, (W-1)*sw+1, C], with
 * rank-4 pads only (webgpu's Pad shader fails to compile for rank 6).
 */
function dilate(calls: KernelCalls, x: tf.TensorInfo, sh: number, sw: number): tf.TensorInfo {
  if (sh === 1 && sw === 1) return x;
  const [b, h, w, c] = x.shape as [number, number, number, number];
  // rows: [B, H, 1, W*C] -> pad -> [B, H, sh, W*C] = [B, H*sh, W, C]
  const rows = calls.reshape(calls.pad(calls.reshape(x, [b, h, 1, w * c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0]]), [b * h * sh, w, 1, c]);
  // columns: [B*H*sh, W, 1, C] -> pad -> [B*H*sh, W, sw, C] = [B, H*sh, W*sw, C]
  const both = calls.reshape(calls.pad(rows, [[0, 0], [0, 0], [0, sw - 1], [0, 0]]), [b, h * sh, w * sw, c]);
  return calls.slice(both, [0, 0, 0, 0], [b, (h - 1) * sh + 1, (w - 1) * sw + 1, c]);
}

function conv2dBackpropInput(backendName: ComposingBackend, stockForStrides: () => tf.KernelConfig | undefined, patches: boolean, args: KernelArgs): tf.TensorInfo {
  const where = `Conv2DBackpropInput (${backendName})`;
  const dy = args.inputs['dy'];
  const filter = args.inputs['filter'];
  if (!dy || !filter) throw new Error(`${where}: inputs dy and filter are required`);
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropInputAttrs;
  if (attrs.dataFormat === 'NCHW') throw new Error(`${where}: only NHWC is supported`);
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
    false, 'channelsLast');
  const { inHeight, inWidth, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const calls = new KernelCalls(backendName, args.backend as tf.KernelBackend);
  if (patches && backendName === 'webgpu' && (sh > 1 || sw > 1)) {
    const result = calls.compose(() => inputGradientByPatches(calls, dy, filter, patchGeometry(info)));
    if (result) return result;
  }
  const stock = stockForStrides();
  if ((sh > 1 || sw > 1) && stock) return stock.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  return calls.compose(() => {
    if (backendName === 'webgpu' && kh === 1 && kw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0) {
      // A 1x1 conv is a matMul: dx [M, Ci] = dy [M, Co] W^T [Co, Ci], one dispatch instead of a flip, a
      // transpose and a conv.
      const [b, h, w, ci] = inputShape;
      const co = filter.shape[3]!;
      const product = calls.run('BatchMatMul', { a: calls.reshape(dy, [1, b * h * w, co]), b: calls.reshape(filter, [1, ci, co]) }, { transposeA: false, transposeB: true });
      return calls.reshape(product, inputShape);
    }
    const spread = dilate(calls, dy, sh, sw); // [B, Dh, Dw, Co]
    const [, dh, dw] = spread.shape as [number, number, number, number];
    const frontH = kh - 1 - top;
    const frontW = kw - 1 - left;
    const flipped = backendName === 'webgpu'
      ? calls.adopt(flippedFilter(calls.backend, filter))
      : calls.transpose(calls.reverse(filter, [0, 1]), [0, 1, 3, 2]); // [kh, kw, Co, Ci]
    const result = calls.conv2dPadOrCrop(spread, flipped, [
      [frontH, inHeight + kh - 1 - frontH - dh], [frontW, inWidth + kw - 1 - frontW - dw]], [1, 1], [1, 1]); // [B, H, W, Ci]
    if (result.shape.join() !== inputShape.join()) throw new Error(`${where}: got [${result.shape}], expected [${inputShape}]`);
    return result;
  });
}

/**
 * `stockForStrides` returns the stock kernel to delegate strided convs to, or undefined to do all here;
 * `patches` (webgpu only): strided convs through a matMul and col2im first (stock where one image's does not fit).
 */
export function conv2dBackpropInputConfig(backendName: ComposingBackend, stockForStrides: () => tf.KernelConfig | undefined = () => undefined, patches = false): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) => conv2dBackpropInput(backendName, stockForStrides, patches, args);
  return { kernelName: tf.Conv2DBackpropInput, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
