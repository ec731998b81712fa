import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { sharedData, stagesCommand } from '../helpers/paths.js';
import { DatasetWriter } from '../../stages/imaging/dataset.js';
import { stratifiedSplit } from '../../stages/data/split.js';
import { readClasses } from '../../stages/imaging/classes-csv.js';
import { tempDir } from './dsb-fixture.js';

async function dsb(args: string[]) {
  return execa(stagesCommand[0]!, [...stagesCommand.slice(1), ...args], { reject: false });
}

/** A compact dataset of 1x1 samples with the given ids (and optional modalities). */
async function idsDataset(dir: string, ids: string[], modality?: (id: string) => string): Promise<void> {
  const writer = new DatasetWriter(dir);
  for (const id of ids) {
    await writer.add({
      info: { id, width: 1, height: 1, channels: 3, nuclei: 0, overlapPixels: 0, source: 'test', ...(modality ? { modality: modality(id) } : {}) },
      image: { width: 1, height: 1, channels: 3, data: new Uint8Array(3) },
      labels: { width: 1, height: 1, data: new Uint16Array(1), count: 0 },
    });
  }
  await writer.finish();
}

function classMap(counts: Record<string, number>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [label, n] of Object.entries(counts)) for (let i = 0; i < n; i++) map.set(`${label}-${String(i).padStart(3, '0')}`, label);
  return map;
}

test('the fixed training set modalities split 597 / 67 with each class keeping its share', () => {
  const split = stratifiedSplit(classMap({ whiteblack: 541, purplepurple: 69, purplewhite: 38, blackwhite: 16 }), 0.1, '42');
  assert.equal(split.train.length, 597);
  assert.equal(split.val.length, 67);
  assert.deepEqual(split.perClass, {
    blackwhite: [14, 2],
    purplepurple: [62, 7],
    purplewhite: [34, 4],
    whiteblack: [487, 54],
  });
  for (const id of split.val) assert.ok(!split.train.includes(id));
});

test('the same seed gives the same lists and another seed other lists', () => {
  const classes = classMap({ a: 30, b: 20 });
  const first = stratifiedSplit(classes, 0.2, '7');
  assert.deepEqual(stratifiedSplit(classes, 0.2, '7'), first);
  assert.notDeepEqual(stratifiedSplit(classes, 0.2, '8').val, first.val);
});

test('split writes sorted train.txt and val.txt from classes.csv', async () => {
  const root = tempDir();
  const ids = Array.from({ length: 20 }, (_, i) => `id${String(i).padStart(2, '0')}`);
  await idsDataset(join(root, 'data'), ids);
  const csv = ['filename,foreground,background', ...ids.map((id, i) => `${id}.png,${i < 10 ? 'white,black' : 'purple,purple'}`)];
  writeFileSync(join(root, 'classes.csv'), csv.join('\n') + '\n');
  const out = join(root, 'split');
  const args = ['split', '--in', join(root, 'data'), '--classes', join(root, 'classes.csv'), '--val-fraction', '0.2', '--seed', '3', '--out', out];
  const result = await dsb(args);
  assert.equal(result.exitCode, 0, result.stderr);
  const train = readFileSync(join(out, 'train.txt'), 'utf8').trim().split('\n');
  const val = readFileSync(join(out, 'val.txt'), 'utf8').trim().split('\n');
  assert.equal(train.length, 16);
  assert.equal(val.length, 4);
  assert.deepEqual([...train].sort(), train);
  assert.equal(val.filter((id) => Number(id.slice(2)) < 10).length, 2);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.deepEqual(report, { images: 20, train: 16, val: 4, train_purplepurple: 8, val_purplepurple: 2, train_whiteblack: 8, val_whiteblack: 2 });
});

test('without classes.csv the split stratifies by the manifest modality', async () => {
  const root = tempDir();
  const ids = Array.from({ length: 10 }, (_, i) => `s${i}`);
  await idsDataset(join(root, 'data'), ids, (id) => (Number(id.slice(1)) < 5 ? 'bright' : 'dark'));
  const result = await dsb(['split', '--in', join(root, 'data'), '--val-fraction', '0.2', '--out', join(root, 'split')]);
  assert.equal(result.exitCode, 0, result.stderr);
  const report = JSON.parse(readFileSync(join(root, 'split', 'report.json'), 'utf8'));
  assert.equal(report.val_bright, 1);
  assert.equal(report.val_dark, 1);
});

test('ids missing from classes.csv are an error that names them, with no output', async () => {
  const root = tempDir();
  await idsDataset(join(root, 'data'), ['known', 'lost1', 'lost2']);
  writeFileSync(join(root, 'classes.csv'), 'filename,foreground,background\nknown.png,white,black\n');
  const result = await dsb(['split', '--in', join(root, 'data'), '--classes', join(root, 'classes.csv'), '--out', join(root, 'split')]);
  assert.equal(result.exitCode, 1);
  assert.match(result.stderr, /classes\.csv: no class for 2 id\(s\) of .*: lost1, lost2/);
  assert.deepEqual(readdirSync(root).sort(), ['classes.csv', 'data']);
});

const classesCsv = join(sharedData, 'classes.csv');
test(
  'the real classes.csv gives every stage1_train image a class',
  { skip: existsSync(classesCsv) ? false : `real DSB2018 data not found at ${sharedData}` },
  async () => {
    const classes = await readClasses(classesCsv);
    const ids = readdirSync(join(sharedData, 'stage1_train'));
    assert.equal(ids.length, 670);
    assert.deepEqual(ids.filter((id) => !classes.has(id)), []);
    assert.ok(classes.get(ids[0]!)!.length > 0);
  },
);

test('a held-out class goes to validation whole; the other classes keep their shares and lists', () => {
  const classes = classMap({ whiteblack: 541, purplepurple: 69, purplewhite: 38, blackwhite: 16 });
  const split = stratifiedSplit(classes, 0.1, '42', new Set(['purplepurple']));
  assert.deepEqual(split.perClass.purplepurple, [0, 69]);
  assert.deepEqual(split.perClass.whiteblack, [487, 54]);
  assert.ok(split.train.every((id) => !id.startsWith('purplepurple')));
  const plain = stratifiedSplit(classes, 0.1, '42');
  assert.deepEqual(split.val.filter((id) => id.startsWith('whiteblack')), plain.val.filter((id) => id.startsWith('whiteblack')));
});

test('split --holdout sends a modality to validation and names the classes when it is unknown', async () => {
  const root = tempDir();
  const ids = Array.from({ length: 12 }, (_, i) => `id${String(i).padStart(2, '0')}`);
  await idsDataset(join(root, 'data'), ids, (id) => (Number(id.slice(2)) < 8 ? 'whiteblack' : 'purplepurple'));
  const ok = await dsb(['split', '--in', join(root, 'data'), '--val-fraction', '0.25', '--holdout', 'purplepurple', '--out', join(root, 'split')]);
  assert.equal(ok.exitCode, 0, ok.stderr);
  const val = readFileSync(join(root, 'split', 'val.txt'), 'utf8').trim().split('\n');
  assert.deepEqual(val.filter((id) => Number(id.slice(2)) >= 8), ['id08', 'id09', 'id10', 'id11']);
  assert.equal(val.length, 6); // 2 of the 8 whiteblack ids, all 4 purplepurple
  const bad = await dsb(['split', '--in', join(root, 'data'), '--holdout', 'purple', '--out', join(root, 'split2')]);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stderr, /flag --holdout: no class purple in .* \(classes: purplepurple, whiteblack\)/);
  assert.equal(existsSync(join(root, 'split2')), false);
});
