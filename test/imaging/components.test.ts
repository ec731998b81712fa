import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectedComponents, relabel, fillHoles, labelAreas, compactLabels } from '../../stages/imaging/components.js';
import { grid, render } from './grid.js';

test('connected components number pieces in raster order, and diagonal contact joins only under 8-connectivity', () => {
  const { data, width, height } = grid([
    '##..#',
    '##...',
    '..#..',
    '....#',
  ]);
  const four = connectedComponents(data, width, height, 4);
  assert.equal(four.count, 4);
  assert.deepEqual(render(four.labels, width), ['11..2', '11...', '..3..', '....4']);
  const eight = connectedComponents(data, width, height, 8);
  assert.equal(eight.count, 3);
  assert.deepEqual(render(eight.labels, width), ['11..2', '11...', '..1..', '....3']);
});

test('a mask with no foreground has zero components', () => {
  const { data, width, height } = grid(['...', '...']);
  const result = connectedComponents(data, width, height, 8);
  assert.equal(result.count, 0);
  assert.deepEqual([...result.labels], [0, 0, 0, 0, 0, 0]);
});

test('relabel splits a label that falls into two pieces and closes the gap of a missing label', () => {
  const { data, width, height } = grid([
    '33..3',
    '.....',
    '11.22',
  ]);
  const result = relabel({ width, height, data: Uint16Array.from(data), count: 3 }, 8);
  assert.equal(result.count, 4);
  assert.deepEqual(render(result.data, width), ['11..2', '.....', '33.44']);
});

test('relabel keeps touching labels apart', () => {
  const { data, width, height } = grid(['1122', '1122']);
  const result = relabel({ width, height, data: Uint16Array.from(data), count: 2 }, 4);
  assert.equal(result.count, 2);
  assert.deepEqual(render(result.data, width), ['1122', '1122']);
});

test('fill holes fills the inside of a ring and leaves a notched ring open', () => {
  const ring = grid([
    '.......',
    '.#####.',
    '.#...#.',
    '.#...#.',
    '.#####.',
    '.......',
  ]);
  assert.deepEqual(render(fillHoles(ring.data, ring.width, ring.height), ring.width), [
    '.......',
    '.11111.',
    '.11111.',
    '.11111.',
    '.11111.',
    '.......',
  ]);
  const notched = grid([
    '.###.',
    '.#.#.',
    '.#...',
    '.###.',
  ]);
  assert.deepEqual(render(fillHoles(notched.data, notched.width, notched.height), notched.width), [
    '.111.',
    '.1.1.',
    '.1...',
    '.111.',
  ]);
});

test('fill holes treats a diagonal gap in the outline as closed (background is 4-connected)', () => {
  const { data, width, height } = grid([
    '.#..',
    '#.#.',
    '.#..',
  ]);
  assert.deepEqual(render(fillHoles(data, width, height), width), ['.1..', '111.', '.1..']);
});

test('a ring touching the image border still encloses its hole', () => {
  const { data, width, height } = grid(['###', '#.#', '###']);
  assert.deepEqual(render(fillHoles(data, width, height), width), ['111', '111', '111']);
});

test('label areas count pixels per label and compacting drops empty labels keeping order', () => {
  const { data, width, height } = grid(['1.3', '3.3']);
  const labels = { width, height, data: Uint16Array.from(data), count: 3 };
  assert.deepEqual([...labelAreas(labels)], [2, 1, 0, 3]);
  const compacted = compactLabels(labels);
  assert.equal(compacted.count, 2);
  assert.deepEqual(render(compacted.data, width), ['1.2', '2.2']);
});
