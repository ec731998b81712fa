// Runs one computation on the cpu backend and on another, and compares the values: tfjs has one active
// backend at a time, so inputs are plain arrays made into tensors on each side, and results are read out
// before switching.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';

export interface Input {
  shape: number[];
  values: Float32Array | Int32Array;
  dtype: 'float32' | 'int32';
}

/** Seeded normal(0, 1) values (Box-Muller), so every run compares the same numbers. */
export function randomInput(shape: number[], seed: string): Input {
  const random = seedrandom(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    values[i] = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  }
  return { shape, values, dtype: 'float32' };
}

export function intInput(shape: number[], values: number[]): Input {
  return { shape, values: Int32Array.from(values), dtype: 'int32' };
}

/** Runs `compute` on `backend` with the inputs as fresh tensors there; returns every output read to arrays. */
export function runOn(backend: string, inputs: Input[], compute: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Float32Array[] {
  assert.ok(tf.setBackend(backend), `backend ${backend} is not available`);
  return tf.tidy(() => {
    const xs = inputs.map((input) => tf.tensor(input.values, input.shape, input.dtype));
    const out = compute(...xs);
    return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync()));
  });
}

/** The gradients of sum(f(inputs) * fixed random weights) w.r.t. the float inputs, on `backend`. */
export function gradientsOn(backend: string, inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor, seed = 'weights'): Float32Array[] {
  const floatIndices = inputs.flatMap((input, i) => (input.dtype === 'float32' ? [i] : []));
  return runOn(backend, inputs, (...xs) => {
    const outShape = tf.tidy(() => f(...xs).shape);
    const weights = randomInput(outShape, seed);
    const w = tf.tensor(weights.values, outShape);
    const loss = (...floats: tf.Tensor[]) => {
      const args = xs.map((x, i) => floats[floatIndices.indexOf(i)] ?? x);
      return tf.sum(tf.mul(f(...args), w));
    };
    return tf.grads(loss)(floatIndices.map((i) => xs[i] as tf.Tensor));
  });
}

/**
 * The gradient of sum(f(x) * weights) for a LINEAR f, from forward passes alone: component i is
 * sum(f(e_i) * weights) for the basis input e_i. An independent reference where the cpu backend's own
 * gradient kernel is wrong (ResizeNearestNeighborGrad, ResizeBilinearGrad). Keep x small.
 */
export function linearOpGradient(backend: string, x: Input, f: (x: tf.Tensor) => tf.Tensor, seed = 'weights'): Float32Array[] {
  const size = x.values.length;
  const basisOutputs = runOn(backend, [], () => {
    const outShape = tf.tidy(() => f(tf.zeros(x.shape)).shape);
    const w = tf.tensor(randomInput(outShape, seed).values, outShape);
    return tf.stack(Array.from({ length: size }, (_, i) => {
      const basis = new Float32Array(size);
      basis[i] = 1;
      return tf.sum(tf.mul(f(tf.tensor(basis, x.shape)), w));
    }));
  });
  return basisOutputs;
}

/**
 * The max-abs-relative error: max |actual - expected| over max |expected|, with a small absolute floor on the
 * denominator (an all-zero gradient must then match to 1e-9). Per-element relative error would instead
 * measure float32 summation order on elements near zero: cpu sums conv gradients in float64, XNNPACK in float32.
 */
export function maxRelativeError(actual: Float32Array, expected: Float32Array, floor = 1e-4): number {
  assert.equal(actual.length, expected.length, 'outputs differ in size');
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    if (!Number.isFinite(a)) return Infinity;
    scale = Math.max(scale, Math.abs(expected[i] as number));
    worst = Math.max(worst, Math.abs(a - (expected[i] as number)));
  }
  return worst / Math.max(scale, floor);
}

/** Asserts each output of `actual` matches `expected` within `tolerance` relative (see maxRelativeError). */
export function assertAllClose(actual: Float32Array[], expected: Float32Array[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} outputs, expected ${expected.length}`);
  expected.forEach((e, i) => {
    const error = maxRelativeError(actual[i] as Float32Array, e);
    assert.ok(error <= tolerance, `${what}, output ${i}: relative error ${error.toExponential(2)} > ${tolerance}`);
  });
}
