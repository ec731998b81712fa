import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { batchedNms, nms } from '../../stages/model/nms.js';

await tf.setBackend('cpu');

const boxes = new Float32Array([0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 9]);
const scores = new Float32Array([0.9, 0.8, 0.7, 0.95]);

test('nms keeps the best box of each overlapping group, by descending score', () => {
  // Box 3 (0.95) overlaps box 0 (IoU 0.9) and box 1; box 2 stands alone.
  assert.deepEqual(Array.from(nms(boxes, scores, 0.5, 10)), [3, 2]);
  assert.deepEqual(Array.from(nms(boxes, scores, 0.5, 1)), [3]);
  assert.deepEqual(Array.from(nms(new Float32Array(0), new Float32Array(0), 0.5, 10)), []);
});

test('batched nms only suppresses within a class', () => {
  const classIds = new Int32Array([1, 1, 1, 2]);
  assert.deepEqual(Array.from(batchedNms(boxes, scores, classIds, 0.5, 10)), [3, 0, 2]);
});
