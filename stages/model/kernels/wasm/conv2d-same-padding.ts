// A fix for stock wasm Conv2D / FusedConv2D with pad 'same' when a stride exceeds the filter size
// (e.g. 2x2 stride 3, 3x3 stride 4): the stock kernel hands XNNPACK its "TensorFlow SAME" flag, which XNNPACK
// does not support for stride > kernel, and the output comes back wrong (zeros or garbage; found by
// test/model/kernels/wasm-conv2d-gradients.test.ts against the cpu backend). Computing the SAME padding here
// and passing it explicitly gives XNNPACK a case it handles.
import * as tf from '@tensorflow/tfjs';

interface ConvAttrs {
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  strides: number | [number, number];
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Whether stock wasm would hand XNNPACK a SAME padding it cannot do. */
export function needsExplicitSamePadding(attrs: ConvAttrs, filterShape: number[]): boolean {
  if (attrs.pad !== 'same') return false;
  const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
  const [kh, kw] = filterShape as [number, number];
  return sh > kh || sw > kw;
}

/** Wraps a stock wasm conv kernel (Conv2D, FusedConv2D) so 'same' with stride > kernel goes in as explicit padding. */
export function withExplicitSamePadding(stock: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs['x'];
    const filter = args.inputs['filter'];
    const attrs = args.attrs as unknown as ConvAttrs | undefined;
    if (!x || !filter || !attrs || !needsExplicitSamePadding(attrs, filter.shape)) return stock.kernelFunc(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number], attrs.strides,
      attrs.dilations ?? 1, 'same', attrs.dimRoundingMode, false, 'channelsLast');
    const { top, bottom, left, right } = info.padInfo;
    const explicit: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
    return stock.kernelFunc({ ...args, attrs: { ...args.attrs, pad: explicit } as unknown as tf.NamedAttrMap });
  };
  return { ...stock, kernelFunc };
}
