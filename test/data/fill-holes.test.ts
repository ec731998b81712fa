import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stagesCommand } from '../helpers/paths.js';
import { DatasetWriter, readSample, readManifest, type LabelMap } from '../../stages/imaging/dataset.js';
import { grid, render } from '../imaging/grid.js';
import { tempDir } from './dsb-fixture.js';

async function dsb(args: string[]) {
  return execa(stagesCommand[0]!, [...stagesCommand.slice(1), ...args], { reject: false });
}

function labelsOf(rows: string[], count: number): LabelMap {
  const { data, width, height } = grid(rows);
  return { width, height, data: Uint16Array.from(data), count };
}

test('fill-holes fills a ring, leaves a nucleus inside another ring to its owner, and copies the image', async () => {
  const root = tempDir();
  const input = join(root, 'in');
  const writer = new DatasetWriter(input);
  const rgba = new Uint8Array(7 * 5 * 4).fill(200);
  await writer.add({
    info: { id: 'rings', width: 7, height: 5, channels: 4, nuclei: 3, overlapPixels: 0, source: 'test' },
    image: { width: 7, height: 5, channels: 4, data: rgba },
    labels: labelsOf(['111.222', '1.1.232', '111.222', '.......', '.......'], 3),
  });
  await writer.finish();
  const out = join(root, 'out');
  const result = await dsb(['fill-holes', '--in', input, '--out', out]);
  assert.equal(result.exitCode, 0, result.stderr);
  const sample = await readSample(out, 'rings');
  assert.deepEqual(render(sample.labels.data, 7), ['111.222', '111.232', '111.222', '.......', '.......']);
  assert.deepEqual(readFileSync(join(out, 'images', 'rings.png')), readFileSync(join(input, 'images', 'rings.png')));
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.deepEqual(report, {
    images: 1,
    imagesChanged: 1,
    nucleiFilled: 1,
    filledPixels: 1,
    enclosedOtherPixels: 1,
    droppedEmpty: 0,
    nuclei: 3,
  });
});

test('a compact dataset with a truncated label map fails naming the file and leaves no output', async () => {
  const root = tempDir();
  const input = join(root, 'in');
  const writer = new DatasetWriter(input);
  await writer.add({
    info: { id: 'x', width: 8, height: 8, channels: 3, nuclei: 1, overlapPixels: 0, source: 'test' },
    image: { width: 8, height: 8, channels: 3, data: new Uint8Array(8 * 8 * 3) },
    labels: { width: 8, height: 8, data: new Uint16Array(64).fill(1), count: 1 },
  });
  await writer.finish();
  const file = join(input, 'labels', 'x.png');
  writeFileSync(file, readFileSync(file).subarray(0, 30));
  const result = await dsb(['fill-holes', '--in', input, '--out', join(root, 'out')]);
  assert.equal(result.exitCode, 1);
  assert.match(result.stderr, /labels[/\\]x\.png: cannot decode label map/);
  assert.deepEqual(readdirSync(root), ['in']);
});

