// Our wasm conv kernels (Conv2DBackpropFilter, Conv2DBackpropInput, the SAME-padding fix of Conv2D) give the
// cpu backend's gradients within 1e-5 relative, on random shapes, strides 1-3, same and valid padding.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { selectBackend } from '../../../stages/model/backend.js';
import { assertAllClose, gradientsOn, randomInput, runOn } from './compare-backends.js';

const tolerance = 1e-5;

before(async () => {
  await selectBackend('wasm', () => {}, { threads: 1, nativeKernels: false }); // the wasm kernels, not the OpenBLAS ones (wasm-blas-kernels.test.ts)
});

interface ConvCase {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: number;
  pad: 'same' | 'valid';
}

/** Random small convolutions covering every stride/padding/kernel-size combination the model can meet. */
function randomCases(count: number, seed: string): ConvCase[] {
  const random = seedrandom(seed);
  const pick = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const cases: ConvCase[] = [];
  for (let i = 0; i < count; i++) {
    const stride = 1 + (i % 3);
    const kernel: [number, number] = [pick(1, 4), pick(1, 4)];
    cases.push({
      batch: pick(1, 2), height: pick(kernel[0] + 2, 13), width: pick(kernel[1] + 2, 13),
      inChannels: pick(1, 5), outChannels: pick(1, 5), kernel, stride, pad: i % 2 === 0 ? 'same' : 'valid',
    });
  }
  return cases;
}

function describe(c: ConvCase): string {
  return `x [${c.batch},${c.height},${c.width},${c.inChannels}] filter ${c.kernel.join('x')}x${c.outChannels} stride ${c.stride} ${c.pad}`;
}

test('conv2d gradients w.r.t. input and filter on wasm match cpu for random shapes, strides 1-3, same and valid', () => {
  for (const [n, c] of randomCases(18, 'conv-cases').entries()) {
    const x = randomInput([c.batch, c.height, c.width, c.inChannels], `x${n}`);
    const w = randomInput([...c.kernel, c.inChannels, c.outChannels], `w${n}`);
    const f = (xt: tf.Tensor, wt: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.stride, c.pad);
    assertAllClose(gradientsOn('wasm', [x, w], f), gradientsOn('cpu', [x, w], f), tolerance, describe(c));
  }
});

test('the ResNet shapes: 7x7/2 stem, 3x3/1 and 1x1/2 convs give cpu gradients on wasm', () => {
  const shapes: ConvCase[] = [
    { batch: 2, height: 32, width: 32, inChannels: 3, outChannels: 8, kernel: [7, 7], stride: 2, pad: 'same' },
    { batch: 2, height: 16, width: 16, inChannels: 8, outChannels: 8, kernel: [3, 3], stride: 1, pad: 'same' },
    { batch: 2, height: 16, width: 16, inChannels: 8, outChannels: 16, kernel: [1, 1], stride: 2, pad: 'valid' },
  ];
  for (const [n, c] of shapes.entries()) {
    const x = randomInput([c.batch, c.height, c.width, c.inChannels], `rx${n}`);
    const w = randomInput([...c.kernel, c.inChannels, c.outChannels], `rw${n}`);
    const f = (xt: tf.Tensor, wt: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.stride, c.pad);
    assertAllClose(gradientsOn('wasm', [x, w], f), gradientsOn('cpu', [x, w], f), tolerance, describe(c));
  }
});

test('a SAME conv whose stride exceeds its kernel (2x2 stride 3) is right on wasm, where stock XNNPACK is not', () => {
  const x = randomInput([1, 11, 12, 3], 'sx');
  const w = randomInput([2, 2, 3, 4], 'sw');
  const f = (xt: tf.Tensor, wt: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 3, 'same');
  assertAllClose(runOn('wasm', [x, w], f), runOn('cpu', [x, w], f), tolerance, 'forward 2x2/3 same');
  const fused = (xt: tf.Tensor, wt: tf.Tensor) => tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: wt as tf.Tensor4D, strides: 3, pad: 'same', activation: 'relu' });
  assertAllClose(runOn('wasm', [x, w], fused), runOn('cpu', [x, w], fused), tolerance, 'fused forward 2x2/3 same');
});

test('conv2dTranspose (the mask head 2x2/2 upsampling) and its gradients on wasm match cpu', () => {
  const x = randomInput([3, 7, 7, 6], 'tx');
  const w = randomInput([2, 2, 4, 6], 'tw'); // [kh, kw, outChannels, inChannels]
  const f = (xt: tf.Tensor, wt: tf.Tensor) => tf.conv2dTranspose(xt as tf.Tensor4D, wt as tf.Tensor4D, [3, 14, 14, 4], 2, 'valid');
  assertAllClose(runOn('wasm', [x, w], f), runOn('cpu', [x, w], f), tolerance, 'conv2dTranspose forward');
  assertAllClose(gradientsOn('wasm', [x, w], f), gradientsOn('cpu', [x, w], f), tolerance, 'conv2dTranspose gradients');
});

test('the gradient kernels free their intermediates: no wasm tensors are left after a backward pass', () => {
  const x = randomInput([2, 9, 9, 3], 'lx');
  const w = randomInput([3, 3, 3, 4], 'lw');
  tf.setBackend('wasm');
  gradientsOn('wasm', [x, w], (xt, wt) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 2, 'same')); // warm up
  const before = tf.memory().numTensors;
  const backendBefore = tf.backend().numDataIds();
  gradientsOn('wasm', [x, w], (xt, wt) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 2, 'same'));
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.backend().numDataIds(), backendBefore);
});
