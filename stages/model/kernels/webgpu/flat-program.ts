// What our WGSL programs share: tfjs-backend-webgpu 4.22's program interface for a flat dispatch of 64-thread
// workgroups, one thread per index below a count. The backend declares the bindings, `uniforms.size` (the
// output's size), the readers and setOutputAtIndex, and reshapes a dispatch over the device's per-dimension limit
// (main's `index` stays the flat thread index). Not imported from the backend: importing its modules before
// navigator.gpu exists would keep it from registering itself.
import * as tf from '@tensorflow/tfjs';

const WORKGROUP = 64;

export type ProgramUniforms = Array<{ type: 'float32' | 'int32'; data: number[] }>;

interface WebgpuProgramRunner {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: ProgramUniforms): tf.TensorInfo;
}

/**
 * Runs one of our WGSL programs (a FlatProgram, or any object with the backend's program interface) on `backend`
 * (default: the active one, which must be webgpu); the caller owns the result.
 */
export function runProgram(program: object, inputs: tf.TensorInfo[], uniforms?: ProgramUniforms, backend: tf.KernelBackend = tf.backend()): tf.TensorInfo {
  return (backend as unknown as WebgpuProgramRunner).runWebGPUProgram(program, inputs, 'float32', uniforms);
}

export abstract class FlatProgram {
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly size = true;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];

  /** `threads`: how many indices main() runs for (the output's size unless a thread writes several elements). */
  constructor(
    readonly shaderKey: string,
    readonly variableNames: string[],
    readonly uniforms: string,
    readonly outputShape: number[],
    threads: number,
  ) {
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(threads / WORKGROUP), 1, 1];
  }

  abstract getUserCode(): string;
}
