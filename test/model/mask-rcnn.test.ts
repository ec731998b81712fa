import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/model/backend.js';
import { configFromParams } from '../../stages/model/config.js';
import { defaultParts, MaskRcnn, type GradientApplier } from '../../stages/model/mask-rcnn.js';
import type { ImageMeta } from '../../stages/model/molding.js';
import { ParameterStore } from '../../stages/model/params.js';
import type { FrameDetections } from '../../stages/model/roi-heads.js';
import { ImageTransform } from '../../stages/model/transform.js';
import type { Image8 } from '../../stages/imaging/dataset.js';
import { buildTrainBatch } from '../../stages/model/molding.js';
import { seededRng } from '../../stages/model/sampler.js';
import { squares } from '../helpers/square-nuclei.js';

await selectBackend('wasm', () => {}, { threads: 1 });

const size = 128;
const config = configFromParams({
  preset: 'small',
  image: { size },
  rpn: { batchSizePerImage: 32, preNmsTopN: 200, postNmsTopNTrain: 50, postNmsTopNTest: 50 },
  roi: { batchSizePerImage: 16, addGtAsProposals: true },
  box: { fcDim: 32 },
  mask: { headChannels: 8 },
  backbone: { fpnChannels: 16 },
  detection: { minConfidence: 0 },
});

/** Records what the model hands to the optimizer (the gradients times the clip factor), and applies plain SGD. */
class RecordingSgd implements GradientApplier {
  norms: number[] = [];
  names: string[] = [];
  applyGradients(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, gradientScale: tf.Scalar): void {
    this.names = Object.keys(grads);
    const applied = Object.entries(grads).map(([name, g]) => [name, g.mul(gradientScale)] as const);
    this.norms.push(Math.sqrt(applied.reduce((s, [, g]) => s + tf.sum(tf.square(g)).dataSync()[0]!, 0)));
    for (const [name, g] of applied) tf.tidy(() => variables[name]!.assign(variables[name]!.sub(g.mul(1e-3))));
    tf.dispose(applied.map(([, g]) => g));
  }
}

test('a train step returns every named loss, finite, with their total, and hands gradients by store name', async () => {
  const model = new MaskRcnn(config);
  const batch = buildTrainBatch([squares(128, 128, [[10, 10], [60, 70]]), squares(128, 128, [[90, 20]])], { ...config.image }, seededRng(1));
  const sgd = new RecordingSgd();
  const losses = await model.trainStep(sgd, batch);
  const names = ['loss_objectness', 'loss_rpn_box_reg', 'loss_classifier', 'loss_box_reg', 'loss_mask', 'loss_weight_decay'] as const;
  for (const name of names) assert.ok(Number.isFinite(losses[name]), `${name} = ${losses[name]}`);
  assert.ok(losses.loss_mask > 0, 'GT boxes as proposals give positive ROIs, hence a mask loss');
  const sum = names.reduce((s, n) => s + losses[n], 0);
  assert.ok(Math.abs(losses.loss_total - sum) < 1e-4 * Math.max(1, sum));
  assert.ok(sgd.names.includes('conv1/kernel') && sgd.names.includes('mrcnn_mask/kernel'), `gradient names: ${sgd.names.slice(0, 5)}`);
  batch.images.dispose();
  model.dispose();
});

test('gradients are clipped to the configured global norm, and steps do not leak tensors', async () => {
  const model = new MaskRcnn({ ...config, train: { ...config.train, clipNorm: 1e-3 } });
  const batch = buildTrainBatch([squares(128, 128, [[10, 10]])], { ...config.image }, seededRng(2));
  const sgd = new RecordingSgd();
  await model.trainStep(sgd, batch);
  const tensors = tf.memory().numTensors;
  await model.trainStep(sgd, batch);
  await model.trainStep(sgd, batch);
  assert.equal(tf.memory().numTensors, tensors);
  for (const norm of sgd.norms) assert.ok(norm <= 1e-3 * 1.001, `global norm ${norm}`);
  batch.images.dispose();
  model.dispose();
});

test('an image without nuclei gives zero box and mask losses, not NaN', async () => {
  const model = new MaskRcnn(config);
  const batch = buildTrainBatch([squares(128, 128, [])], { ...config.image }, seededRng(3));
  const losses = await model.trainStep(new RecordingSgd(), batch);
  assert.equal(losses.loss_rpn_box_reg, 0);
  assert.equal(losses.loss_box_reg, 0);
  assert.equal(losses.loss_mask, 0);
  assert.ok(Number.isFinite(losses.loss_objectness) && Number.isFinite(losses.loss_classifier));
  batch.images.dispose();
  model.dispose();
});

test('validation losses leave the weights unchanged', async () => {
  const model = new MaskRcnn(config);
  const batch = buildTrainBatch([squares(128, 128, [[10, 10]])], { ...config.image }, seededRng(4));
  await model.losses(batch);
  const before = model.store.get('conv1/kernel')!.dataSync().slice();
  const losses = await model.losses(batch);
  assert.ok(Number.isFinite(losses.loss_total));
  assert.deepEqual(model.store.get('conv1/kernel')!.dataSync(), before);
  batch.images.dispose();
  model.dispose();
});

test('detections come back at the original image size', async () => {
  const model = new MaskRcnn(config);
  const { image } = squares(60, 100, [[10, 10]]);
  const [found] = await model.detectImages([image]);
  assert.ok(found!.scores.length > 0, 'with minConfidence 0 a random model still detects something');
  assert.equal(found!.boxes.length, found!.scores.length * 4);
  assert.equal(found!.masks.length, found!.scores.length);
  for (const mask of found!.masks) assert.equal(mask.length, 60 * 100);
  for (let i = 0; i < found!.boxes.length; i += 4) {
    assert.ok(found!.boxes[i]! >= 0 && found!.boxes[i + 2]! <= 100 && found!.boxes[i + 1]! >= 0 && found!.boxes[i + 3]! <= 60);
  }
  model.dispose();
});

test('an input of the wrong size is a clear error', async () => {
  const model = new MaskRcnn(config);
  const images = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
  await assert.rejects(model.detect(images, [{ originalHeight: 64, originalWidth: 64, size: 64, scale: 1, window: [0, 0, 64, 64] }]), /images must be \[B, 128, 128, 3\]/);
  images.dispose();
  model.dispose();
});

test('the model runs the parts it is given', async () => {
  /** The recipe's transform, counting what passes through it. */
  class CountingTransform extends ImageTransform {
    batches = 0;
    postprocessed = 0;
    override batch(images: readonly Image8[]) {
      this.batches++;
      return super.batch(images);
    }
    override postprocess(found: FrameDetections, meta: ImageMeta) {
      this.postprocessed++;
      return super.postprocess(found, meta);
    }
  }
  const store = new ParameterStore(config.seed);
  const transform = new CountingTransform(config);
  const model = new MaskRcnn(config, { store, parts: { ...defaultParts(config, store), transform } });
  const found = await model.detectImages([squares(60, 100, [[10, 10]]).image, squares(128, 128, []).image]);
  assert.equal(found.length, 2);
  assert.deepEqual([transform.batches, transform.postprocessed], [1, 2]);
  model.dispose();
});
