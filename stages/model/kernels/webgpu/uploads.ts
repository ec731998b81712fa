// CPU -> GPU uploads through queue.writeBuffer instead of a new mapped staging buffer per upload.
//
// tfjs-backend-webgpu 4.22 uploads a tensor that holds CPU values (every scalar an optimizer builds from a
// JS number, every tf.tensor() of targets or indices) by creating a MAP_WRITE buffer mapped at creation,
// copying into it, and destroying it after the next submit. In Dawn for Node a createBuffer costs ~0.5 ms
// and the destroys make the next queue.submit slow (3.8 ms each): 1,504 uploads per ResNet-50 training step,
// ~2 s of its 3.8 s on an H100 (bench/device/webgpu-diagnose.ts). queue.writeBuffer stages the bytes inside
// Dawn (6 us per call measured there) into a pooled buffer of the backend's buffer manager.
//
// Ordering: writeBuffer runs on the queue timeline before the commands still being recorded, which is right:
// the destination comes from the free pool, so no recorded-but-unsubmitted command uses it (the backend
// returns a buffer to the pool only after the commands that use it were submitted), and every command that
// reads the new tensor is recorded after this call.
import * as tf from '@tensorflow/tfjs';

interface TensorData {
  values: ArrayLike<number> | null;
  dtype: tf.DataType;
  shape: number[];
  resource: unknown;
}
interface WebgpuBackendInternals {
  tensorMap: { get(dataId: object): TensorData | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): object };
  queue: { writeBuffer(buffer: object, offset: number, data: ArrayBufferView, dataOffset?: number, size?: number): void };
  uploadToGPU(dataId: object): void;
  fastUploads?: (dataId: object) => void;
}

const STORAGE = 0x80;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;

/** The values as the 4-byte elements the GPU buffer holds, or null for a dtype we leave to stock. */
function asGpuElements(values: ArrayLike<number>, dtype: tf.DataType): Float32Array | Int32Array | null {
  if (dtype === 'float32') return values instanceof Float32Array ? values : Float32Array.from(values);
  if (dtype === 'int32' || dtype === 'bool') return values instanceof Int32Array ? values : Int32Array.from(values);
  return null; // complex64, string: stock path
}

/** Installs the writeBuffer upload on the webgpu backend instance (idempotent). Returns false off webgpu. */
export function useWriteBufferUploads(enabled = true): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  const backend = tf.backend() as unknown as WebgpuBackendInternals;
  const prototypeUpload = Object.getPrototypeOf(backend).uploadToGPU as (dataId: object) => void;
  if (!enabled) {
    delete (backend as Partial<WebgpuBackendInternals>).uploadToGPU; // back to the prototype's (stock)
    return true;
  }
  backend.uploadToGPU = function (this: WebgpuBackendInternals, dataId: object): void {
    const data = this.tensorMap.get(dataId);
    if (!data || data.resource != null || data.values == null) return prototypeUpload.call(this, dataId);
    const elements = asGpuElements(data.values, data.dtype);
    const size = tf.util.sizeFromShape(data.shape) * 4;
    if (!elements || size === 0 || elements.length * 4 !== size) return prototypeUpload.call(this, dataId);
    const buffer = this.bufferManager.acquireBuffer(size, STORAGE | COPY_SRC | COPY_DST);
    this.queue.writeBuffer(buffer, 0, elements, 0, elements.length);
    data.values = null; // once uploaded the GPU copy is the truth, as in stock
    data.resource = buffer;
  };
  return true;
}
