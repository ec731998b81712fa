// Reading tensors back to JavaScript, and which way a backend allows.
//
// tfjs' synchronous reads (dataSync, arraySync; also NMS kernels that read their inputs) need the backend to
// block until the device is done. The webgpu backend in Node (Dawn) cannot: its readSync goes through an
// OffscreenCanvas, which Node lacks, so only `await tensor.data()` works there. The model therefore has
// asynchronous forms of its read-back points (MaskRcnn.trainStepAsync, lossesAsync, detectAsync); the stages use
// them where needsAsyncReadBack() says so, and the synchronous forms elsewhere (no awaits; ROIAlign as JS loops
// there, the asynchronous forms gather on the device).
import * as tf from '@tensorflow/tfjs';

/** Whether the backend (default: the active one) has no synchronous read-back in Node. */
export function needsAsyncReadBack(backend: string = tf.getBackend()): boolean {
  return backend === 'webgpu';
}

/** The values of every tensor, read with one await; the tensors are disposed (read or not). */
export async function readAndDispose<T extends tf.Tensor>(tensors: readonly T[]): Promise<Float32Array[]> {
  try {
    return (await Promise.all(tensors.map((t) => t.data()))) as Float32Array[];
  } finally {
    tf.dispose([...tensors]);
  }
}
