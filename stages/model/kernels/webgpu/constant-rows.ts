// Rows [1, M] of one value, for sums over M positions as a matMul ([1, M] x [M, C]): kept across steps (one
// tensor per feature-map size and value, never freed), since a step asks for the same few sizes every time.
import * as tf from '@tensorflow/tfjs';

const rows = new Map<string, tf.Tensor2D>();

export function constantRow(m: number, value: number): tf.Tensor2D {
  const key = `${m}:${value}`;
  let r = rows.get(key);
  if (!r || r.isDisposed) {
    r = tf.keep(tf.fill([1, m], value)) as tf.Tensor2D;
    rows.set(key, r);
  }
  return r;
}
