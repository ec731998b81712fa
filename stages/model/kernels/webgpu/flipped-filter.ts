// The filter of a stride-1 input gradient: W [kh, kw, Ci, Co] turned 180 degrees in (kh, kw) with its channel
// axes swapped, [kh, kw, Co, Ci], so that dx = conv(dy, flipped) — one dispatch where stock webgpu takes a
// Reverse and a Transpose.
import * as tf from '@tensorflow/tfjs';
import { FlatProgram, runProgram } from './flat-program.js';

class FlippedFilterProgram extends FlatProgram {
  constructor(kh: number, kw: number, ci: number, co: number) {
    super('runner_flipped_filter', ['w'], '', [kh, kw, co, ci], kh * kw * ci * co);
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let ci = index % uniforms.outShape[3];
          let co = (index / uniforms.outShape[3]) % uniforms.outShape[2];
          let tap = index / (uniforms.outShape[3] * uniforms.outShape[2]);
          let i = tap / uniforms.outShape[1];
          let j = tap % uniforms.outShape[1];
          setOutputAtIndex(index, getW(uniforms.outShape[0] - 1 - i, uniforms.outShape[1] - 1 - j, ci, co));
        }
      }
    `;
  }
}

/** [kh, kw, Ci, Co] -> [kh, kw, Co, Ci], taps reversed; a backend tensor the caller frees. */
export function flippedFilter(backend: tf.KernelBackend, w: tf.TensorInfo): tf.TensorInfo {
  const [kh, kw, ci, co] = w.shape as [number, number, number, number];
  return runProgram(new FlippedFilterProgram(kh, kw, ci, co), [w], undefined, backend);
}
