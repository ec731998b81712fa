import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { refineDetections } from '../../stages/model/detect.js';

await tf.setBackend('cpu');
const options = { minConfidence: 0.75, nmsThresh: 0.3, maxInstances: 10, bboxStdDev: [0.1, 0.1, 0.2, 0.2] as const };

test('detections drop background and unsure ROIs, refine boxes with their class deltas, and suppress duplicates', () => {
  const rois = new Float32Array([
    0, 0, 10, 10, // confident nucleus, shifted down by a delta
    1, 0, 11, 10, // duplicate of the first, less sure
    20, 20, 30, 30, // background
    40, 40, 50, 50, // nucleus under the confidence threshold
    50, 50, 70, 70, // confident nucleus, runs out of the window after refinement
  ]);
  const probs = new Float32Array([0.1, 0.9, 0.2, 0.8, 0.9, 0.1, 0.4, 0.6, 0.05, 0.95]);
  const deltas = new Float32Array(5 * 2 * 4);
  deltas.set([1, 0, 0, 0], (0 * 2 + 1) * 4); // class-1 deltas of ROI 0: dy = 0.1 * 10 = 1 pixel
  deltas.set([9, 9, 9, 9], (0 * 2 + 0) * 4); // its background deltas are ignored
  deltas.set([2.5, 0, 0, 0], (4 * 2 + 1) * 4); // ROI 4 moves down by 5 pixels
  const d = refineDetections(rois, probs, deltas, 2, [0, 0, 64, 64], options);
  assert.deepEqual(Array.from(d.scores).map((s) => Math.round(s * 100) / 100), [0.95, 0.9]);
  assert.deepEqual(Array.from(d.classIds), [1, 1]);
  const boxes = Array.from(d.boxes).map((v) => Math.round(v * 1000) / 1000);
  assert.deepEqual(boxes, [55, 50, 64, 64, 1, 0, 11, 10]);
});

test('no confident ROI gives no detection', () => {
  const d = refineDetections(new Float32Array([0, 0, 5, 5]), new Float32Array([0.5, 0.5]), new Float32Array(8), 2, [0, 0, 64, 64], options);
  assert.equal(d.scores.length, 0);
  assert.equal(d.boxes.length, 0);
});
