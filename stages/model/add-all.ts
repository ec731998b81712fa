// The sum of many tensors of one shape, in addN calls of at most 7 inputs.
//
// tf.addN is one shader on webgpu with one storage buffer per input plus the output, and WebGPU's default limit
// is 8 storage buffers per shader stage: the 149-input addN of the weight decay (and the 259-input one of the
// gradient norm) made an invalid pipeline, and Dawn then dropped the whole command buffer it was recorded in —
// silently zero losses on the lent H100. Chunks keep every backend on one code path.
import * as tf from '@tensorflow/tfjs';

const maxInputs = 7;

/** tensors: at least one, all the same shape. */
export function addAll<T extends tf.Tensor>(tensors: readonly T[]): T {
  if (tensors.length === 0) throw new Error('addAll: no tensors');
  if (tensors.length === 1) return tensors[0]!.clone() as T;
  return tf.tidy(() => {
    let level: tf.Tensor[] = [...tensors];
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += maxInputs) {
        const chunk = level.slice(i, i + maxInputs);
        next.push(chunk.length === 1 ? chunk[0]! : tf.addN(chunk));
      }
      level = next;
    }
    return level[0]! as T;
  });
}
