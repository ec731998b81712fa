// Both conv gradients on webgpu as matMuls over the conv's patch matrix (conv-patches.ts), for every kernel
// size, stride and padding:
//   filter  dW [kh, kw, Ci, Co] = patches(x)^T dy                (split-K: split-k-product.ts)
//   input   dx = col2im(dy W^T)                                  (strided convs; stride 1 keeps the forward conv)
// The patch matrix is kh*kw times the input's size, so it is made in row chunks that each fit a storage
// binding (WebGPU's default limit is 128 MiB per binding; lavapipe enforces it).
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
 * dx [B, H, W, Ci] of an NHWC conv; dy [B, Ho, Wo, Co], filter [kh, kw, Ci, Co]. Undefined when the gradient of
 * the patch matrix would not fit one binding (the caller takes another route).
 */
export function inputGradientByPatches(calls: KernelCalls, dy: tf.TensorInfo, filter: tf.TensorInfo, g: PatchGeometry, maxBytes = PATCH_CHUNK_BYTES): tf.TensorInfo | undefined {
  const [rows, columns] = patchMatrixShape(g);
  if (rows * columns * 4 > maxBytes) return undefined;
  const co = filter.shape[3]!;
  const col = calls.run('BatchMatMul', {
    a: calls.reshape(dy, [1, rows, co]),
    b: calls.reshape(filter, [1, columns, co]),
  }, { transposeA: false, transposeB: true }); // [1, M, kh*kw*Ci]
  return calls.adopt(col2im(calls.backend, calls.reshape(col, [rows, columns]), g));
}
