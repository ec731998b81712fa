import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iouMatrix } from '../../stages/model/iou.js';

test('a 3x4 IoU matrix matches hand computation', () => {
  const a = new Float32Array([0, 0, 10, 10, 0, 0, 10, 20, 100, 100, 110, 110]);
  const b = new Float32Array([0, 0, 10, 10, 5, 5, 15, 15, 0, 10, 10, 20, 50, 50, 60, 60]);
  const iou = iouMatrix(a, b);
  const expected = [
    [1, 25 / 175, 0, 0],
    [0.5, 50 / 250, 0.5, 0],
    [0, 0, 0, 0],
  ];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) {
    assert.ok(Math.abs(iou[i * 4 + j]! - expected[i]![j]!) < 1e-6, `iou[${i}][${j}] = ${iou[i * 4 + j]}, expected ${expected[i]![j]}`);
  }
});

test('an empty side gives an empty matrix and degenerate boxes overlap nothing', () => {
  assert.equal(iouMatrix(new Float32Array([0, 0, 1, 1]), new Float32Array(0)).length, 0);
  assert.deepEqual(Array.from(iouMatrix(new Float32Array([5, 5, 5, 9]), new Float32Array([0, 0, 10, 10]))), [0]);
});
