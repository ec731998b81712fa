// sum over k of scale_k * sum(x_k^2) for many tensors of any shapes, 7 tensors per dispatch: the global norm of
// the gradients (the clip factor, ~460 gradients in the recipe's step) and the weight decay's value (~250
// weights) were one dot-product dispatch per tensor, ~56 us of JavaScript each on the lent H100.
//
// One program per group of up to 7 tensors (WebGPU binds 8 storage buffers per shader: 7 inputs and the
// output): workgroup k of 256 threads sums the squares of tensor k (each thread a strided slice, then a tree in
// workgroup memory), so a group's tensors are reduced side by side. Each program writes a [7] vector (zeros for
// missing tensors); the vectors are added with addAll and the 7 entries summed at the end.
import * as tf from '@tensorflow/tfjs';
import { addAll } from '../../add-all.js';

const GROUP = 7;
const THREADS = 256;
const NAMES = ['A', 'B', 'C', 'D', 'E', 'F', 'G'];

class SumOfSquaresProgram {
  readonly variableNames: string[];
  readonly uniforms: string;
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly outputShape = [GROUP];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number] = [GROUP, 1, 1];
  readonly shaderKey: string;

  constructor(private readonly count: number) {
    this.variableNames = NAMES.slice(0, count);
    this.uniforms = [...NAMES.slice(0, count).map((n) => `n${n} : i32,`), ...NAMES.slice(0, count).map((n) => `s${n} : f32,`)].join(' ');
    this.shaderKey = `runner_sum_of_squares_${count}`;
  }

  getUserCode(): string {
    // No early return before the barriers: every thread of a workgroup reaches each one (WGSL's uniformity rule).
    const cases = this.variableNames.map((n, k) => `
          case ${k}: {
            for (var i = t; i < uniforms.n${n}; i = i + ${THREADS}) { let x = ${n}[i]; acc = acc + x * x; }
            acc = acc * uniforms.s${n};
          }`).join('');
    return `
      var<workgroup> partial : array<f32, ${THREADS}>;
      fn main(index : i32) {
        let k = i32(workgroupId.x);
        let t = i32(localId.x);
        var acc = 0.0;
        switch (k) {${cases}
          default: {}
        }
        partial[t] = acc;
        workgroupBarrier();
        for (var stride = ${THREADS / 2}; stride > 0; stride = stride / 2) {
          if (t < stride) { partial[t] = partial[t] + partial[t + stride]; }
          workgroupBarrier();
        }
        if (t == 0) { setOutputAtIndex(k, partial[0]); }
      }
    `;
  }
}

interface WebgpuProgramRunner {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: Array<{ type: 'float32' | 'int32'; data: number[] }>): tf.TensorInfo;
}

/** sum over k of scales[k] * sum(tensors[k]^2), as a scalar tensor; webgpu only, float32 tensors. */
export function sumOfSquares(tensors: readonly tf.Tensor[], scales: readonly number[]): tf.Scalar {
  if (tensors.length !== scales.length) throw new Error('sumOfSquares: one scale per tensor');
  if (tf.getBackend() !== 'webgpu') throw new Error(`sumOfSquares: needs the webgpu backend, not ${tf.getBackend()}`);
  const kept = tensors.map((t, k) => [t, scales[k]!] as const).filter(([t]) => t.size > 0); // nothing to bind or add
  tensors = kept.map(([t]) => t);
  scales = kept.map(([, s]) => s);
  if (tensors.length === 0) return tf.scalar(0);
  const backend = tf.backend() as unknown as WebgpuProgramRunner;
  return tf.tidy(() => {
    const groups: tf.Tensor[] = [];
    for (let start = 0; start < tensors.length; start += GROUP) {
      const inputs = tensors.slice(start, start + GROUP);
      if (inputs.some((t) => t.dtype !== 'float32')) throw new Error('sumOfSquares: float32 tensors only');
      const uniforms = [
        ...inputs.map((t) => ({ type: 'int32' as const, data: [t.size] })),
        ...scales.slice(start, start + GROUP).map((s) => ({ type: 'float32' as const, data: [s] })),
      ];
      groups.push(tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(new SumOfSquaresProgram(inputs.length), inputs, 'float32', uniforms)));
    }
    return tf.sum(addAll(groups)) as tf.Scalar;
  });
}
