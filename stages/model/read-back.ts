// How the model reads tensors back to JavaScript: one small strategy object, chosen once per backend and given to
// the model (MaskRcnn's `readBack` option), so the model has one code path that awaits its reads.
//
// tfjs' synchronous reads (dataSync, arraySync; also ROIAlign's JS loops, which read the feature maps) need the
// backend to block until the device is done. The webgpu backend in Node (Dawn) cannot: its readSync goes through
// an OffscreenCanvas, which Node lacks, so only `await tensor.data()` works there.
//   synchronous  (cpu, wasm, …) reads at once: the value is there when read() returns, the awaits cost nothing;
//                ROIAlign as JS loops (faster on a CPU than the gathers).
//   awaited      (webgpu) reads with `await tensor.data()`: a train step's losses are still being read when its
//                update is queued, so a loop can prepare the next step meanwhile; ROIAlign gathers on the device.
// Both give the same numbers (test/model/mask-rcnn-read-back.test.ts).
import * as tf from '@tensorflow/tfjs';
import type { RoiAlignImplementation } from './roi-align.js';

export interface ReadBack {
  readonly name: 'synchronous' | 'awaited';
  /** The values of every tensor (float32 as read); the tensors are disposed, read or not. */
  read(tensors: readonly tf.Tensor[]): Promise<Float32Array[]>;
  /** The ROIAlign this read-back allows ('auto' may pick the JS loops, which read the feature maps synchronously). */
  readonly roiAlign: RoiAlignImplementation;
}

export const synchronousReadBack: ReadBack = {
  name: 'synchronous',
  roiAlign: 'auto',
  // The values are read before this returns (a settled promise), as a dataSync in line would read them.
  read(tensors) {
    try {
      return Promise.resolve(tensors.map((t) => t.dataSync() as Float32Array));
    } catch (error) {
      return Promise.reject(error);
    } finally {
      tf.dispose([...tensors]);
    }
  },
};

export const awaitedReadBack: ReadBack = {
  name: 'awaited',
  roiAlign: 'gather',
  async read(tensors) {
    try {
      return (await Promise.all(tensors.map((t) => t.data()))) as Float32Array[];
    } finally {
      tf.dispose([...tensors]);
    }
  },
};

/** The read-back a backend (default: the active one) allows in Node: awaited on webgpu, synchronous elsewhere. */
export function readBackFor(backend: string = tf.getBackend()): ReadBack {
  return backend === 'webgpu' ? awaitedReadBack : synchronousReadBack;
}
