// Both conv gradients on webgpu as matMuls over the conv's patch matrix (conv-patches.ts), for every kernel
// size, stride and padding:
//   filter  dW [kh, kw, Ci, Co] = patches(x)^T dy                (split-K: split-k-product.ts)
//   input   dx = col2im(dy W^T)                                  (strided convs; stride 1 keeps the forward conv)
// The patch matrix is kh*kw times the input's size, so it is made in chunks (of rows for dW, of images for dx)
// that each fit a storage binding (WebGPU's default limit is 128 MiB per binding; lavapipe enforces it).
import * as tf from '@tensorflow/tfjs';
import type { KernelCalls } from '../kernel-calls.js';
import { col2im, im2col, patchMatrixShape, type PatchGeometry } from './conv-patches.js';
import { transposedProduct } from './split-k-product.js';

/** Bytes of one patch-matrix chunk (half the default binding limit, as roi-align's gathers). */
export const PATCH_CHUNK_BYTES = 64 * 1024 * 1024;

/** Rows per chunk of an R x C float32 matrix under `bytes`: a multiple of 1024 where that fits (so the chunks'
 *  split-K slices divide them). */
export function chunkRows(rows: number, columns: number, bytes = PATCH_CHUNK_BYTES): number {
  const fit = Math.max(1, Math.floor(bytes / (4 * columns)));
  if (fit >= rows) return rows;
  return fit >= 1024 ? fit - (fit % 1024) : fit;
}

function isPlainMatMul(g: PatchGeometry): boolean {
  return g.filterHeight === 1 && g.filterWidth === 1 && g.strideHeight === 1 && g.strideWidth === 1 && g.padTop === 0 && g.padLeft === 0;
}

/** Sums same-shaped tensors in AddN calls of at most 7 inputs (WebGPU's 8 storage buffers per shader). */
function sumAll(calls: KernelCalls, parts: tf.TensorInfo[]): tf.TensorInfo {
  let level = parts;
  while (level.length > 1) {
    const next: tf.TensorInfo[] = [];
    for (let i = 0; i < level.length; i += 7) {
      const group = level.slice(i, i + 7);
      next.push(group.length === 1 ? group[0]! : calls.run('AddN', group as unknown as Record<string, tf.TensorInfo>)) // AddN takes its inputs as an array);
    }
    level = next;
  }
  return level[0]!;
}

/** dW [kh, kw, Ci, Co] of an NHWC conv; x [B, H, W, Ci], dy [B, Ho, Wo, Co]. */
export function filterGradientByPatches(calls: KernelCalls, x: tf.TensorInfo, dy: tf.TensorInfo, g: PatchGeometry, filterShape: number[], maxChunkBytes = PATCH_CHUNK_BYTES): tf.TensorInfo {
  const [rows, columns] = patchMatrixShape(g);
  const co = filterShape[3]!;
  if (isPlainMatMul(g)) return calls.reshape(transposedProduct(calls, x, dy, rows, columns, co), filterShape);
  const step = chunkRows(rows, Math.max(columns, co), maxChunkBytes);
  const dy2 = calls.reshape(dy, [rows, co]);
  const parts: tf.TensorInfo[] = [];
  for (let start = 0; start < rows; start += step) {
    const n = Math.min(step, rows - start);
    const patches = calls.adopt(im2col(calls.backend, x, g, start, n));
    const dyRows = calls.slice(dy2, [start, 0], [n, co]);
    parts.push(transposedProduct(calls, patches, dyRows, n, columns, co));
  }
  return calls.reshape(sumAll(calls, parts), filterShape);
}

/**
 * dx [B, H, W, Ci] of an NHWC conv; dy [B, Ho, Wo, Co], filter [kh, kw, Ci, Co]. The gradient of the patch matrix
 * is made for as many images at a time as fit `maxBytes` (the mask head's transposed conv has hundreds of ROIs as
 * its batch), each chunk's dx concatenated. Undefined when one image's alone would not fit (the caller takes
 * another route).
 */
export function inputGradientByPatches(calls: KernelCalls, dy: tf.TensorInfo, filter: tf.TensorInfo, g: PatchGeometry, maxBytes = PATCH_CHUNK_BYTES): tf.TensorInfo | undefined {
  const [rows, columns] = patchMatrixShape(g);
  const positions = g.outHeight * g.outWidth;
  const imagesPerChunk = Math.floor(maxBytes / (4 * positions * columns));
  if (imagesPerChunk < 1) return undefined;
  const co = filter.shape[3]!;
  const w = calls.reshape(filter, [1, columns, co]);
  const dy2 = calls.reshape(dy, [rows, co]);
  const parts: tf.TensorInfo[] = [];
  for (let first = 0; first < g.batchSize; first += imagesPerChunk) {
    const images = Math.min(imagesPerChunk, g.batchSize - first);
    const rowsOfChunk = images * positions;
    const dyRows = calls.slice(dy2, [first * positions, 0], [rowsOfChunk, co]);
    const col = calls.run('BatchMatMul', { a: calls.reshape(dyRows, [1, rowsOfChunk, co]), b: w }, { transposeA: false, transposeB: true }); // [1, rows, kh*kw*Ci]
    parts.push(calls.adopt(col2im(calls.backend, calls.reshape(col, [rowsOfChunk, columns]), { ...g, batchSize: images })));
  }
  return parts.length === 1 ? parts[0]! : calls.run('Concat', parts as unknown as Record<string, tf.TensorInfo>, { axis: 0 }); // Concat takes an array
}
