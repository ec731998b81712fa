import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stagesCommand } from '../helpers/paths.js';
import { DatasetWriter, readSample, readManifest, type LabelMap } from '../../stages/imaging/dataset.js';
import { grid } from '../imaging/grid.js';
import { tempDir } from './dsb-fixture.js';

async function dsb(args: string[]) {
  return execa(stagesCommand[0]!, [...stagesCommand.slice(1), ...args], { reject: false });
}

function labelsOf(rows: string[], count: number): LabelMap {
  const { data, width, height } = grid(rows);
  return { width, height, data: Uint16Array.from(data), count };
}

test('strip-alpha turns RGBA and grey images into RGB and keeps the labels byte for byte', async () => {
  const root = tempDir();
  const input = join(root, 'in');
  const writer = new DatasetWriter(input);
  const labels = labelsOf(['1.', '.2'], 2);
  await writer.add({
    info: { id: 'rgba', width: 2, height: 2, channels: 4, nuclei: 2, overlapPixels: 0, source: 'test' },
    image: { width: 2, height: 2, channels: 4, data: Uint8Array.from([1, 2, 3, 9, 4, 5, 6, 9, 7, 8, 9, 9, 10, 11, 12, 9]) },
    labels,
  });
  await writer.add({
    info: { id: 'grey', width: 2, height: 2, channels: 1, nuclei: 2, overlapPixels: 0, source: 'test' },
    image: { width: 2, height: 2, channels: 1, data: Uint8Array.from([10, 20, 30, 40]) },
    labels,
  });
  await writer.finish();
  const out = join(root, 'out');
  const result = await dsb(['strip-alpha', '--in', input, '--out', out, '--report', join(root, 'strip.json')]);
  assert.equal(result.exitCode, 0, result.stderr);
  const rgba = await readSample(out, 'rgba');
  assert.equal(rgba.image.channels, 3);
  assert.deepEqual([...rgba.image.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const grey = await readSample(out, 'grey');
  assert.deepEqual([...grey.image.data], [10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]);
  assert.deepEqual((await readManifest(out)).map((s) => s.channels), [3, 3]);
  assert.deepEqual(readFileSync(join(out, 'labels', 'grey.png')), readFileSync(join(input, 'labels', 'grey.png')));
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'strip.json'), 'utf8')), { images: 2, alphaDropped: 1, greyExpanded: 1 });
});

test('a folder without a manifest is an error naming the manifest', async () => {
  const root = tempDir();
  const result = await dsb(['strip-alpha', '--in', root, '--out', join(root, 'out')]);
  assert.equal(result.exitCode, 1);
  assert.match(result.stderr, /manifest\.json: not found/);
});
