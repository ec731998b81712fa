import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeCross, dilateCross, erodeCross, fillLabelHoles, largestComponent } from '../../stages/imaging/morphology.js';
import { grid, render } from './grid.js';

test('dilation and erosion by the 3x3 cross grow and shrink a square by its 4-neighbours', () => {
  const { data, width, height } = grid(['.....', '.....', '..#..', '.....', '.....']);
  const grown = dilateCross(data, width, height);
  assert.deepEqual(render(grown, width), ['.....', '..1..', '.111.', '..1..', '.....']);
  assert.deepEqual(render(erodeCross(grown, width, height), width), ['.....', '.....', '..1..', '.....', '.....']);
});

test('closing bridges a one-pixel gap and keeps a mask that touches the border', () => {
  const { data, width, height } = grid(['##.##', '##.##', '##.##']);
  // Only the middle gap pixel has on-neighbours all round after dilation; the image edge counts as off.
  assert.deepEqual(render(closeCross(data, width, height), width), ['11.11', '11111', '11.11']);
});

test('largest component keeps the biggest piece and says how many there were', () => {
  const { data, width, height } = grid(['#..##', '...##', '#....']);
  const { mask, pieces } = largestComponent(data, width, height, 8);
  assert.equal(pieces, 3);
  assert.deepEqual(render(mask, width), ['...11', '...11', '.....']);
});

test('per-nucleus hole filling fills only the enclosing nucleus and counts what it did', () => {
  const { data, width, height } = grid(['1111.22', '1..1.2.', '1111.22']);
  const result = fillLabelHoles({ width, height, data: Uint16Array.from(data), count: 2 });
  assert.deepEqual(render(result.labels.data, width), ['1111.22', '1111.2.', '1111.22']);
  assert.equal(result.nucleiFilled, 1);
  assert.equal(result.filledPixels, 2);
  assert.equal(result.droppedEmpty, 0);
});
