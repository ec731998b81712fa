// MaxPoolGrad for the wasm backend. Stock wasm has one, but it is wrong when both the batch and the channel
// count exceed 1 (e.g. x [2, 9, 9, 3], 3x3/2 SAME: relative error ~1 against the cpu backend and against a
// hand-written reference; found by test/model/kernels/wasm-gradient-coverage.test.ts). The ResNet stem
// pools with exactly such shapes, so this replaces it: one pass over the wasm heap.
//
// Each output cell's gradient goes to the first maximum of its window (row-major), as in TensorFlow and the
// cpu backend; ties matter after ReLU, where whole windows are 0.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

function maxPoolGrad(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const dy = args.inputs['dy'];
  const x = args.inputs['input'];
  if (!dy || !x) throw new Error('MaxPoolGrad (wasm): inputs dy and input are required');
  const attrs = (args.attrs ?? {}) as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  if (dy.shape.join() !== [batchSize, outHeight, outWidth, channels].join()) {
    throw new Error(`MaxPoolGrad (wasm): dy [${dy.shape}] does not match the pooled shape [${info.outShape}]`);
  }

  const backend = args.backend as BackendWasm;
  const out = backend.makeOutput(x.shape, 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array; // views after the allocation (heap may grow)
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const dys = backend.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      const yFrom = Math.max(0, y0);
      const yTo = Math.min(inHeight, y0 + filterHeight);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        const xFrom = Math.max(0, x0);
        const xTo = Math.min(inWidth, x0 + filterWidth);
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) {
          let best = -Infinity;
          let at = -1;
          for (let y = yFrom; y < yTo; y++) {
            for (let xx = xFrom; xx < xTo; xx++) {
              const index = ((b * inHeight + y) * inWidth + xx) * channels + c;
              const value = xs[index] as number;
              if (value > best || at < 0) {
                best = value;
                at = index;
              }
            }
          }
          if (at >= 0) dx[at] = (dx[at] as number) + (dys[dyBase + c] as number);
        }
      }
    }
  }
  return out;
}

export const wasmMaxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
