// Non-maximum suppression. tfjs' kernel (cpu/wasm/webgl: one synchronous call) does the work; these wrappers take
// and return plain arrays because every caller goes on in JavaScript with the kept indices.
// The async forms read the kept indices with an await (backends with no synchronous read-back: read-back.ts). Their
// inputs are tensors made from arrays, which the webgpu kernel (tfjs' CPU implementation) can read: they live in
// CPU memory until a GPU kernel uses them. Each backend's own kernel, so the same indices as the sync forms.
import * as tf from '@tensorflow/tfjs';

/**
 * boxes Float32Array [N * 4] ([y1, x1, y2, x2]), scores Float32Array [N].
 * Returns the indices kept, by descending score, at most maxOutput of them.
 */
export function nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, maxOutput: number): Int32Array {
  const n = checkCounts(boxes, scores);
  if (n === 0 || maxOutput <= 0) return new Int32Array(0);
  return tf.tidy(() => {
    const kept = tf.image.nonMaxSuppression(tf.tensor2d(boxes, [n, 4]), tf.tensor1d(scores), maxOutput, iouThreshold);
    return kept.dataSync() as Int32Array;
  }).slice();
}

/** nms with the kept indices read by an await. */
export async function nmsAsync(boxes: Float32Array, scores: Float32Array, iouThreshold: number, maxOutput: number): Promise<Int32Array> {
  const n = checkCounts(boxes, scores);
  if (n === 0 || maxOutput <= 0) return new Int32Array(0);
  // The async kernel: the sync one reads its inputs synchronously too (and webgpu warns on every call).
  const inputs = [tf.tensor2d(boxes, [n, 4]), tf.tensor1d(scores)] as const;
  try {
    const kept = await tf.image.nonMaxSuppressionAsync(inputs[0], inputs[1], maxOutput, iouThreshold);
    try {
      return Int32Array.from(await kept.data());
    } finally {
      kept.dispose();
    }
  } finally {
    tf.dispose([...inputs]);
  }
}

/**
 * NMS within each class only (torchvision's batched_nms): boxes of different classes never suppress each other.
 * Offsets each class's boxes by a distance larger than any box, then runs one NMS.
 */
export function batchedNms(boxes: Float32Array, scores: Float32Array, classIds: Int32Array, iouThreshold: number, maxOutput: number): Int32Array {
  return nms(shiftedByClass(boxes, scores, classIds), scores, iouThreshold, maxOutput);
}

/** batchedNms with the kept indices read by an await. */
export async function batchedNmsAsync(boxes: Float32Array, scores: Float32Array, classIds: Int32Array, iouThreshold: number, maxOutput: number): Promise<Int32Array> {
  return nmsAsync(shiftedByClass(boxes, scores, classIds), scores, iouThreshold, maxOutput);
}

function checkCounts(boxes: Float32Array, scores: Float32Array): number {
  const n = scores.length;
  if (boxes.length !== n * 4) throw new Error(`nms: ${boxes.length / 4} boxes for ${n} scores`);
  return n;
}

/** Each box moved by classId * (2 * largest coordinate + 1) along both axes. */
function shiftedByClass(boxes: Float32Array, scores: Float32Array, classIds: Int32Array): Float32Array {
  const n = scores.length;
  if (classIds.length !== n) throw new Error(`batchedNms: ${classIds.length} class ids for ${n} scores`);
  let extent = 0;
  for (const v of boxes) extent = Math.max(extent, Math.abs(v));
  const offset = 2 * extent + 1;
  const shifted = new Float32Array(boxes.length);
  for (let i = 0; i < n; i++) {
    const shift = classIds[i]! * offset;
    for (let k = 0; k < 4; k++) shifted[4 * i + k] = boxes[4 * i + k]! + shift;
  }
  return shifted;
}
