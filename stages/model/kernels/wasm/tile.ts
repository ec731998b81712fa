// Tile for wasm by block copies. The stock kernel computes every output element's source index in a loop
// (66-104 ms, one thread, for [1, 1, 1, 64] -> [80, 14, 14, 64]); frozen batch norm's gradient tiles its
// per-channel scale to the activation's shape (tfjs' batchNorm gradient), once per BN layer per step. Here each
// input row is copied once and every repetition is a doubling memcpy (copyWithin) of what is already written.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

function tile(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs['x'];
  if (!x) throw new Error('Tile (wasm): input x is required');
  const reps = (args.attrs ?? {})['reps'] as number[] | undefined;
  if (!reps || reps.length !== x.shape.length || !reps.every((r) => Number.isInteger(r) && r >= 0)) {
    throw new Error(`Tile (wasm): reps ${JSON.stringify(reps)} must be one non-negative integer per axis of [${x.shape}]`);
  }
  if (x.dtype === 'string' || x.dtype === 'complex64') throw new Error(`Tile (wasm): unsupported dtype ${x.dtype}`);
  const backend = args.backend as BackendWasm;
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  // Views are taken after makeOutput: allocating may grow the wasm memory and detach older views.
  const target = backend.typedArrayFromHeap(out);
  const source = backend.typedArrayFromHeap(x);
  if (rank === 0) {
    target[0] = source[0]!;
    return out;
  }
  const srcStride = new Array<number>(rank);
  const dstStride = new Array<number>(rank);
  srcStride[rank - 1] = 1;
  dstStride[rank - 1] = 1;
  for (let axis = rank - 2; axis >= 0; axis--) {
    srcStride[axis] = srcStride[axis + 1]! * x.shape[axis + 1]!;
    dstStride[axis] = dstStride[axis + 1]! * outShape[axis + 1]!;
  }
  /** Writes the block length `length` at `at` `times` times in a row (the first copy is already there). */
  const repeat = (at: number, length: number, times: number): void => {
    const total = length * times;
    for (let filled = length; filled < total;) {
      const n = Math.min(filled, total - filled);
      target.copyWithin(at + filled, at, at + n);
      filled += n;
    }
  };
  /** Fills the output slab of `axis` starting at dst from the input slab at src. */
  const fill = (axis: number, src: number, dst: number): void => {
    const extent = x.shape[axis]!;
    if (axis === rank - 1) target.set(source.subarray(src, src + extent), dst);
    else for (let i = 0; i < extent; i++) fill(axis + 1, src + i * srcStride[axis]!, dst + i * dstStride[axis]!);
    repeat(dst, extent * dstStride[axis]!, reps[axis]!);
  };
  fill(0, 0, 0);
  return out;
}

export const wasmTileConfig: tf.KernelConfig = {
  kernelName: tf.Tile,
  backendName: 'wasm',
  kernelFunc: tile as unknown as tf.KernelFunc,
};
