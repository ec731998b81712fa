import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stagesCommand } from '../helpers/paths.js';
import { readSample } from '../../stages/imaging/dataset.js';
import { readBinaryMask } from '../../stages/imaging/mask-file.js';
import { render } from '../imaging/grid.js';
import { tempDir, writeDsbImage } from './dsb-fixture.js';

async function dsb(args: string[]) {
  return execa(stagesCommand[0]!, [...stagesCommand.slice(1), ...args], { reject: false });
}

test('export writes the DSB layout back, one mask per nucleus, and fix-masks reads it to the same labels', async () => {
  const root = tempDir();
  const train = join(root, 'train');
  await writeDsbImage(train, 'p', 4, 3, { 'a.png': ['##..', '....', '....'], 'b.png': ['....', '..##', '..##'] });
  await writeDsbImage(train, 'q', 2, 2, { 'a.png': ['#.', '..'] });
  const compact = join(root, 'compact');
  assert.equal((await dsb(['fix-masks', '--in', train, '--out', compact])).exitCode, 0);
  writeFileSync(join(root, 'ids.txt'), 'p\n');
  const exported = join(root, 'exported');
  const result = await dsb(['export', '--in', compact, '--ids', join(root, 'ids.txt'), '--out', exported]);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(readdirSync(exported).sort(), ['p', 'report.json']);
  assert.deepEqual(readdirSync(join(exported, 'p', 'masks')), ['p_0001.png', 'p_0002.png']);
  const second = await readBinaryMask(join(exported, 'p', 'masks', 'p_0002.png'));
  assert.deepEqual(render(second.data, 4), ['....', '..11', '..11']);
  assert.deepEqual(readFileSync(join(exported, 'p', 'images', 'p.png')), readFileSync(join(compact, 'images', 'p.png')));
  const again = join(root, 'again');
  assert.equal((await dsb(['fix-masks', '--in', exported, '--out', again])).exitCode, 0);
  assert.deepEqual((await readSample(again, 'p')).labels.data, (await readSample(compact, 'p')).labels.data);
});

test('export refuses ids that are not in the dataset, naming them', async () => {
  const root = tempDir();
  const train = join(root, 'train');
  await writeDsbImage(train, 'p', 2, 2, { 'a.png': ['#.', '..'] });
  assert.equal((await dsb(['fix-masks', '--in', train, '--out', join(root, 'compact')])).exitCode, 0);
  writeFileSync(join(root, 'ids.txt'), 'p\nghost\n');
  const result = await dsb(['export', '--in', join(root, 'compact'), '--ids', join(root, 'ids.txt'), '--out', join(root, 'x')]);
  assert.equal(result.exitCode, 1);
  assert.match(result.stderr, /ids\.txt: 1 id\(s\) not in .*: ghost/);
});
