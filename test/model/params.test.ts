import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore, fans } from '../../stages/model/params.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('variable() creates on the first call and returns the same variable afterwards', () => {
  const store = new ParameterStore(1);
  const a = store.variable('conv1/kernel', [3, 3, 2, 4], 'glorot-uniform');
  const b = store.variable('conv1/kernel', [3, 3, 2, 4], 'zeros');
  assert.equal(a, b);
  assert.deepEqual(store.names(), ['conv1/kernel']);
  store.dispose();
});

test('asking for an existing variable with another shape is an error naming it', () => {
  const store = new ParameterStore(1);
  store.variable('fpn_c5p5/kernel', [1, 1, 8, 4], 'glorot-uniform');
  assert.throws(() => store.variable('fpn_c5p5/kernel', [1, 1, 8, 5], 'glorot-uniform'), /fpn_c5p5\/kernel.*\[1,1,8,5\].*\[1,1,8,4\]/);
  store.dispose();
});

test('initial values depend on the seed and the name, not on the order of creation', () => {
  const first = new ParameterStore(7);
  const x1 = first.variable('x', [4, 5], 'glorot-uniform').arraySync();
  const y1 = first.variable('y', [4, 5], 'glorot-uniform').arraySync();
  const second = new ParameterStore(7);
  const y2 = second.variable('y', [4, 5], 'glorot-uniform').arraySync();
  const x2 = second.variable('x', [4, 5], 'glorot-uniform').arraySync();
  assert.deepEqual(x1, x2);
  assert.deepEqual(y1, y2);
  assert.notDeepEqual(x1, y1);
  const other = new ParameterStore(8);
  assert.notDeepEqual(other.variable('x', [4, 5], 'glorot-uniform').arraySync(), x1);
  first.dispose();
  second.dispose();
  other.dispose();
});

test('glorot-uniform stays within Keras limit sqrt(6 / (fanIn + fanOut)); zeros and ones are constant', () => {
  const store = new ParameterStore(3);
  const kernel = store.variable('k', [3, 3, 16, 32], 'glorot-uniform').dataSync();
  const limit = Math.sqrt(6 / (9 * 16 + 9 * 32));
  assert.ok(kernel.every((v) => Math.abs(v) <= limit));
  assert.ok(Math.max(...kernel) > limit * 0.9, 'values fill the range');
  assert.ok(store.variable('b', [5], 'zeros').dataSync().every((v) => v === 0));
  assert.ok(store.variable('g', [5], 'ones').dataSync().every((v) => v === 1));
  const he = Array.from(store.variable('h', [1, 1, 200, 100], 'he-normal').dataSync());
  const std = Math.sqrt(he.reduce((s, v) => s + v * v, 0) / he.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 200)) < 0.01, `he-normal stddev ${std}`);
  store.dispose();
});

test('fans follow Keras: conv kernels multiply by the receptive field', () => {
  assert.deepEqual(fans([3, 3, 16, 32]), { fanIn: 144, fanOut: 288 });
  assert.deepEqual(fans([10, 20]), { fanIn: 10, fanOut: 20 });
});

test('trainable and decayed variables follow the options (BN gamma/beta not decayed, moving stats frozen)', () => {
  const store = new ParameterStore(1);
  store.variable('bn/gamma', [2], 'ones', { decay: false });
  store.variable('bn/moving_mean', [2], 'zeros', { trainable: false });
  store.variable('conv/kernel', [1, 1, 2, 2], 'glorot-uniform');
  store.variable('conv/bias', [2], 'zeros');
  const names = (vs: tf.Variable[]) => vs.map((v) => store.nameOf(v));
  assert.deepEqual(names(store.trainableVariables()), ['bn/gamma', 'conv/bias', 'conv/kernel']);
  assert.deepEqual(names(store.decayedVariables()), ['conv/bias', 'conv/kernel']);
  assert.equal(store.setTrainable((n) => n.startsWith('conv/'), false), 2);
  assert.deepEqual(names(store.trainableVariables()), ['bn/gamma']);
  assert.deepEqual(names(store.decayedVariables()), []);
  store.dispose();
});

test('assign checks the shape and names the variable', () => {
  const store = new ParameterStore(1);
  store.variable('rpn_bbox_pred/bias', [12], 'zeros');
  store.assign('rpn_bbox_pred/bias', tf.fill([12], 2));
  assert.ok(store.get('rpn_bbox_pred/bias')!.dataSync().every((v) => v === 2));
  assert.throws(() => store.assign('rpn_bbox_pred/bias', tf.zeros([6])), /rpn_bbox_pred\/bias.*\[6\].*\[12\]/);
  assert.throws(() => store.assign('nope', tf.zeros([6])), /nope: no such variable/);
  store.dispose();
});

test('two stores with the same variable names live side by side', () => {
  const a = new ParameterStore(1);
  const b = new ParameterStore(1);
  a.variable('w', [2], 'ones');
  b.variable('w', [2], 'zeros');
  assert.deepEqual(Array.from(a.get('w')!.dataSync()), [1, 1]);
  assert.deepEqual(Array.from(b.get('w')!.dataSync()), [0, 0]);
  assert.equal(a.nameOf(a.get('w')!), 'w');
  assert.equal(a.nameOf(b.get('w')!), undefined);
  a.dispose();
  b.dispose();
});

test('an adopted variable keeps its value and takes its options from the first variable() call', () => {
  const store = new ParameterStore(1);
  store.adopt('bn/moving_variance', tf.tensor1d([4, 5]));
  const v = store.variable('bn/moving_variance', [2], 'ones', { trainable: false });
  assert.deepEqual(Array.from(v.dataSync()), [4, 5]);
  assert.equal(v.trainable, false);
  assert.throws(() => store.variable('bn/moving_variance', [3], 'ones'), /bn\/moving_variance/);
  store.dispose();
});

test('dispose releases every variable', () => {
  const before = tf.memory().numTensors;
  const store = new ParameterStore(1);
  store.variable('a', [3], 'glorot-uniform');
  store.variable('b', [3, 3], 'he-normal');
  store.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(store.names(), []);
});
