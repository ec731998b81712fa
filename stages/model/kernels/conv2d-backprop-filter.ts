// Conv2DBackpropFilter for wasm (which ships none, so stock wasm cannot train a conv net) and webgpu (whose
// stock kernel is a slow direct loop: 884 of ~1100 ms GPU time in a ResNet-50 step; bench/device/webgpu-step.ts).
//
// webgpu, by default: a matMul over the conv's patch matrix with split-K, for every stride
// (webgpu/conv-gradients.ts). The forward-conv form below left the GPU nearly idle there (318 ms per step).
//
// wasm (and webgpu with `patches` off): one forward conv. Strided convs need a dilated forward conv, which
// webgpu gets wrong: there they go to the stock kernel given as `stockForStrides`.
//
// The filter gradient is itself a correlation: for a forward conv with stride s and zero padding (top, left),
//   dW[i, j, ci, co] = sum over b, y, x of  xpad[b, y*s + i, x*s + j, ci] * dy[b, y, x, co]
// Read ci as the batch, b as the input channel and dy as the filter, and this is a forward conv with stride 1
// and dilation s — which the backend runs with its fast forward kernel (XNNPACK on wasm):
//   input  xpad transposed [Ci, Hp, Wp, B]
//   filter dy   transposed [Ho, Wo, B, Co]
//   output                 [Ci, kh, kw, Co]  -> transposed back to [kh, kw, Ci, Co]
import * as tf from '@tensorflow/tfjs';
import { KernelCalls, type ComposingBackend } from './kernel-calls.js';
import { filterGradientByPatches } from './webgpu/conv-gradients.js';
import { patchGeometry } from './webgpu/conv-patches.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

function conv2dBackpropFilter(backendName: ComposingBackend, stockForStrides: () => tf.KernelConfig | undefined, patches: boolean, args: KernelArgs): tf.TensorInfo {
  const where = `Conv2DBackpropFilter (${backendName})`;
  const x = args.inputs['x'];
  const dy = args.inputs['dy'];
  if (!x || !dy) throw new Error(`${where}: inputs x and dy are required`);
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat === 'NCHW') throw new Error(`${where}: only NHWC is supported`);
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
    false, 'channelsLast');
  const { inHeight, inWidth, outHeight, outWidth } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const calls = new KernelCalls(backendName, args.backend as tf.KernelBackend);
  if (patches && backendName === 'webgpu') return calls.compose(() => filterGradientByPatches(calls, x, dy, patchGeometry(info), filterShape));
  const stock = stockForStrides();
  if ((sh > 1 || sw > 1) && stock) return stock.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  return calls.compose(() => {
    if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0) {
      // A 1x1 conv is a matMul: dW [Ci, Co] = x^T [Ci, M] dy [M, Co], one dispatch instead of three transposes
      // and a conv (two of every three convs of a ResNet bottleneck are 1x1).
      const [b, h, w, ci] = x.shape as [number, number, number, number];
      const co = filterShape[3];
      const m = b * h * w;
      if (backendName === 'webgpu') {
        const product = calls.run('BatchMatMul', { a: calls.reshape(x, [1, m, ci]), b: calls.reshape(dy, [1, m, co]) }, { transposeA: true, transposeB: false });
        return calls.reshape(product, filterShape);
      }
      // wasm: XNNPACK's conv with an [H, W] "filter" and a 1x1 output was 2-13x slower than this product (the
      // mask head's last conv, [80, 28, 28, 64] -> 2 classes: 70 vs 5 ms). dW^T = dy^T x, then a small transpose;
      // the matMul kernel transposes dy first (kernels/wasm/matmul-transposes.ts).
      const product = calls.run('BatchMatMul', { a: calls.reshape(dy, [1, m, co]), b: calls.reshape(x, [1, m, ci]) }, { transposeA: true, transposeB: false });
      return calls.reshape(calls.transpose(product, [0, 2, 1]), filterShape);
    }
    // Exactly the rows/columns the forward conv read: (out - 1) * stride + kernel, starting at -pad.
    const neededH = (outHeight - 1) * sh + kh;
    const neededW = (outWidth - 1) * sw + kw;
    const xWindow = calls.padOrCrop(x, [[0, 0], [top, neededH - top - inHeight], [left, neededW - left - inWidth], [0, 0]]);
    const xAsBatch = calls.transpose(xWindow, [3, 1, 2, 0]); // [Ci, neededH, neededW, B]
    const dyAsFilter = calls.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, B, Co]
    const gradient = calls.conv2dValid(xAsBatch, dyAsFilter, [1, 1], [sh, sw]); // [Ci, kh, kw, Co]
    const result = calls.transpose(gradient, [1, 2, 0, 3]); // [kh, kw, Ci, Co]
    if (result.shape.join() !== filterShape.join()) throw new Error(`${where}: got [${result.shape}], expected [${filterShape}]`);
    return result;
  });
}

/**
 * `stockForStrides` returns the stock kernel to delegate strided convs to, or undefined to do all here;
 * `patches` (webgpu only) takes the patch-matrix route for every conv instead.
 */
export function conv2dBackpropFilterConfig(backendName: ComposingBackend, stockForStrides: () => tf.KernelConfig | undefined = () => undefined, patches = false): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) => conv2dBackpropFilter(backendName, stockForStrides, patches, args);
  return { kernelName: tf.Conv2DBackpropFilter, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
