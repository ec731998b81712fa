import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/model/backend.js';
import { tinyMaskRcnnConfig } from '../helpers/tiny-mask-rcnn.js';
import { MaskRcnn, type Losses } from '../../stages/model/mask-rcnn.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { modelCalls } from '../../stages/train/train.js';
import type { Image8, LabelMap } from '../../stages/imaging/dataset.js';

await selectBackend('wasm', () => {}, { threads: 1 });

const config = tinyMaskRcnnConfig();

/** A 64 x 64 image with one 12 x 12 nucleus. */
function sample(): { image: Image8; labels: LabelMap } {
  const data = new Uint8Array(64 * 64 * 3).fill(10);
  const labels = new Uint16Array(64 * 64);
  for (let y = 20; y < 32; y++) for (let x = 8; x < 20; x++) {
    labels[y * 64 + x] = 1;
    data.fill(230, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
  }
  return { image: { width: 64, height: 64, channels: 3, data }, labels: { width: 64, height: 64, data: labels, count: 1 } };
}

/** Batch, step and validation loss through one set of calls, on a fresh model. */
async function run(asynchronous: boolean): Promise<{ step: Losses; val: Losses }> {
  const calls = modelCalls(asynchronous);
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-3 });
  const batch = await calls.batch([sample()], { ...config.image }, seededRng(1));
  try {
    return { step: await calls.step(model, optimizer, batch), val: await calls.losses(model, batch) };
  } finally {
    batch.images.dispose();
    model.dispose();
    optimizer.dispose();
  }
}

test('on wasm a phase calls the synchronous forms', () => {
  assert.equal(modelCalls().asynchronous, false);
});

test('the asynchronous calls (webgpu) give the synchronous calls\' losses, reading nothing synchronously', async () => {
  const expected = await run(false);
  const engine = tf.engine() as unknown as { readSync: (dataId: object) => unknown };
  const readSync = engine.readSync;
  engine.readSync = () => { throw new Error('synchronous read-back attempted'); };
  let actual: { step: Losses; val: Losses };
  try {
    actual = await run(true);
  } finally {
    engine.readSync = readSync;
  }
  for (const part of ['step', 'val'] as const) {
    for (const [name, value] of Object.entries(expected[part])) {
      const got = actual[part][name as keyof Losses];
      // The synchronous ROIAlign on wasm is the JS loop, the asynchronous one gathers: equal to float rounding.
      assert.ok(Math.abs(got - value) <= 1e-5 * Math.max(Math.abs(value), 1e-3), `${part} ${name}: ${got} vs ${value}`);
    }
  }
});

test('a queued step gives the step\'s losses and weights, and two queued steps in a row (the loop\'s overlap) equal two awaited steps', async () => {
  for (const asynchronous of [true, false]) {
    const calls = modelCalls(asynchronous);
    const train = async (overlap: boolean) => {
      const model = new MaskRcnn(config);
      const optimizer = new Amsgrad({ learningRate: 1e-3 });
      const losses: Losses[] = [];
      let pending: Promise<Losses> | undefined;
      for (let step = 0; step < 2; step++) {
        const batch = await calls.batch([sample()], { ...config.image }, seededRng(10 + step));
        if (overlap) {
          const queued = await calls.queued(model, optimizer, batch);
          batch.images.dispose(); // as the loop does, before the losses are read
          if (pending) losses.push(await pending);
          pending = queued.losses;
        } else {
          losses.push(await calls.step(model, optimizer, batch));
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
    assert.deepEqual(overlapped.losses, awaited.losses, `losses (${asynchronous ? 'asynchronous' : 'synchronous'} calls)`);
    assert.deepEqual(overlapped.weights, awaited.weights, 'weights after two steps');
  }
});
