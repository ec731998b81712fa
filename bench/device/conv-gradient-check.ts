// The GPU half of the correctness rule: conv2d's gradients (input and filter) on webgpu against the
// cpu backend, max |a - b| over max |b| (floor 1e-4), on random shapes, kernel sizes 1-4, strides 1-3, same and
// valid, plus three ResNet-sized ones. Used by webgpu-step.ts and webgpu-diagnose.ts (kernelCheck).
import * as tf from '@tensorflow/tfjs';

export type ConvCase = [xShape: number[], filterShape: number[], stride: number, pad: 'same' | 'valid'];

export function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** [dx, dW] of sum(conv2d(x, w) * weights) on `backend`, read back with data() (webgpu in Node has no dataSync). */
export async function convGrads(backend: string, xs: Float32Array, ws: Float32Array, xShape: number[], wShape: number[], stride: number, pad: 'same' | 'valid'): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const grads = tf.tidy(() => {
    const x = tf.tensor4d(xs, xShape as [number, number, number, number]);
    const w = tf.tensor4d(ws, wShape as [number, number, number, number]);
    const y = tf.conv2d(x, w, stride, pad);
    const weights = tf.tensor(seeded(y.size, 7), y.shape);
    return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), weights)))([x, w]);
  });
  const values = await Promise.all(grads.map(async (g) => Float32Array.from(await g.data())));
  tf.dispose(grads);
  return values;
}

export const maxAbsRelative = (a: Float32Array, e: Float32Array): number => {
  let worst = 0;
  let scale = 0;
  e.forEach((v, i) => { scale = Math.max(scale, Math.abs(v)); worst = Math.max(worst, Math.abs((a[i] ?? NaN) - v)); });
  return Number.isFinite(worst) ? worst / Math.max(scale, 1e-4) : Infinity;
};

/** 18 small random cases and three ResNet-sized ones (a 3x3 of layer1, a strided 1x1 projection, the 7x7 stem). */
export function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  for (let i = 0; i < 18; i++) {
    const k = 1 + (i % 4);
    const stride = 1 + (i % 3);
    cases.push([[1 + (i % 2), 7 + i, 9 + (i % 5), 1 + (i % 5)], [k, Math.max(1, k - (i % 2)), 1 + (i % 5), 2 + (i % 4)], stride, i % 2 ? 'valid' : 'same']);
  }
  cases.push([[2, 64, 64, 64], [3, 3, 64, 64], 1, 'same'], [[2, 64, 64, 64], [1, 1, 64, 128], 2, 'valid'], [[2, 128, 128, 3], [7, 7, 3, 64], 2, 'same']);
  return cases;
}

/**
 * Each case on cpu, then on webgpu once per variant (`setUp` switches the kernels); rows of {dx, dw} errors per
 * variant, and the worst over `judged` variants.
 */
export async function checkConvGradients(variants: Array<[string, () => void]>, judged: string[]): Promise<{ rows: unknown[]; worst: number }> {
  const rows: unknown[] = [];
  let worst = 0;
  for (const [xShape, wShape, stride, pad] of convCases()) {
    const xs = seeded(xShape.reduce((a, b) => a * b), 1);
    const ws = seeded(wShape.reduce((a, b) => a * b), 2);
    const expected = await convGrads('cpu', xs, ws, xShape, wShape, stride, pad);
    const row: Record<string, unknown> = { x: xShape, filter: wShape, stride, pad };
    for (const [variant, setUp] of variants) {
      setUp();
      const actual = await convGrads('webgpu', xs, ws, xShape, wShape, stride, pad);
      const errors = { dx: maxAbsRelative(actual[0]!, expected[0]!), dw: maxAbsRelative(actual[1]!, expected[1]!) };
      row[variant] = errors;
      if (judged.includes(variant)) worst = Math.max(worst, errors.dx, errors.dw);
    }
    rows.push(row);
  }
  return { rows, worst };
}
