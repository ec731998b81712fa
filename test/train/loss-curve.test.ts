import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lineChartSvg, writeLineChartPng } from '../../stages/train/loss-curve.js';

test('each series becomes one path through its finite points, with a legend entry', () => {
  const svg = lineChartSvg('losses', [
    { name: 'train', points: [{ x: 1, y: 2 }, { x: 2, y: 1 }, { x: 3, y: Number.NaN }] },
    { name: 'val <a&b>', points: [{ x: 1, y: 3 }], dashed: true },
  ]);
  const paths = svg.match(/<path d="([^"]+)"/g) ?? [];
  assert.equal(paths.length, 2);
  assert.equal((paths[0]!.match(/[ML]/g) ?? []).length, 2, 'the NaN point is a gap');
  assert.match(svg, /val &lt;a&amp;b&gt;/);
  assert.match(svg, /loss|losses/);
});

test('a non-positive value switches the y axis to linear', () => {
  const svg = lineChartSvg('t', [{ name: 's', points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] }], { yLabel: 'loss' });
  assert.doesNotMatch(svg, /\(log\)/);
  const logSvg = lineChartSvg('t', [{ name: 's', points: [{ x: 0, y: 0.5 }, { x: 1, y: 1 }] }], { yLabel: 'loss' });
  assert.match(logSvg, /\(log\)/);
});

test('the chart is written as a real PNG', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'curve-')), 'c.png');
  await writeLineChartPng(file, 'c', [{ name: 's', points: [{ x: 1, y: 1 }, { x: 2, y: 0.5 }] }]);
  assert.deepEqual([...readFileSync(file).subarray(1, 4)], [0x50, 0x4e, 0x47]);
});
