import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import { ParameterStore } from '../../stages/model/params.js';
import { loadKerasH5 } from '../../stages/model/keras-h5.js';

const dir = mkdtempSync(join(tmpdir(), 'keras-h5-test-'));
before(async () => {
  await tf.setBackend('cpu');
  await h5wasm.ready;
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Weight { name: string; shape: number[]; fill: (i: number) => number }

/** Writes a Keras-layout weights file: root attr layer_names, per layer a group with attr weight_names. */
function writeKerasH5(file: string, layers: Record<string, Weight[]>): void {
  const h5 = new h5wasm.File(file, 'w');
  const names = Object.keys(layers);
  h5.create_attribute('layer_names', names, null, `S${Math.max(...names.map((n) => n.length))}`);
  h5.create_attribute('backend', 'tensorflow');
  for (const [layer, weights] of Object.entries(layers)) {
    const group = h5.create_group(layer);
    group.create_attribute('weight_names', weights.length > 0 ? weights.map((w) => w.name) : [], weights.length > 0 ? null : [0], weights.length > 0 ? null : 'S1');
    for (const weight of weights) {
      // Keras 2 writes `conv1/kernel:0` as nested groups under the layer group; Keras 1 a flat `conv1_W:0`.
      const parts = weight.name.split('/');
      let target = group;
      for (const part of parts.slice(0, -1)) target = (target.keys().includes(part) ? target.get(part) : target.create_group(part)) as typeof group;
      const size = weight.shape.reduce((a, b) => a * b, 1);
      target.create_dataset({ name: parts.at(-1)!, data: Float32Array.from({ length: size }, (_, i) => weight.fill(i)), shape: weight.shape, dtype: '<f' });
    }
  }
  h5.close();
}

const conv = (layer: string, shape: number[], scale: number): Weight[] => [
  { name: `${layer}/kernel:0`, shape, fill: (i) => scale + i * 1e-3 },
  { name: `${layer}/bias:0`, shape: [shape[3]!], fill: (i) => -scale - i },
];
const bn = (layer: string, channels: number): Weight[] =>
  ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((kind, k) => ({ name: `${layer}/${kind}:0`, shape: [channels], fill: (i) => k * 10 + i }));

/** The variables a model with conv1, bn_conv1, res2a_branch2a (real ResNet50 shapes) would have. */
function backboneStore(): ParameterStore {
  const store = new ParameterStore(1);
  store.variable('conv1/kernel', [7, 7, 3, 64], 'glorot-uniform');
  store.variable('conv1/bias', [64], 'zeros');
  for (const kind of ['gamma', 'beta', 'moving_mean', 'moving_variance']) store.variable(`bn_conv1/${kind}`, [64], 'zeros');
  store.variable('res2a_branch2a/kernel', [1, 1, 64, 64], 'glorot-uniform');
  store.variable('res2a_branch2a/bias', [64], 'zeros');
  return store;
}

test('weights load by layer name into the right variables; a layer with no variable is reported as skipped', async () => {
  const file = join(dir, 'resnet50-part.h5');
  writeKerasH5(file, {
    input_1: [],
    conv1_pad: [],
    conv1: conv('conv1', [7, 7, 3, 64], 0.5),
    bn_conv1: bn('bn_conv1', 64),
    res2a_branch2a: conv('res2a_branch2a', [1, 1, 64, 64], 0.25),
    res2a_branch2b: conv('res2a_branch2b', [3, 3, 64, 64], 0.125),
  });
  const store = backboneStore();
  const result = await loadKerasH5(file, store);
  assert.deepEqual(result.loaded, ['conv1', 'bn_conv1', 'res2a_branch2a']);
  assert.deepEqual(result.skipped, ['res2a_branch2b']);
  assert.equal(result.variables, 8);
  const kernel = store.get('conv1/kernel')!.dataSync();
  assert.ok(Math.abs(kernel[0]! - 0.5) < 1e-6 && Math.abs(kernel[100]! - 0.6) < 1e-6);
  assert.equal(store.get('conv1/bias')!.dataSync()[2], -2.5);
  assert.equal(store.get('bn_conv1/gamma')!.dataSync()[3], 3);
  assert.equal(store.get('bn_conv1/beta')!.dataSync()[3], 13);
  assert.equal(store.get('bn_conv1/moving_mean')!.dataSync()[3], 23);
  assert.equal(store.get('bn_conv1/moving_variance')!.dataSync()[3], 33);
  assert.ok(Math.abs(store.get('res2a_branch2a/kernel')!.dataSync()[0]! - 0.25) < 1e-6);
  store.dispose();
});

test('a shape mismatch is an error naming the layer, and nothing is assigned', async () => {
  const file = join(dir, 'mismatch.h5');
  writeKerasH5(file, { conv1: conv('conv1', [7, 7, 3, 64], 0.5), res2a_branch2a: conv('res2a_branch2a', [1, 1, 64, 32], 1) });
  const store = backboneStore();
  const before = store.get('conv1/kernel')!.dataSync().slice();
  await assert.rejects(loadKerasH5(file, store), /layer res2a_branch2a: weight res2a_branch2a\/kernel:0 has shape \[1,1,64,32\] but res2a_branch2a\/kernel is \[1,1,64,64\]/);
  assert.deepEqual(store.get('conv1/kernel')!.dataSync(), before);
  store.dispose();
});

test('Keras 1 weight names (conv1_W, bn_conv1_running_std) load by position', async () => {
  const file = join(dir, 'keras1.h5');
  writeKerasH5(file, {
    conv1: [
      { name: 'conv1_W:0', shape: [7, 7, 3, 64], fill: () => 1 },
      { name: 'conv1_b:0', shape: [64], fill: () => 2 },
    ],
    bn_conv1: ['gamma', 'beta', 'running_mean', 'running_std'].map((kind, k) => ({ name: `bn_conv1_${kind}:0`, shape: [64], fill: () => k })),
  });
  const store = backboneStore();
  const result = await loadKerasH5(file, store);
  assert.deepEqual(result.loaded, ['conv1', 'bn_conv1']);
  assert.equal(store.get('conv1/bias')!.dataSync()[0], 2);
  assert.equal(store.get('bn_conv1/moving_variance')!.dataSync()[0], 3);
  store.dispose();
});

test("'resnet50-prefix' loads only ResNet50's layers and lists the others as excluded", async () => {
  const file = join(dir, 'with-top.h5');
  writeKerasH5(file, { conv1: conv('conv1', [7, 7, 3, 64], 0.5), fc1000: conv('fc1000', [1, 1, 64, 10], 1) });
  const store = backboneStore();
  store.variable('fc1000/kernel', [1, 1, 64, 10], 'zeros');
  store.variable('fc1000/bias', [10], 'zeros');
  const result = await loadKerasH5(file, store, { layers: 'resnet50-prefix' });
  assert.deepEqual(result.loaded, ['conv1']);
  assert.deepEqual(result.excluded, ['fc1000']);
  assert.ok(store.get('fc1000/kernel')!.dataSync().every((v) => v === 0));
  store.dispose();
});

test('a missing file or a file that is not HDF5 is a clear error naming it', async () => {
  const store = backboneStore();
  await assert.rejects(loadKerasH5(join(dir, 'none.h5'), store), /keras h5 .*none.h5: file not found/);
  const bogus = join(dir, 'bogus.h5');
  writeFileSync(bogus, 'not hdf5');
  await assert.rejects(loadKerasH5(bogus, store), /keras h5 .*bogus.h5: not an HDF5 file/);
  const plain = join(dir, 'plain.h5');
  const h5 = new h5wasm.File(plain, 'w');
  h5.create_dataset({ name: 'x', data: [1, 2] });
  h5.close();
  await assert.rejects(loadKerasH5(plain, store), /plain.h5: no layer_names attribute/);
  store.dispose();
});
