// Non-maximum suppression on the host, for every backend: greedy-nms.ts selects the same boxes as
// tf.image.nonMaxSuppression (tested against it), ~70x faster than tfjs' host implementation on the recipe's
// proposals and ~11x faster than the wasm backend's C++ kernel (`npm run bench -- host-boxes`), with no tensors or
// read-backs (the kept indices go on in JavaScript anyway).
import * as tf from '@tensorflow/tfjs';
import { greedyNms } from './greedy-nms.js';

/**
 * boxes Float32Array [N * 4] ([y1, x1, y2, x2]), scores Float32Array [N].
 * Returns the indices kept, by descending score, at most maxOutput of them.
 */
export function nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, maxOutput: number): Int32Array {
  const n = checkCounts(boxes, scores);
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw new Error(`nms: the IoU threshold must be in [0, 1], not ${iouThreshold}`);
  if (n === 0 || maxOutput <= 0) return new Int32Array(0);
  return greedyNms(boxes, scores, iouThreshold, maxOutput, () => tfjsNms(boxes, scores, iouThreshold, maxOutput));
}

/** tf.image.nonMaxSuppression's selection, computed on the host whatever the backend. */
export function tfjsNms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, maxOutput: number): Int32Array {
  return Int32Array.from(tf.kernel_impls.nonMaxSuppressionV3Impl(boxes, scores, maxOutput, iouThreshold, Number.NEGATIVE_INFINITY).selectedIndices);
}

/**
 * NMS within each class only (torchvision's batched_nms): boxes of different classes never suppress each other.
 * Offsets each class's boxes by a distance larger than any box, then runs one NMS.
 */
export function batchedNms(boxes: Float32Array, scores: Float32Array, classIds: Int32Array, iouThreshold: number, maxOutput: number): Int32Array {
  return nms(shiftedByClass(boxes, scores, classIds), scores, iouThreshold, maxOutput);
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
