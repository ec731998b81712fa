import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromParams, presetConfig } from '../../stages/model/config.js';

test('the recipe preset holds the DSB2018 numbers', () => {
  const c = configFromParams({});
  assert.equal(c.image.size, 512);
  assert.deepEqual(c.rpn.anchorScales, [8, 16, 32, 64, 128]);
  assert.equal(c.rpn.batchSizePerImage, 320);
  assert.equal(c.rpn.postNmsTopNTrain, 2048);
  assert.equal(c.roi.batchSizePerImage, 512);
  assert.equal(c.detection.maxInstances, 400);
  assert.equal(c.detection.maskThreshold, 0.35);
  assert.equal(c.train.clipNorm, 5);
});

test('params deep-merge over the chosen preset and leave the preset itself untouched', () => {
  const c = configFromParams({ preset: 'small', rpn: { nmsThresh: 0.6 }, detection: { maskThreshold: 0.5 } });
  assert.equal(c.image.size, 256);
  assert.equal(c.rpn.nmsThresh, 0.6);
  assert.equal(c.rpn.fgIouThresh, 0.7);
  assert.equal(c.detection.maskThreshold, 0.5);
  assert.equal(presetConfig('small').rpn.nmsThresh, 0.7);
});

test('an unknown key is an error naming its full path', () => {
  assert.throws(() => configFromParams({ rpn: { nmsThreshh: 0.5 } }), /unknown key "rpn\.nmsThreshh"/);
  assert.throws(() => configFromParams({ rpnn: {} }), /unknown key "rpnn"/);
});

test('a wrong type or out-of-range value is an error naming the key', () => {
  assert.throws(() => configFromParams({ rpn: { nmsThresh: 'high' } }), /"rpn\.nmsThresh" must be a number/);
  assert.throws(() => configFromParams({ detection: { minConfidence: 1.5 } }), /"detection\.minConfidence" must be within \[0, 1\]/);
  assert.throws(() => configFromParams({ image: { size: 500 } }), /"image\.size" must be a multiple of 64/);
  assert.throws(() => configFromParams({ backbone: { name: 'vgg' } }), /"backbone\.name" must be one of/);
  assert.throws(() => configFromParams({ preset: 'huge' }), /preset must be "recipe" or "small"/);
});

test('image.trainInputSize: 0 trains on whole images; a smaller multiple of 64 trains windows of the molded image', async () => {
  const { trainingInputSize, trainingNetworkConfig } = await import('../../stages/model/config.js');
  const recipe = configFromParams({});
  assert.equal(trainingInputSize(recipe), 512);
  const cpu = configFromParams({ preset: 'small', image: { size: 512, trainInputSize: 256 } });
  assert.equal(trainingInputSize(cpu), 256);
  const network = trainingNetworkConfig(cpu);
  assert.equal(network.image.size, 256);
  assert.equal(network.image.trainInputSize, 0);
  assert.equal(cpu.image.size, 512, 'the saved config keeps the molded side for inference');
  for (const bad of [100, 576, -64, 64.5]) {
    assert.throws(() => configFromParams({ image: { trainInputSize: bad } }), /image\.trainInputSize/);
  }
});
