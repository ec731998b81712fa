// Correct ResizeBilinearGrad and ResizeNearestNeighborGrad, registered for both the wasm and the cpu backend,
// whose stock kernels are wrong (found by test/model/kernels/resize-gradients.test.ts, which checks them
// against the transpose of the forward resize):
//   - ResizeBilinearGrad (cpu, and wasm likewise) returns [B, W, H, C]: tf.grads throws for a non-square
//     image; both ignore halfPixelCenters.
//   - ResizeNearestNeighborGrad (cpu) indexes dy with the input's batch stride: wrong for every image
//     after the first of a batch — which silently corrupts FPN gradients on cpu.
// The loops are TensorFlow's backward passes: each output pixel hands its gradient to the input pixels the
// forward pass read, with the forward pass's weights and coordinate mapping.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Shape4 = [number, number, number, number];

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters: boolean;
}

/** in/out size ratio as tfjs's forward resizes compute it. */
function ratio(inSize: number, outSize: number, alignCorners: boolean): number {
  return alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
}

/** dx [B, H, W, C] (zeroed by the caller) += bilinear-resize transpose of dy [B, h, w, C]. */
export function resizeBilinearBackward(dy: ArrayLike<number>, dyShape: Shape4, dx: Float32Array, dxShape: Shape4, attrs: ResizeAttrs): void {
  const [batch, inHeight, inWidth, channels] = dxShape;
  const [, outHeight, outWidth] = dyShape;
  const heightScale = ratio(inHeight, outHeight, attrs.alignCorners);
  const widthScale = ratio(inWidth, outWidth, attrs.alignCorners);
  const source = (i: number, scale: number) => (attrs.halfPixelCenters ? Math.max(0, (i + 0.5) * scale - 0.5) : i * scale);
  let offset = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const inR = source(r, heightScale);
      const top = Math.min(Math.floor(inR), inHeight - 1);
      const bottom = Math.min(Math.ceil(inR), inHeight - 1);
      const rLerp = inR - Math.floor(inR);
      for (let c = 0; c < outWidth; c++) {
        const inC = source(c, widthScale);
        const left = Math.min(Math.floor(inC), inWidth - 1);
        const right = Math.min(Math.ceil(inC), inWidth - 1);
        const cLerp = inC - Math.floor(inC);
        const tl = ((b * inHeight + top) * inWidth + left) * channels;
        const tr = ((b * inHeight + top) * inWidth + right) * channels;
        const bl = ((b * inHeight + bottom) * inWidth + left) * channels;
        const br = ((b * inHeight + bottom) * inWidth + right) * channels;
        const wTL = (1 - rLerp) * (1 - cLerp);
        const wTR = (1 - rLerp) * cLerp;
        const wBL = rLerp * (1 - cLerp);
        const wBR = rLerp * cLerp;
        for (let d = 0; d < channels; d++) {
          const g = dy[offset++] as number;
          dx[tl + d] = (dx[tl + d] as number) + g * wTL;
          dx[tr + d] = (dx[tr + d] as number) + g * wTR;
          dx[bl + d] = (dx[bl + d] as number) + g * wBL;
          dx[br + d] = (dx[br + d] as number) + g * wBR;
        }
      }
    }
  }
}

/** dx [B, H, W, C] (zeroed by the caller) += nearest-neighbour-resize transpose of dy [B, h, w, C]. */
export function resizeNearestBackward(dy: ArrayLike<number>, dyShape: Shape4, dx: Float32Array, dxShape: Shape4, attrs: ResizeAttrs): void {
  const [batch, inHeight, inWidth, channels] = dxShape;
  const [, outHeight, outWidth] = dyShape;
  const heightScale = ratio(inHeight, outHeight, attrs.alignCorners);
  const widthScale = ratio(inWidth, outWidth, attrs.alignCorners);
  // The forward pass's source index (tfjs ResizeNearestNeighbor).
  const nearest = (i: number, scale: number, size: number) => {
    const fraction = attrs.halfPixelCenters ? scale * (i + 0.5) : scale * i;
    const index = Math.min(size - 1, attrs.alignCorners ? Math.round(fraction) : Math.floor(fraction));
    return attrs.halfPixelCenters ? Math.max(0, index) : index;
  };
  const sourceCols = Array.from({ length: outWidth }, (_, c) => nearest(c, widthScale, inWidth));
  let offset = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const rowBase = (b * inHeight + nearest(r, heightScale, inHeight)) * inWidth;
      for (let c = 0; c < outWidth; c++) {
        const to = (rowBase + (sourceCols[c] as number)) * channels;
        for (let d = 0; d < channels; d++) dx[to + d] = (dx[to + d] as number) + (dy[offset++] as number);
      }
    }
  }
}

type Backward = typeof resizeBilinearBackward;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

function inputsOf(args: KernelArgs, kernelName: string): { images: tf.TensorInfo; dy: tf.TensorInfo; attrs: ResizeAttrs } {
  const images = args.inputs['images'];
  const dy = args.inputs['dy'];
  if (!images || !dy) throw new Error(`${kernelName}: inputs images and dy are required`);
  const attrs = (args.attrs ?? {}) as unknown as Partial<ResizeAttrs>;
  return { images, dy, attrs: { alignCorners: Boolean(attrs.alignCorners), halfPixelCenters: Boolean(attrs.halfPixelCenters) } };
}

function wasmKernel(kernelName: string, backward: Backward): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { images, dy, attrs } = inputsOf(args, kernelName);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(images.shape, 'float32');
    const dx = backend.typedArrayFromHeap(out) as Float32Array; // views after the allocation (heap may grow)
    dx.fill(0);
    backward(backend.typedArrayFromHeap(dy), dy.shape as Shape4, dx, images.shape as Shape4, attrs);
    return out;
  };
  return { kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

interface CpuBackendLike {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function cpuKernel(kernelName: string, backward: Backward): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { images, dy, attrs } = inputsOf(args, kernelName);
    const backend = args.backend as CpuBackendLike;
    const dx = new Float32Array(tf.util.sizeFromShape(images.shape));
    backward(backend.data.get(dy.dataId).values, dy.shape as Shape4, dx, images.shape as Shape4, attrs);
    return backend.makeTensorInfo(images.shape, 'float32', dx);
  };
  return { kernelName, backendName: 'cpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

export const wasmResizeGradientKernels: readonly tf.KernelConfig[] = [
  wasmKernel(tf.ResizeBilinearGrad, resizeBilinearBackward),
  wasmKernel(tf.ResizeNearestNeighborGrad, resizeNearestBackward),
];
export const cpuResizeGradientKernels: readonly tf.KernelConfig[] = [
  cpuKernel(tf.ResizeBilinearGrad, resizeBilinearBackward),
  cpuKernel(tf.ResizeNearestNeighborGrad, resizeNearestBackward),
];

/** Replaces the stock kernels of `backendName` with ours (idempotent). */
export function registerResizeGradients(backendName: 'cpu' | 'wasm'): void {
  for (const config of backendName === 'cpu' ? cpuResizeGradientKernels : wasmResizeGradientKernels) {
    const current = tf.getKernel(config.kernelName, backendName);
    if (current === config) continue;
    if (current) tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(config);
  }
}
