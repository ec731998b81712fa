import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anchorCount, anchorSpec, featureShapes, generatePyramidAnchors } from '../../stages/model/anchors.js';
import { presetConfig } from '../../stages/model/config.js';

const spec = anchorSpec(presetConfig('recipe'));

test('the recipe pyramid at 512 has 65,472 anchors on levels of side 128, 64, 32, 16 and 8', () => {
  assert.deepEqual(featureShapes(spec), [128, 64, 32, 16, 8]);
  assert.equal(anchorCount(spec), 65472);
  assert.equal(generatePyramidAnchors(spec).length, 65472 * 4);
});

test('anchors are centred on multiples of the stride, ordered level, row, column, then ratio', () => {
  const a = generatePyramidAnchors(spec);
  const near = (i: number, expected: number[]) => {
    const got = Array.from(a.subarray(4 * i, 4 * i + 4));
    assert.ok(got.every((v, k) => Math.abs(v - expected[k]!) < 1e-3), `anchor ${i}: ${got} vs ${expected}`);
  };
  const s = Math.SQRT2;
  // Level p2 (scale 8, stride 4), cell (0, 0): ratios 0.5 (wide), 1, 2 (tall); ratio = width / height.
  near(0, [-4 * s, -2 * s, 4 * s, 2 * s]);
  near(1, [-4, -4, 4, 4]);
  near(2, [-2 * s, -4 * s, 2 * s, 4 * s]);
  // Next column of p2: centre x = 4.
  near(4, [-4, 0, 4, 8]);
  // Row 1, column 0 of p2: centre y = 4.
  near(128 * 3 + 1, [0, -4, 8, 4]);
  // First anchor of p3 (scale 16, stride 8) comes after all 128*128*3 anchors of p2; its square one at (0, 0).
  near(128 * 128 * 3 + 1, [-8, -8, 8, 8]);
  // Last anchor: p6 (scale 128, stride 64), cell (7, 7), ratio 2: centre 448.
  near(65471, [448 - 32 * s, 448 - 64 * s, 448 + 32 * s, 448 + 64 * s]);
});

test('an anchor stride of 2 keeps every other cell', () => {
  assert.equal(anchorCount({ ...spec, anchorStride: 2 }), 65472 / 4);
  assert.equal(generatePyramidAnchors({ ...spec, anchorStride: 2 }).length, (65472 / 4) * 4);
});
