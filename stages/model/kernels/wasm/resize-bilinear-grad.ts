// ResizeBilinearGrad for the wasm backend. Stock wasm (and cpu) return the gradient with height and width
// swapped ([B, W, H, C]), so tf.grads throws for any non-square image, and both ignore halfPixelCenters.
// This is TensorFlow's resize_bilinear_op.cc backward pass: each output pixel hands its gradient to the
// four input pixels it interpolated, weighted as in the forward pass.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Source coordinate of output index `i` (TF's legacy or half-pixel scaler). */
function sourceCoordinate(i: number, scale: number, halfPixelCenters: boolean): number {
  return halfPixelCenters ? Math.max(0, (i + 0.5) * scale - 0.5) : i * scale;
}

function resizeBilinearGrad(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const images = args.inputs['images'];
  const dy = args.inputs['dy'];
  if (!images || !dy) throw new Error('ResizeBilinearGrad (wasm): inputs images and dy are required');
  const { alignCorners, halfPixelCenters } = (args.attrs ?? {}) as unknown as tf.ResizeBilinearGradAttrs;
  const [batch, inHeight, inWidth, channels] = images.shape as [number, number, number, number];
  const [, outHeight, outWidth] = dy.shape as [number, number, number, number];
  const scale = (inSize: number, outSize: number) =>
    alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  const heightScale = scale(inHeight, outHeight);
  const widthScale = scale(inWidth, outWidth);

  const backend = args.backend as BackendWasm;
  const out = backend.makeOutput(images.shape, 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array; // views after the allocation (heap may grow)
  const dys = backend.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  const half = Boolean(halfPixelCenters);
  let offset = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const inR = sourceCoordinate(r, heightScale, half);
      const top = Math.min(Math.floor(inR), inHeight - 1);
      const bottom = Math.min(Math.ceil(inR), inHeight - 1);
      const rLerp = inR - Math.floor(inR);
      for (let c = 0; c < outWidth; c++) {
        const inC = sourceCoordinate(c, widthScale, half);
        const left = Math.min(Math.floor(inC), inWidth - 1);
        const right = Math.min(Math.ceil(inC), inWidth - 1);
        const cLerp = inC - Math.floor(inC);
        const topLeft = ((b * inHeight + top) * inWidth + left) * channels;
        const topRight = ((b * inHeight + top) * inWidth + right) * channels;
        const bottomLeft = ((b * inHeight + bottom) * inWidth + left) * channels;
        const bottomRight = ((b * inHeight + bottom) * inWidth + right) * channels;
        const wTL = (1 - rLerp) * (1 - cLerp);
        const wTR = (1 - rLerp) * cLerp;
        const wBL = rLerp * (1 - cLerp);
        const wBR = rLerp * cLerp;
        for (let d = 0; d < channels; d++) {
          const g = dys[offset++] as number;
          dx[topLeft + d] = (dx[topLeft + d] as number) + g * wTL;
          dx[topRight + d] = (dx[topRight + d] as number) + g * wTR;
          dx[bottomLeft + d] = (dx[bottomLeft + d] as number) + g * wBL;
          dx[bottomRight + d] = (dx[bottomRight + d] as number) + g * wBR;
        }
      }
    }
  }
  return out;
}

export const wasmResizeBilinearGradConfig: tf.KernelConfig = {
  kernelName: tf.ResizeBilinearGrad,
  backendName: 'wasm',
  kernelFunc: resizeBilinearGrad as unknown as tf.KernelFunc,
};
