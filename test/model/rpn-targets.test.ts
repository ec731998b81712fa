import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anchorSpec, generatePyramidAnchors } from '../../stages/model/anchors.js';
import { decodeBoxes } from '../../stages/model/box-coder.js';
import { presetConfig } from '../../stages/model/config.js';
import { rpnTargets } from '../../stages/model/rpn-targets.js';
import { seededRng } from '../../stages/model/sampler.js';

const config = presetConfig('small');
const anchors = generatePyramidAnchors(anchorSpec(config));
const options = { ...config.rpn };

test('RPN targets sample the configured number of anchors, at most half positive, positives first', () => {
  const gt = new Float32Array([10, 10, 26, 26, 100, 100, 132, 164, 200, 40, 216, 50]);
  const t = rpnTargets(anchors, gt, options, seededRng(3));
  assert.equal(t.sampledAnchors.length, config.rpn.batchSizePerImage);
  const positives = t.positiveAnchors.length;
  assert.ok(positives >= 3, `every GT box takes at least its best anchor (got ${positives})`);
  assert.ok(positives <= config.rpn.batchSizePerImage / 2);
  assert.deepEqual(Array.from(t.sampledAnchors.subarray(0, positives)), Array.from(t.positiveAnchors));
  assert.equal(t.sampledLabels.subarray(0, positives).every((l) => l === 1), true);
  assert.equal(t.sampledLabels.subarray(positives).every((l) => l === 0), true);
});

test('decoding a positive anchor with its target delta gives back a GT box', () => {
  const gt = new Float32Array([100, 100, 132, 164]);
  const t = rpnTargets(anchors, gt, options, seededRng(4));
  const refs = new Float32Array(t.positiveAnchors.length * 4);
  t.positiveAnchors.forEach((a, i) => refs.set(anchors.subarray(4 * a, 4 * a + 4), 4 * i));
  const decoded = decodeBoxes(refs, t.positiveDeltas, options.bboxStdDev);
  for (let i = 0; i < decoded.length; i++) assert.ok(Math.abs(decoded[i]! - gt[i % 4]!) < 1e-3);
});

test('an image without nuclei gives only negative anchors and no box targets', () => {
  const t = rpnTargets(anchors, new Float32Array(0), options, seededRng(5));
  assert.equal(t.positiveAnchors.length, 0);
  assert.equal(t.positiveDeltas.length, 0);
  assert.equal(t.sampledAnchors.length, config.rpn.batchSizePerImage);
});
