// The asynchronous model paths (trainStepAsync, lossesAsync, detectAsync) against the synchronous ones, on wasm
// and cpu. Webgpu in Node cannot read a tensor synchronously; here a guard makes every synchronous read throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/model/backend.js';
import type { MaskRcnnConfig } from '../../stages/model/config.js';
import { MaskRcnn, type Losses } from '../../stages/model/mask-rcnn.js';
import { buildTrainBatch, buildTrainBatchAsync } from '../../stages/model/molding.js';
import { needsAsyncReadBack } from '../../stages/model/read-back.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { squares } from '../helpers/square-nuclei.js';
import { TINY_SIZE, tinyMaskRcnnConfig } from '../helpers/tiny-mask-rcnn.js';

const size = TINY_SIZE;

function smallConfig(overrides: Record<string, unknown> = {}): MaskRcnnConfig {
  return tinyMaskRcnnConfig({ detection: { minConfidence: 0 }, ...overrides });
}

const twoImages = [squares(size, size, [[5, 5], [30, 35]]), squares(size, size, [])];

/** Runs fn with every synchronous tensor read (dataSync, arraySync, bufferSync all go through the engine) throwing. */
async function withoutSyncReads<T>(fn: () => Promise<T>): Promise<T> {
  // Kernels of cpu/wasm read their own inputs through the backend, which is allowed: what webgpu in Node lacks is
  // the engine-level read of a tensor that lives on the device.
  const engine = tf.engine() as unknown as { readSync: (dataId: object) => unknown };
  const original = engine.readSync;
  engine.readSync = () => { throw new Error('synchronous read-back attempted'); };
  try {
    return await fn();
  } finally {
    engine.readSync = original;
  }
}

/** |a - b| <= 1e-5 relative, with values under `floor` in size compared at the floor. */
function assertClose(actual: number, expected: number, what: string, floor = 1e-3): void {
  assert.ok(Math.abs(actual - expected) <= 1e-5 * Math.max(Math.abs(expected), floor), `${what}: ${actual} vs ${expected}`);
}

function assertLossesClose(actual: Losses, expected: Losses, what: string): void {
  for (const [name, value] of Object.entries(expected)) assertClose(actual[name as keyof Losses], value, `${what} ${name}`);
}

function assertSameWeights(a: MaskRcnn, b: MaskRcnn): void {
  assert.deepEqual(b.store.names(), a.store.names());
  for (const name of a.store.names()) {
    const x = a.store.get(name)!.dataSync();
    const y = b.store.get(name)!.dataSync();
    // Weights are compared at a floor of 1e-2: a step moves a weight by up to the learning rate, 1e-3.
    for (let i = 0; i < x.length; i++) assertClose(y[i]!, x[i]!, `${name}[${i}]`, 1e-2);
  }
}

for (const backend of ['wasm', 'cpu'] as const) {
  // The cpu backend is ~10x slower: one image and one step there, every case on wasm.
  const onWasm = backend === 'wasm';

  test(`on ${backend}, trainStepAsync returns trainStep's losses and leaves the same weights${onWasm ? ' (two steps, a batch of two, one image without nuclei)' : ''}`, async () => {
    await selectBackend(backend, () => {}, { threads: 1 });
    const config = smallConfig();
    const samples = onWasm ? twoImages : twoImages.slice(0, 1);
    const batch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
    const sync = new MaskRcnn(config);
    const asynchronous = new MaskRcnn(config);
    sync.roiAlignImplementation = 'gather'; // the asynchronous path's ROIAlign, so the arithmetic is the same
    const syncOptimizer = new Amsgrad({ learningRate: 1e-3 });
    const asyncOptimizer = new Amsgrad({ learningRate: 1e-3 });
    for (let step = 1; step <= (onWasm ? 2 : 1); step++) {
      const expected = sync.trainStep(syncOptimizer, batch);
      const actual = await withoutSyncReads(() => asynchronous.trainStepAsync(asyncOptimizer, batch));
      assert.ok(expected.loss_mask > 0, 'GT boxes as proposals give positive ROIs, so the heads are exercised');
      assertLossesClose(actual, expected, `step ${step}`);
    }
    assertSameWeights(sync, asynchronous);
    for (const model of [sync, asynchronous]) model.dispose();
    syncOptimizer.dispose();
    asyncOptimizer.dispose();
    batch.images.dispose();
  });
}

test('with trained batch-norm, trainStepAsync updates the moving statistics once, as trainStep does', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig({ backbone: { fpnChannels: 8, trainBatchNorm: true } });
  const batch = buildTrainBatch(twoImages.slice(0, 1), { ...config.image }, seededRng(2));
  const sync = new MaskRcnn(config);
  const asynchronous = new MaskRcnn(config);
  sync.roiAlignImplementation = 'gather';
  asynchronous.build();
  const before = asynchronous.store.get('bn2a_branch2a/moving_mean')!.dataSync().slice();
  assertLossesClose(await asynchronous.trainStepAsync(new Amsgrad({ learningRate: 1e-3 }), batch), sync.trainStep(new Amsgrad({ learningRate: 1e-3 }), batch), 'step');
  assert.notDeepEqual(asynchronous.store.get('bn2a_branch2a/moving_mean')!.dataSync(), before, 'the step moved the statistics');
  assertSameWeights(sync, asynchronous);
  sync.dispose();
  asynchronous.dispose();
  batch.images.dispose();
});

test('the default synchronous path (JS ROIAlign on wasm) and the asynchronous one agree on the losses', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const batch = buildTrainBatch(twoImages, { ...config.image }, seededRng(3));
  const sync = new MaskRcnn(config);
  const asynchronous = new MaskRcnn(config);
  assertLossesClose(await asynchronous.trainStepAsync(new Amsgrad({ learningRate: 1e-3 }), batch), sync.trainStep(new Amsgrad({ learningRate: 1e-3 }), batch), 'step');
  sync.dispose();
  asynchronous.dispose();
  batch.images.dispose();
});

test('lossesAsync equals losses and detectAsync finds what detect finds, without a synchronous read', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const sync = new MaskRcnn(config);
  const asynchronous = new MaskRcnn(config);
  sync.roiAlignImplementation = 'gather';
  const batch = buildTrainBatch(twoImages, { ...config.image }, seededRng(4));
  const asyncBatch = await withoutSyncReads(() => buildTrainBatchAsync(twoImages, { ...config.image }, seededRng(4)));
  assert.deepEqual(asyncBatch.images.dataSync(), batch.images.dataSync());
  assert.deepEqual(asyncBatch.gtBoxes, batch.gtBoxes);
  assert.deepEqual(await withoutSyncReads(() => asynchronous.lossesAsync(asyncBatch)), sync.losses(batch));

  const images = [squares(50, 40, [[5, 5], [20, 20]]).image, squares(size, size, [[10, 10]]).image];
  const expected = sync.detectImages(images);
  const actual = await withoutSyncReads(() => asynchronous.detectImagesAsync(images));
  assert.ok(expected.every((found) => found.scores.length > 0), 'with minConfidence 0 a random model detects something');
  assert.deepEqual(actual, expected);
  for (const model of [sync, asynchronous]) model.dispose();
  for (const b of [batch, asyncBatch]) b.images.dispose();
});

test('the guard catches a synchronous read: the synchronous forms fail under it', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const model = new MaskRcnn(config);
  const batch = buildTrainBatch(twoImages.slice(0, 1), { ...config.image }, seededRng(5));
  model.build();
  await withoutSyncReads(async () => {
    assert.throws(() => tf.scalar(1).add(1).dataSync(), /synchronous read-back attempted/);
    assert.throws(() => model.losses(batch), /synchronous read-back attempted/);
    assert.throws(() => model.detectImages([twoImages[0]!.image]), /synchronous read-back attempted/);
  });
  model.dispose();
  batch.images.dispose();
});

test('the asynchronous forms leave no tensor behind', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-3 });
  const batch = buildTrainBatch(twoImages, { ...config.image }, seededRng(6));
  await model.trainStepAsync(optimizer, batch); // creates the optimizer's slots and the anchors tensor
  const tensors = tf.memory().numTensors;
  await model.trainStepAsync(optimizer, batch);
  await model.lossesAsync(batch);
  await model.detectImagesAsync([twoImages[0]!.image]);
  assert.equal(tf.memory().numTensors, tensors);
  model.dispose();
  optimizer.dispose();
  batch.images.dispose();
});

test('only webgpu needs the asynchronous forms', () => {
  assert.equal(needsAsyncReadBack('webgpu'), true);
  for (const backend of ['wasm', 'cpu', 'tensorflow', 'webgl']) assert.equal(needsAsyncReadBack(backend), false);
});
