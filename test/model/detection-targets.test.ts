import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectionTargets, maskTarget } from '../../stages/model/detection-targets.js';
import { seededRng } from '../../stages/model/sampler.js';

const m = 8;
function fullMiniMasks(count: number): Uint8Array {
  return new Uint8Array(count * m * m).fill(1);
}
const options = { batchSizePerImage: 12, positiveFraction: 0.25, fgIouThresh: 0.5, bboxStdDev: [0.1, 0.1, 0.2, 0.2] as const, maskSize: 4, miniMaskSize: m, addGtAsProposals: false };

function proposalsAround(): Float32Array {
  const boxes: number[] = [];
  // 6 near-copies of the GT box [10, 10, 30, 30] (positives), 20 far away (negatives).
  for (let i = 0; i < 6; i++) boxes.push(10 + i * 0.5, 10, 30 + i * 0.5, 30);
  for (let i = 0; i < 20; i++) boxes.push(100 + i, 100, 120 + i, 120);
  return new Float32Array(boxes);
}

test('detection targets sample the batch with at most the positive fraction, positives first with their class', () => {
  const gt = { boxes: new Float32Array([10, 10, 30, 30]), classIds: new Int32Array([1]), miniMasks: fullMiniMasks(1) };
  const t = detectionTargets(proposalsAround(), gt, options, seededRng(1));
  assert.equal(t.classIds.length, 12);
  assert.equal(t.numPositive, 3, 'floor(12 * 0.25)');
  assert.deepEqual(Array.from(t.classIds), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(t.rois.length, 12 * 4);
  assert.equal(t.deltas.length, 3 * 4);
  assert.equal(t.masks.length, 3 * 4 * 4);
});

test('too few proposals give fewer ROIs, and adding GT boxes as proposals adds positives', () => {
  const gt = { boxes: new Float32Array([10, 10, 30, 30]), classIds: new Int32Array([1]), miniMasks: fullMiniMasks(1) };
  const few = detectionTargets(new Float32Array([100, 100, 120, 120]), gt, options, seededRng(2));
  assert.equal(few.numPositive, 0);
  assert.equal(few.classIds.length, 1);
  const withGt = detectionTargets(new Float32Array([100, 100, 120, 120]), gt, { ...options, addGtAsProposals: true }, seededRng(2));
  assert.equal(withGt.numPositive, 1);
  assert.deepEqual(Array.from(withGt.deltas), [0, 0, 0, 0]);
});

test('without ground truth every ROI is background and there are no box or mask targets', () => {
  const t = detectionTargets(proposalsAround(), { boxes: new Float32Array(0), classIds: new Int32Array(0), miniMasks: new Uint8Array(0) }, options, seededRng(3));
  assert.equal(t.numPositive, 0);
  assert.equal(t.classIds.length, 12);
  assert.ok(t.classIds.every((c) => c === 0));
  assert.equal(t.masks.length, 0);
});

test('a mask target is the mini-mask seen through the ROI', () => {
  // Left half of the GT box is foreground.
  const mini = new Uint8Array(m * m);
  for (let r = 0; r < m; r++) for (let c = 0; c < m / 2; c++) mini[r * m + c] = 1;
  const gtBox = new Float32Array([0, 0, 40, 40]);
  assert.deepEqual(Array.from(maskTarget(gtBox, gtBox, mini, m, 4)), [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
  // ROI = the GT box's right half: all background. ROI = left half shifted out of the GT box: left half outside.
  assert.ok(maskTarget(new Float32Array([0, 20, 40, 40]), gtBox, mini, m, 4).every((v) => v === 0));
  assert.deepEqual(Array.from(maskTarget(new Float32Array([0, -20, 40, 20]), gtBox, mini, m, 4)), [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]);
});
