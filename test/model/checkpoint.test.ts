import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ParameterStore } from '../../stages/model/params.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from '../../stages/model/checkpoint.js';

before(async () => {
  await tf.setBackend('cpu');
});

const made: string[] = [];
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'checkpoint-test-'));
  made.push(dir);
  return dir;
}

function smallStore(seed: number): ParameterStore {
  const store = new ParameterStore(seed);
  store.variable('conv1/kernel', [3, 3, 2, 4], 'glorot-uniform');
  store.variable('conv1/bias', [4], 'zeros');
  store.variable('bn_conv1/gamma', [4], 'ones', { decay: false });
  store.variable('bn_conv1/moving_mean', [4], { normal: 1 }, { trainable: false });
  return store;
}

test('a checkpoint round-trips every variable, its flags, the meta object and extra tensors', async () => {
  const dir = join(tempDir(), 'ckpt');
  const source = smallStore(1);
  const extra = { 'adam/step': tf.scalar(7, 'int32'), 'adam/conv1/kernel/m': tf.fill([3, 3, 2, 4], 0.25) };
  await saveCheckpoint(dir, source, { epoch: 3, config: { backbone: 'small' } }, { extra });
  assert.deepEqual(readdirSync(dir).sort(), ['extra.bin', 'model.json', 'weights.bin']);
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  assert.deepEqual(json.weightsManifest[0].weights[0], { name: 'bn_conv1/gamma', shape: [4], dtype: 'float32' });
  assert.deepEqual(readCheckpointMeta(dir), { epoch: 3, config: { backbone: 'small' } });

  const target = new ParameterStore(2);
  const result = await loadCheckpoint(dir, target);
  assert.deepEqual(result.created, source.names());
  assert.deepEqual(result.loaded, []);
  assert.deepEqual(result.meta, { epoch: 3, config: { backbone: 'small' } });
  for (const name of source.names()) {
    assert.deepEqual(Array.from(target.get(name)!.dataSync()), Array.from(source.get(name)!.dataSync()), name);
  }
  assert.equal(target.get('bn_conv1/moving_mean')!.trainable, false);
  assert.equal(target.isDecayed('bn_conv1/gamma'), false);
  assert.equal(target.isDecayed('conv1/kernel'), true);
  assert.equal(result.extra['adam/step']!.dtype, 'int32');
  assert.equal(result.extra['adam/step']!.dataSync()[0], 7);
  assert.deepEqual(result.extra['adam/conv1/kernel/m']!.shape, [3, 3, 2, 4]);
  // The model asking for a loaded variable gets it, shape-checked.
  assert.equal(target.variable('conv1/kernel', [3, 3, 2, 4], 'glorot-uniform'), target.get('conv1/kernel'));
  source.dispose();
  target.dispose();
});

test('loading into a built model overwrites its variables', async () => {
  const dir = join(tempDir(), 'ckpt');
  const source = smallStore(1);
  await saveCheckpoint(dir, source, {});
  const target = smallStore(2);
  assert.notDeepEqual(target.get('conv1/kernel')!.dataSync(), source.get('conv1/kernel')!.dataSync());
  const result = await loadCheckpoint(dir, target);
  assert.equal(result.loaded.length, 4);
  assert.deepEqual(target.get('conv1/kernel')!.dataSync(), source.get('conv1/kernel')!.dataSync());
  assert.deepEqual(result.extra, {});
  source.dispose();
  target.dispose();
});

test('a shape mismatch names the variable and leaves the store untouched', async () => {
  const dir = join(tempDir(), 'ckpt');
  const source = smallStore(1);
  await saveCheckpoint(dir, source, {});
  const target = new ParameterStore(2);
  target.variable('conv1/kernel', [3, 3, 2, 8], 'glorot-uniform');
  const bias = target.variable('conv1/bias', [4], 'ones');
  await assert.rejects(loadCheckpoint(dir, target), /shape mismatch for conv1\/kernel \(checkpoint \[3,3,2,4\], model \[3,3,2,8\]\)/);
  assert.deepEqual(Array.from(bias.dataSync()), [1, 1, 1, 1]);
  assert.deepEqual(target.names(), ['conv1/bias', 'conv1/kernel']);
  source.dispose();
  target.dispose();
});

test('a variable the checkpoint lacks is an error when strict and reported otherwise', async () => {
  const dir = join(tempDir(), 'ckpt');
  const source = smallStore(1);
  await saveCheckpoint(dir, source, {});
  const target = smallStore(2);
  target.variable('rpn_conv_shared/kernel', [3, 3, 4, 4], 'glorot-uniform');
  await assert.rejects(loadCheckpoint(dir, target), /missing variable rpn_conv_shared\/kernel/);
  const result = await loadCheckpoint(dir, target, { strict: false });
  assert.deepEqual(result.missing, ['rpn_conv_shared/kernel']);
  assert.equal(result.loaded.length, 4);
  source.dispose();
  target.dispose();
});

test('a failed save keeps the previous checkpoint and leaves no temporary directory', async () => {
  const parent = tempDir();
  const dir = join(parent, 'ckpt');
  const store = smallStore(1);
  await saveCheckpoint(dir, store, { epoch: 1 });
  await assert.rejects(saveCheckpoint(dir, store, { epoch: 2n } as unknown as Record<string, unknown>), /BigInt/);
  assert.deepEqual(readCheckpointMeta(dir), { epoch: 1 });
  assert.deepEqual(readdirSync(parent), ['ckpt']);
  await saveCheckpoint(dir, store, { epoch: 2 });
  assert.deepEqual(readCheckpointMeta(dir), { epoch: 2 });
  assert.deepEqual(readdirSync(parent), ['ckpt']);
  store.dispose();
});

test('a missing directory or a truncated weights file is an error naming the file', async () => {
  const store = new ParameterStore(1);
  await assert.rejects(loadCheckpoint('/nonexistent/ckpt', store), /checkpoint \/nonexistent\/ckpt: no model.json/);
  const dir = join(tempDir(), 'ckpt');
  const source = smallStore(1);
  await saveCheckpoint(dir, source, {});
  truncateSync(join(dir, 'weights.bin'), 10);
  await assert.rejects(loadCheckpoint(dir, store), /weights.bin: 10 bytes but the manifest describes 336/);
  assert.deepEqual(store.names(), []);
  source.dispose();
  store.dispose();
});
