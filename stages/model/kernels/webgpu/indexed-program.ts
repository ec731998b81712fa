// A WGSL program that reads and writes buffers by flat index, one thread per element of a given count, for what
// one elementwise formula cannot say: several results from one thread into one output (AMSGrad's packed m, v and
// vhat), or inputs of a different shape than the output. tfjs-webgpu programs have exactly one output buffer,
// so "several results" means rows of one output.
//
// Written against tfjs-backend-webgpu 4.22's program interface, like elementwise-program.ts: the backend declares
// each input as `<Name> : array<f32>` and the output as `result`, writes with setOutputAtIndex, and reshapes a
// dispatch over the device's per-dimension limit (main's index stays the flat thread index).
import * as tf from '@tensorflow/tfjs';
import { FlatProgram, runProgram } from './flat-program.js';

class IndexedProgram extends FlatProgram {
  constructor(name: string, inputs: string[], uniformNames: string[], outputShape: number[], threads: number, private readonly body: string) {
    super(`indexed_${name}`, inputs, ['threads : i32,', ...uniformNames.map((u) => `${u} : f32,`)].join(' '), outputShape, threads);
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.threads) {
          ${this.body}
        }
      }
    `;
  }
}


export interface IndexedFormula {
  /** Unique per body: the backend caches the compiled pipeline under it (plus the ranks). */
  name: string;
  /** Input buffer names, in the order of the tensors: the body reads input X as `X[i]`. */
  inputs: string[];
  /** f32 uniforms, read as `uniforms.<name>`; `uniforms.threads` (i32) is the thread count. */
  uniforms: string[];
  /** WGSL statements for thread `index` (< uniforms.threads) that write with setOutputAtIndex(i, value). */
  body: string;
}

/**
 * Runs `formula` with `threads` threads over float32 `inputs` (`values` for its uniforms) into a new float32
 * tensor of `outputShape`, tracked by the engine like any op's. Every element of the output must be written by
 * some thread (the output buffer is not cleared).
 */
export function runIndexed(formula: IndexedFormula, inputs: tf.Tensor[], values: number[], outputShape: number[], threads: number): tf.Tensor {
  if (inputs.length !== formula.inputs.length || values.length !== formula.uniforms.length) {
    throw new Error(`indexed ${formula.name}: expected ${formula.inputs.length} inputs and ${formula.uniforms.length} uniforms`);
  }
  if (inputs.some((t) => t.dtype !== 'float32')) throw new Error(`indexed ${formula.name}: inputs must be float32`);
  if (tf.getBackend() !== 'webgpu') throw new Error(`indexed ${formula.name}: needs the webgpu backend, not ${tf.getBackend()}`);
  const program = new IndexedProgram(formula.name, formula.inputs, formula.uniforms, outputShape, threads, formula.body);
  const uniforms = [{ type: 'int32' as const, data: [threads] }, ...values.map((v) => ({ type: 'float32' as const, data: [v] }))];
  return tf.engine().makeTensorFromTensorInfo(runProgram(program, inputs, uniforms));
}
