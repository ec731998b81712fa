// The wasm kernels that replace slow stock ones (kernels/wasm/tile.ts, sum-leading-axes.ts,
// matmul-transposes.ts) give the cpu backend's values, forward and through the gradients that use them.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../stages/model/backend.js';
import { leadingAxesCount } from '../../../stages/model/kernels/wasm/sum-leading-axes.js';
import { wasmTileConfig } from '../../../stages/model/kernels/wasm/tile.js';
import { assertAllClose, gradientsOn, intInput, randomInput, runOn, type Input } from './compare-backends.js';

before(async () => {
  await selectBackend('wasm', () => {}, { threads: 1, nativeKernels: false }); // the wasm kernels, not the OpenBLAS ones (wasm-blas-kernels.test.ts)
});

/** f on wasm and on cpu, every output compared. */
function sameAsCpu(inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tolerance: number, what: string): void {
  assertAllClose(runOn('wasm', inputs, f), runOn('cpu', inputs, f), tolerance, what);
}

test('our Tile, Sum and the matMul wrappers are the kernels wasm runs', async () => {
  await selectBackend('wasm', () => {}, { threads: 1, nativeKernels: false }); // the wasm kernels, not the OpenBLAS ones (wasm-blas-kernels.test.ts)
  assert.equal(tf.getKernel(tf.Tile, 'wasm'), wasmTileConfig);
  assert.equal(tf.getKernel(tf.Sum, 'wasm')?.kernelFunc.name, 'sumLeadingAxes');
  for (const name of [tf.BatchMatMul, tf._FusedMatMul]) assert.equal(tf.getKernel(name, 'wasm')?.kernelFunc.name, 'matMulWithMaterialisedTransposes', name);
});

test('Tile on wasm repeats every axis like cpu (float32, int32, bool; zero reps; ranks 1-4)', () => {
  const cases: Array<{ shape: number[]; reps: number[] }> = [
    { shape: [1, 1, 1, 64], reps: [80, 14, 14, 1] }, // frozen batch norm's gradient
    { shape: [2, 3], reps: [3, 2] },
    { shape: [4], reps: [5] },
    { shape: [2, 1, 3], reps: [1, 4, 2] },
    { shape: [3, 2], reps: [0, 2] },
    { shape: [2, 2, 2, 2], reps: [2, 1, 3, 1] },
  ];
  for (const { shape, reps } of cases) {
    sameAsCpu([randomInput(shape, `tile ${shape}`)], (x) => tf.tile(x, reps), 0, `tile [${shape}] by [${reps}]`);
  }
  const size = 6;
  const ints = intInput([2, 3], Array.from({ length: size }, (_, i) => i * 7 - 3));
  sameAsCpu([ints], (x) => tf.tile(x, [2, 3]), 0, 'int32 tile');
  sameAsCpu([ints], (x) => tf.tile(tf.greater(x, 0), [3, 1]).cast('float32'), 0, 'bool tile');
});

test('Sum on wasm over leading axes (our matMul route) and over other axes (stock) matches cpu', () => {
  const big = randomInput([80, 14, 14, 8], 'sum');
  sameAsCpu([big], (x) => tf.sum(x, [0, 1, 2]), 1e-5, 'sum over [0, 1, 2]');
  sameAsCpu([big], (x) => tf.sum(x, [2, 0, 1], true), 1e-5, 'sum over [2, 0, 1], keepDims');
  sameAsCpu([big], (x) => tf.sum(x, 0), 1e-5, 'sum over axis 0');
  sameAsCpu([big], (x) => tf.sum(x), 1e-4, 'sum over all axes (one number: float32 cancellation)');
  sameAsCpu([big], (x) => tf.sum(x, [-4, -3]), 1e-5, 'sum over negative leading axes');
  sameAsCpu([big], (x) => tf.sum(x, [1, 2]), 1e-5, 'sum over [1, 2] (stock)');
  sameAsCpu([big], (x) => tf.sum(x, -1), 1e-5, 'sum over the last axis (stock)');
  sameAsCpu([intInput([3, 2], [1, 2, 3, 4, 5, 6])], (x) => tf.sum(x, 0), 0, 'int32 sum (stock)');
  // The gradients a train step takes it through: a conv's bias and a broadcast multiply.
  const x = randomInput([3, 6, 6, 4], 'x');
  const w = randomInput([3, 3, 4, 5], 'w');
  const bias = randomInput([5], 'b');
  const scale = randomInput([5], 's');
  const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor, st: tf.Tensor) =>
    tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: wt as tf.Tensor4D, strides: 1, pad: 'same', bias: bt, activation: 'relu' }).mul(st);
  assertAllClose(gradientsOn('wasm', [x, w, bias, scale], f), gradientsOn('cpu', [x, w, bias, scale], f), 1e-4, 'conv + bias + scale gradients');
});

test('leadingAxesCount recognises exactly the leading axes', () => {
  assert.equal(leadingAxesCount([0, 1, 2], 4), 3);
  assert.equal(leadingAxesCount([1, 0], 2), 2);
  assert.equal(leadingAxesCount(-2, 2), 1); // -2 of rank 2 is axis 0
  assert.equal(leadingAxesCount([1, 2], 4), undefined);
  assert.equal(leadingAxesCount(undefined, 3), undefined);
  assert.equal(leadingAxesCount([], 3), undefined);
});

test('matMul on wasm with transposed operands (batched and fused) matches cpu, forward and gradients', () => {
  const a = randomInput([7, 5], 'a');
  const b = randomInput([5, 6], 'b');
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const left = ta ? randomInput([5, 7], 'at') : a;
    const right = tb ? randomInput([6, 5], 'bt') : b;
    sameAsCpu([left, right], (x, y) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), 1e-5, `matMul transposeA ${ta} transposeB ${tb}`);
    const bias = randomInput([6], 'bias');
    const fused = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeA: ta, transposeB: tb, bias: z, activation: 'relu' });
    sameAsCpu([left, right, bias], fused, 1e-5, `fused matMul transposeA ${ta} transposeB ${tb}`);
    assertAllClose(gradientsOn('wasm', [left, right, bias], fused), gradientsOn('cpu', [left, right, bias], fused), 1e-5, `fused matMul gradients ${ta} ${tb}`);
  }
  const batchedA = randomInput([3, 5, 4], 'ba');
  const batchedB = randomInput([3, 6, 5], 'bb');
  sameAsCpu([batchedA, batchedB], (x, y) => tf.matMul(x, y, true, true), 1e-5, 'batched matMul, both transposed');
  // A dense layer's gradients: x^T dy and dy W^T.
  const x = randomInput([16, 40], 'dense x');
  const w = randomInput([40, 12], 'dense w');
  const dense = (xt: tf.Tensor, wt: tf.Tensor) => tf.matMul(xt as tf.Tensor2D, wt as tf.Tensor2D);
  assertAllClose(gradientsOn('wasm', [x, w], dense), gradientsOn('cpu', [x, w], dense), 1e-5, 'dense gradients');
});

test('the 1x1 conv filter gradient on wasm (a matMul) matches cpu, with and without bias', () => {
  for (const [b, h, ci, co] of [[3, 5, 4, 2], [2, 4, 3, 7], [1, 6, 8, 8]] as const) {
    const x = randomInput([b, h, h, ci], `x ${b} ${h} ${ci}`);
    const w = randomInput([1, 1, ci, co], `w ${ci} ${co}`);
    const conv = (xt: tf.Tensor, wt: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 1, 'same');
    assertAllClose(gradientsOn('wasm', [x, w], conv), gradientsOn('cpu', [x, w], conv), 1e-5, `1x1 conv [${b},${h},${h},${ci}] -> ${co}`);
    const bias = randomInput([co], `bias ${co}`);
    const fused = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) => tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: wt as tf.Tensor4D, strides: 1, pad: 'valid', bias: bt });
    assertAllClose(gradientsOn('wasm', [x, w, bias], fused), gradientsOn('cpu', [x, w, bias], fused), 1e-5, `fused 1x1 conv [${b},${h},${h},${ci}] -> ${co}`);
  }
});

test('Identity on wasm shares the buffer: a clone keeps its values when the original is disposed, and vice versa', async () => {
  await selectBackend('wasm', () => {}, { threads: 1, nativeKernels: false }); // the wasm kernels, not the OpenBLAS ones (wasm-blas-kernels.test.ts)
  const before = tf.memory().numBytes;
  const x = tf.tensor([1, 2, 3, 4], [2, 2]);
  const copy = tf.clone(x);
  x.dispose();
  assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3, 4]);
  const again = tf.clone(copy);
  copy.dispose();
  assert.deepEqual(Array.from(again.dataSync()), [1, 2, 3, 4]);
  again.dispose();
  assert.equal(tf.memory().numBytes, before, 'no buffer left behind');
  const ints = intInput([3], [5, -6, 7]);
  sameAsCpu([ints], (t) => tf.clone(t).add(1), 0, 'int32 clone');
});
