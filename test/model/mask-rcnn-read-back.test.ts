// The model with the awaited read-back (webgpu's) against the synchronous one, on wasm and cpu: train steps,
// validation losses, detections, and the train loop's queued steps. Webgpu in Node cannot read a tensor
// synchronously; here a guard makes every synchronous read throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/model/backend.js';
import type { MaskRcnnConfig } from '../../stages/model/config.js';
import { MaskRcnn, type Losses } from '../../stages/model/mask-rcnn.js';
import { buildTrainBatch } from '../../stages/model/molding.js';
import { awaitedReadBack, readBackFor, synchronousReadBack, type ReadBack } from '../../stages/model/read-back.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { squares } from '../helpers/square-nuclei.js';
import { TINY_SIZE, tinyMaskRcnnConfig } from '../helpers/tiny-mask-rcnn.js';

const size = TINY_SIZE;

function smallConfig(overrides: Record<string, unknown> = {}): MaskRcnnConfig {
  return tinyMaskRcnnConfig({ detection: { minConfidence: 0 }, ...overrides });
}

/** The synchronous read-back with the awaited one's ROIAlign (gathers), so the arithmetic is the same. */
const synchronousGathering: ReadBack = { ...synchronousReadBack, roiAlign: awaitedReadBack.roiAlign };

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

  test(`on ${backend}, the awaited read-back's train steps give the synchronous one's losses and leave the same weights${onWasm ? ' (two steps, a batch of two, one image without nuclei)' : ''}`, async () => {
    await selectBackend(backend, () => {}, { threads: 1 });
    const config = smallConfig();
    const samples = onWasm ? twoImages : twoImages.slice(0, 1);
    const batch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
    const sync = new MaskRcnn(config, { readBack: synchronousGathering });
    const asynchronous = new MaskRcnn(config, { readBack: awaitedReadBack });
    const syncOptimizer = new Amsgrad({ learningRate: 1e-3 });
    const asyncOptimizer = new Amsgrad({ learningRate: 1e-3 });
    for (let step = 1; step <= (onWasm ? 2 : 1); step++) {
      const expected = await sync.trainStep(syncOptimizer, batch);
      const actual = await withoutSyncReads(() => asynchronous.trainStep(asyncOptimizer, batch));
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

test('with trained batch-norm, the awaited read-back\'s step updates the moving statistics once, as the synchronous one does', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig({ backbone: { fpnChannels: 8, trainBatchNorm: true } });
  const batch = buildTrainBatch(twoImages.slice(0, 1), { ...config.image }, seededRng(2));
  const sync = new MaskRcnn(config, { readBack: synchronousGathering });
  const asynchronous = new MaskRcnn(config, { readBack: awaitedReadBack });
  asynchronous.build();
  const before = asynchronous.store.get('bn2a_branch2a/moving_mean')!.dataSync().slice();
  assertLossesClose(await asynchronous.trainStep(new Amsgrad({ learningRate: 1e-3 }), batch), await sync.trainStep(new Amsgrad({ learningRate: 1e-3 }), batch), 'step');
  assert.notDeepEqual(asynchronous.store.get('bn2a_branch2a/moving_mean')!.dataSync(), before, 'the step moved the statistics');
  assertSameWeights(sync, asynchronous);
  sync.dispose();
  asynchronous.dispose();
  batch.images.dispose();
});

test('the default synchronous read-back (JS ROIAlign on wasm) and the awaited one agree on the losses', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const batch = buildTrainBatch(twoImages, { ...config.image }, seededRng(3));
  const sync = new MaskRcnn(config, { readBack: synchronousReadBack });
  const asynchronous = new MaskRcnn(config, { readBack: awaitedReadBack });
  assertLossesClose(await asynchronous.trainStep(new Amsgrad({ learningRate: 1e-3 }), batch), await sync.trainStep(new Amsgrad({ learningRate: 1e-3 }), batch), 'step');
  sync.dispose();
  asynchronous.dispose();
  batch.images.dispose();
});

test('with the awaited read-back, validation losses and detections equal the synchronous one\'s, without a synchronous read (batches read nothing either)', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const sync = new MaskRcnn(config, { readBack: synchronousGathering });
  const asynchronous = new MaskRcnn(config, { readBack: awaitedReadBack });
  const batch = buildTrainBatch(twoImages, { ...config.image }, seededRng(4));
  const asyncBatch = await withoutSyncReads(async () => buildTrainBatch(twoImages, { ...config.image }, seededRng(4)));
  assert.deepEqual(asyncBatch.images.dataSync(), batch.images.dataSync());
  assert.deepEqual(asyncBatch.gtBoxes, batch.gtBoxes);
  assert.deepEqual(await withoutSyncReads(() => asynchronous.losses(asyncBatch)), await sync.losses(batch));

  const images = [squares(50, 40, [[5, 5], [20, 20]]).image, squares(size, size, [[10, 10]]).image];
  const expected = await sync.detectImages(images);
  const actual = await withoutSyncReads(() => asynchronous.detectImages(images));
  assert.ok(expected.every((found) => found.scores.length > 0), 'with minConfidence 0 a random model detects something');
  assert.deepEqual(actual, expected);
  for (const model of [sync, asynchronous]) model.dispose();
  for (const b of [batch, asyncBatch]) b.images.dispose();
});

test('the guard catches a synchronous read: the synchronous read-back fails under it', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const model = new MaskRcnn(config, { readBack: synchronousReadBack });
  const batch = buildTrainBatch(twoImages.slice(0, 1), { ...config.image }, seededRng(5));
  model.build();
  await withoutSyncReads(async () => {
    assert.throws(() => tf.scalar(1).add(1).dataSync(), /synchronous read-back attempted/);
    await assert.rejects(model.losses(batch), /synchronous read-back attempted/);
    await assert.rejects(model.detectImages([twoImages[0]!.image]), /synchronous read-back attempted/);
  });
  model.dispose();
  batch.images.dispose();
});

test('with the awaited read-back, steps, losses and detections leave no tensor behind', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = smallConfig();
  const model = new MaskRcnn(config, { readBack: awaitedReadBack });
  const optimizer = new Amsgrad({ learningRate: 1e-3 });
  const batch = buildTrainBatch(twoImages, { ...config.image }, seededRng(6));
  await model.trainStep(optimizer, batch); // creates the optimizer's slots and the anchors tensor
  const tensors = tf.memory().numTensors;
  await model.trainStep(optimizer, batch);
  await model.losses(batch);
  await model.detectImages([twoImages[0]!.image]);
  assert.equal(tf.memory().numTensors, tensors);
  model.dispose();
  optimizer.dispose();
  batch.images.dispose();
});

test('only webgpu needs the awaited read-back; a model takes the active backend\'s', async () => {
  assert.equal(readBackFor('webgpu'), awaitedReadBack);
  for (const backend of ['wasm', 'cpu', 'tensorflow', 'webgl']) assert.equal(readBackFor(backend), synchronousReadBack);
  await selectBackend('wasm', () => {}, { threads: 1 });
  const model = new MaskRcnn(smallConfig());
  assert.equal(model.readBack, synchronousReadBack);
  model.dispose();
});

/** A 64 x 64 image with one 12 x 12 nucleus. */
const sample = () => squares(64, 64, [[20, 8]]);

/** A step and the validation loss with one read-back, on a fresh model. */
async function stepAndValidation(readBack: ReadBack): Promise<{ step: Losses; val: Losses }> {
  const config = tinyMaskRcnnConfig();
  const model = new MaskRcnn(config, { readBack });
  const optimizer = new Amsgrad({ learningRate: 1e-3 });
  const batch = buildTrainBatch([sample()], { ...config.image }, seededRng(1));
  try {
    return { step: await model.trainStep(optimizer, batch), val: await model.losses(batch) };
  } finally {
    batch.images.dispose();
    model.dispose();
    optimizer.dispose();
  }
}

test('the awaited read-back (webgpu) gives the default synchronous one\'s step and validation losses, reading nothing synchronously', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const expected = await stepAndValidation(synchronousReadBack);
  const actual = await withoutSyncReads(() => stepAndValidation(awaitedReadBack));
  for (const part of ['step', 'val'] as const) {
    for (const [name, value] of Object.entries(expected[part])) {
      const got = actual[part][name as keyof Losses];
      // The synchronous ROIAlign on wasm is the JS loop, the awaited one gathers: equal to float rounding.
      assert.ok(Math.abs(got - value) <= 1e-5 * Math.max(Math.abs(value), 1e-3), `${part} ${name}: ${got} vs ${value}`);
    }
  }
});

test('a queued step gives the step\'s losses and weights, and two queued steps in a row (the train loop\'s overlap) equal two awaited steps', async () => {
  await selectBackend('wasm', () => {}, { threads: 1 });
  const config = tinyMaskRcnnConfig();
  for (const readBack of [awaitedReadBack, synchronousReadBack]) {
    const train = async (overlap: boolean) => {
      const model = new MaskRcnn(config, { readBack });
      const optimizer = new Amsgrad({ learningRate: 1e-3 });
      const losses: Losses[] = [];
      let pending: Promise<Losses> | undefined;
      for (let step = 0; step < 2; step++) {
        const batch = buildTrainBatch([sample()], { ...config.image }, seededRng(10 + step));
        if (overlap) {
          const queued = await model.queueTrainStep(optimizer, batch);
          batch.images.dispose(); // as the loop does, before the losses are read
          if (pending) losses.push(await pending);
          pending = queued.losses;
        } else {
          losses.push(await model.trainStep(optimizer, batch));
          batch.images.dispose();
        }
      }
      if (pending) losses.push(await pending);
      const weights = model.store.names().map((name) => Array.from(model.store.get(name)!.dataSync()));
      model.dispose();
      optimizer.dispose();
      return { losses, weights };
    };
    const awaited = await train(false);
    const overlapped = await train(true);
    assert.deepEqual(overlapped.losses, awaited.losses, `losses (${readBack.name} read-back)`);
    assert.deepEqual(overlapped.weights, awaited.weights, 'weights after two steps');
  }
});
