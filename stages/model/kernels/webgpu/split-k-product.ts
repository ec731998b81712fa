// a^T b for a [R, P] and b [R, Q] with R much larger than P and Q: the shape of every weight gradient
// (R = the batch's output positions, up to 131k at 512 px; P, Q = channels). Here the GPU needs split-K.
//
// tfjs-webgpu tiles a matMul's output in 32x32 blocks, one workgroup each, every workgroup looping over all of
// R. A 64x256 filter gradient is 16 workgroups on a 132-SM H100, each summing 131k products per element in
// turn: the GPU stands nearly idle (the stock and forward-conv forms of Conv2DBackpropFilter took 318-884 ms of
// GPU time per ResNet-50 step there, the forward convs 6 ms). tfjs splits K itself only below 8 workgroups
// and for batch 1, with float atomics (compare-exchange loops) on every output element per split.
//
// Here R is cut into S equal slices: one batched matMul [S, R/S, P]^T [S, R/S, Q] -> [S, P, Q] (S times the
// workgroups, no atomics), then the S partial products are summed by one more matMul with a row of ones.
import type * as tf from '@tensorflow/tfjs';
import type { KernelCalls } from '../kernel-calls.js';
import { onesRow } from './sum-leading-axes.js';

/** Workgroups worth filling a large GPU with (an H100 keeps ~16 of tfjs' 64-thread matMul workgroups per SM busy). */
const TARGET_WORKGROUPS = 1024;
/** Each slice still sums at least this many rows (8 of the shader's 32-row steps), or the partials cost more than they save. */
const MIN_ROWS_PER_SLICE = 256;
const TILE = 32;

/** The number of slices for R rows and a P x Q product: a divisor of R, 1 where no split pays. */
export function sliceCount(rows: number, p: number, q: number): number {
  const tiles = Math.ceil(p / TILE) * Math.ceil(q / TILE);
  const wanted = Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(rows / MIN_ROWS_PER_SLICE));
  for (let s = wanted; s > 1; s--) if (rows % s === 0) return s;
  return 1;
}

/** a [R, P], b [R, Q] (any shapes of R*P and R*Q elements, read row-major) -> a^T b [P, Q]. */
export function transposedProduct(calls: KernelCalls, a: tf.TensorInfo, b: tf.TensorInfo, rows: number, p: number, q: number): tf.TensorInfo {
  const slices = sliceCount(rows, p, q);
  const sliceRows = rows / slices;
  const partials = calls.run('BatchMatMul', {
    a: calls.reshape(a, [slices, sliceRows, p]),
    b: calls.reshape(b, [slices, sliceRows, q]),
  }, { transposeA: true, transposeB: false }); // [S, P, Q]
  if (slices === 1) return calls.reshape(partials, [p, q]);
  const summed = calls.run('BatchMatMul', {
    a: onesRow(calls.backend, slices),
    b: calls.reshape(partials, [1, slices, p * q]),
  }, { transposeA: false, transposeB: false }); // [1, 1, P*Q]
  return calls.reshape(summed, [p, q]);
}
