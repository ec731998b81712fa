import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pasteMask, sampleBilinearClamped } from '../../stages/model/paste-masks.js';

test('bilinear sampling interpolates between pixels and clamps at the edges', () => {
  const src = [0, 1, 2, 3]; // 2x2
  assert.equal(sampleBilinearClamped(src, 2, 2, 0.5, 0.5), 1.5);
  assert.equal(sampleBilinearClamped(src, 2, 2, -3, -3), 0);
  assert.equal(sampleBilinearClamped(src, 2, 2, 9, 9), 3);
});

test('a mask is pasted into its box at image size and thresholded', () => {
  // 2x2 mask: left column foreground, right column background; resized to the 4x4 box, pixel columns read
  // 1, 0.75, 0.25, 0 (pixel centres, edges clamped).
  const mask = [1, 0, 1, 0];
  const out = pasteMask(mask, 2, [2, 2, 6, 6], 8, 8, 0.35);
  const rows = Array.from({ length: 8 }, (_, r) => Array.from(out.subarray(r * 8, r * 8 + 8)).join(''));
  assert.deepEqual(rows, ['00000000', '00000000', '00110000', '00110000', '00110000', '00110000', '00000000', '00000000']);
  // A lower threshold takes the third column too.
  const wider = pasteMask(mask, 2, [2, 2, 6, 6], 8, 8, 0.2);
  assert.equal(wider.reduce((s, v) => s + v, 0), 12);
});

test('boxes partly outside the image are cut at its border and empty boxes paste nothing', () => {
  const out = pasteMask([1, 1, 1, 1], 2, [-2, -2, 2, 2], 4, 4, 0.5);
  assert.equal(out.reduce((s, v) => s + v, 0), 4);
  assert.equal(pasteMask([1, 1, 1, 1], 2, [2, 2, 2, 3], 4, 4, 0.5).reduce((s, v) => s + v, 0), 0);
});
