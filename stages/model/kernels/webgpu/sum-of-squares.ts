// sum over k of scale_k * sum((x_k + c_k w_k)^2) for many tensors of any shapes, up to 7 terms per dispatch: the
// global norm of the gradients (the clip factor, ~460 gradients in the recipe's step; w_k the weight where its
// decay gradient c_k w_k is added in the optimizer, not on the tape) and the weight decay's value (~250 weights)
// were one dot-product dispatch per tensor, ~56 us of JavaScript each on the lent H100.
//
// One program per group of terms whose buffers fit 7 (WebGPU binds 8 storage buffers per shader: inputs and the
// output; a term with a w takes two). Each term is split over `slices` workgroups of 256 threads (each thread a
// strided part of its slice, then a tree in workgroup memory), and a group's terms are reduced side by side: each
// program writes a [7 * slices] vector of partial sums (zeros for missing terms); the vectors are added with
// addAll and summed at the end. One workgroup a term (the first form) left the recipe's 12.8M-element fc weight to a
// single one of the H100's 132 SMs: 151 dispatches took 146 ms of GPU time per step (an H100 profile, bench/device/webgpu-maskrcnn.h100.json).
import * as tf from '@tensorflow/tfjs';
import { addAll } from '../../add-all.js';
import { runProgram } from './flat-program.js';

const GROUP = 7;
const THREADS = 256;
/** Elements a thread should sum at least before a term is split over more workgroups; at most MAX_SLICES. */
const PER_THREAD = 64;
const MAX_SLICES = 128;
const NAMES = ['A', 'B', 'C', 'D', 'E', 'F', 'G'];

/** A term's buffers in a program: x, and w where the term has a decay part. */
interface TermLayout {
  x: string;
  w?: string;
}

class SumOfSquaresProgram {
  readonly variableNames: string[];
  readonly uniforms: string;
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;

  constructor(private readonly terms: TermLayout[], private readonly slices: number) {
    this.variableNames = terms.flatMap((t) => (t.w ? [t.x, t.w] : [t.x]));
    this.uniforms = [...terms.map((_, k) => `n${k} : i32,`), ...terms.map((_, k) => `s${k} : f32,`), ...terms.map((_, k) => `c${k} : f32,`)].join(' ');
    this.outputShape = [GROUP * slices];
    this.dispatch = [slices, GROUP, 1];
    this.shaderKey = `runner_sum_of_squares_${slices}_${terms.map((t) => (t.w ? 'p' : 's')).join('')}`;
  }

  getUserCode(): string {
    // No early return before the barriers: every thread of a workgroup reaches each one (WGSL's uniformity rule).
    const cases = this.terms.map((t, k) => `
          case ${k}: {
            for (var i = first; i < uniforms.n${k}; i = i + ${THREADS * this.slices}) { let x = ${t.w ? `${t.x}[i] + uniforms.c${k} * ${t.w}[i]` : `${t.x}[i]`}; acc = acc + x * x; }
            acc = acc * uniforms.s${k};
          }`).join('');
    return `
      var<workgroup> partial : array<f32, ${THREADS}>;
      fn main(index : i32) {
        let slice = i32(workgroupId.x);
        let k = i32(workgroupId.y);
        let t = i32(localId.x);
        let first = slice * ${THREADS} + t;
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
        if (t == 0) { setOutputAtIndex(k * ${this.slices} + slice, partial[0]); }
      }
    `;
  }
}


/** What a term adds besides its tensor: c * w, w the same shape as the term's tensor. */
export interface DecayPart {
  weight: tf.Tensor;
  coefficient: number;
}

/**
 * sum over k of scales[k] * sum((tensors[k] + c_k * w_k)^2) (c_k w_k where `decay[k]` is given), as a scalar
 * tensor; webgpu only, float32 tensors.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[], scales: readonly number[], decay: readonly (DecayPart | undefined)[] = []): tf.Scalar {
  if (tensors.length !== scales.length) throw new Error('sumOfSquares: one scale per tensor');
  if (tf.getBackend() !== 'webgpu') throw new Error(`sumOfSquares: needs the webgpu backend, not ${tf.getBackend()}`);
  const terms = tensors.map((x, k) => ({ x, scale: scales[k]!, decay: decay[k] })).filter((t) => t.x.size > 0); // nothing to bind or add
  for (const t of terms) {
    if (t.x.dtype !== 'float32' || (t.decay && (t.decay.weight.dtype !== 'float32' || t.decay.weight.size !== t.x.size))) {
      throw new Error('sumOfSquares: float32 tensors only, each decay weight the size of its term');
    }
  }
  if (terms.length === 0) return tf.scalar(0);
  // The same number of slices in every program of the call, so their outputs add elementwise.
  const largest = Math.max(...terms.map((t) => t.x.size));
  const slices = Math.min(MAX_SLICES, 2 ** Math.ceil(Math.log2(Math.ceil(largest / (THREADS * PER_THREAD)))));
  return tf.tidy(() => {
    const groups: tf.Tensor[] = [];
    for (let start = 0; start < terms.length;) {
      // As many terms as fit 7 buffers.
      const group: typeof terms = [];
      let buffers = 0;
      while (start < terms.length && group.length < GROUP && buffers + (terms[start]!.decay ? 2 : 1) <= GROUP) {
        buffers += terms[start]!.decay ? 2 : 1;
        group.push(terms[start++]!);
      }
      let next = 0;
      const layout = group.map((t) => (t.decay ? { x: NAMES[next++]!, w: NAMES[next++]! } : { x: NAMES[next++]! }));
      const inputs = group.flatMap((t) => (t.decay ? [t.x, t.decay.weight] : [t.x]));
      const uniforms = [
        ...group.map((t) => ({ type: 'int32' as const, data: [t.x.size] })),
        ...group.map((t) => ({ type: 'float32' as const, data: [t.scale] })),
        ...group.map((t) => ({ type: 'float32' as const, data: [t.decay?.coefficient ?? 0] })),
      ];
      groups.push(tf.engine().makeTensorFromTensorInfo(runProgram(new SumOfSquaresProgram(layout, slices), inputs, uniforms)));
    }
    return tf.sum(addAll(groups)) as tf.Scalar;
  });
}
