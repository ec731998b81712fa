// One WGSL program for a whole elementwise formula over same-shaped inputs: what a chain of tfjs ops
// (mul, add, square, maximum, sqrt, div, sub: one dispatch each) computes, in one dispatch. On the lent H100 a
// dispatch costs ~56 us of JavaScript whatever its size (bench/device/webgpu-diagnose.ts), so an optimizer
// update of a few small formulas per variable is bound by their number, not by the GPU.
//
// Written against tfjs-backend-webgpu 4.22's program interface (what its own BinaryOpProgram declares): the
// backend generates the bindings, `uniforms.size` and a get<Input>ByOutputIndex reader per input, and
// reshapes a dispatch that exceeds the device's per-dimension limit.
import * as tf from '@tensorflow/tfjs';
import { FlatProgram, runProgram } from './flat-program.js';

class ElementwiseProgram extends FlatProgram {
  constructor(name: string, inputs: string[], uniformNames: string[], shape: number[], private readonly body: string) {
    super(`elementwise_${name}`, inputs, uniformNames.map((u) => `${u} : f32,`).join(' '), shape, tf.util.sizeFromShape(shape));
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${this.body}
          setOutputAtIndex(index, result);
        }
      }
    `;
  }
}


export interface ElementwiseFormula {
  /** Unique per formula: the backend caches the compiled pipeline under it (plus the shapes). */
  name: string;
  /** Input names, in the order of the tensors: the body reads input X as `getXByOutputIndex(index)`. */
  inputs: string[];
  /** f32 uniforms, read as `uniforms.<name>`. */
  uniforms: string[];
  /** WGSL statements that end by defining `let result : f32`. */
  body: string;
}

/**
 * Runs `formula` on the webgpu backend over float32 `inputs` (`values` for its uniforms, in order) and returns
 * the result as a new tensor, tracked by the engine like any op's (so tf.tidy disposes it). The result has the
 * first input's shape unless `outputShape` says otherwise; every input broadcasts to it as in tf.add (a [C]
 * vector against [M, C]: the backend's reader does the broadcasting).
 */
export function runElementwise(formula: ElementwiseFormula, inputs: tf.Tensor[], values: number[], outputShape?: number[]): tf.Tensor {
  const shape = outputShape ?? inputs[0]?.shape;
  if (!shape || inputs.length !== formula.inputs.length || values.length !== formula.uniforms.length) {
    throw new Error(`elementwise ${formula.name}: expected ${formula.inputs.length} inputs and ${formula.uniforms.length} uniforms`);
  }
  for (const input of inputs) {
    const broadcastable = input.shape.length <= shape.length && input.shape.every((d, i) => d === 1 || d === shape[shape.length - input.shape.length + i]);
    if (input.dtype !== 'float32' || !broadcastable) {
      throw new Error(`elementwise ${formula.name}: inputs must be float32 and broadcast to [${shape}], got [${input.shape}] ${input.dtype}`);
    }
  }
  if (tf.getBackend() !== 'webgpu') throw new Error(`elementwise ${formula.name}: needs the webgpu backend, not ${tf.getBackend()}`);
  const program = new ElementwiseProgram(formula.name, formula.inputs, formula.uniforms, shape, formula.body);
  const uniforms = values.map((v) => ({ type: 'float32' as const, data: [v] }));
  return tf.engine().makeTensorFromTensorInfo(runProgram(program, inputs, uniforms));
}
