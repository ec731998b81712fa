import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { sharedData, stagesCommand } from '../helpers/paths.js';
import { readManifest, readSample } from '../../stages/imaging/dataset.js';
import { render } from '../imaging/grid.js';
import { tempDir, writeDsbImage, writeMasks } from './dsb-fixture.js';

async function dsb(args: string[]) {
  return execa(stagesCommand[0]!, [...stagesCommand.slice(1), ...args], { reject: false });
}

/** Three images: one with a duplicate, an empty and an overlapping mask; one fixed; one removed. */
async function tinyTrainingSet(root: string): Promise<{ train: string; fixes: string }> {
  const train = join(root, 'train');
  const fixes = join(root, 'fixes');
  await writeDsbImage(train, 'a', 5, 3, {
    'm1.png': ['##...', '##...', '.....'],
    'm2.png': ['##...', '##...', '.....'], // duplicate of m1
    'm3.png': ['.....', '.....', '.....'], // empty
    'm4.png': ['.##..', '.##..', '....#'], // overlaps m1 in two pixels
  });
  await writeDsbImage(train, 'b', 4, 2, { 'x.png': ['####', '....'] });
  await writeMasks(fixes, 'b', { 'f1.png': ['#...', '#...'], 'f2.png': ['..##', '..##'] });
  await writeDsbImage(train, 'c', 3, 3, { 'x.png': ['#..', '...', '...'] });
  writeFileSync(join(fixes, 'removed_ids.txt'), 'c\n');
  return { train, fixes };
}

test('fix-masks applies fixes and removals and drops duplicate and empty masks, counting each', async () => {
  const root = tempDir();
  const { train, fixes } = await tinyTrainingSet(root);
  const out = join(root, 'fixed');
  const result = await dsb(['fix-masks', '--in', train, '--fixes', fixes, '--out', out]);
  assert.equal(result.exitCode, 0, result.stderr);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.deepEqual(report, {
    imagesIn: 3,
    imagesRemoved: 1,
    imagesFixed: 1,
    imagesWritten: 2,
    removedIdsNotFound: 0,
    fixesWithoutImage: 0,
    masksRead: 6,
    emptyMasks: 1,
    duplicateMasks: 1,
    hiddenMasks: 0,
    overlapPixels: 2,
    nuclei: 4,
  });
  const manifest = await readManifest(out);
  assert.deepEqual(
    manifest.map((s) => [s.id, s.width, s.height, s.channels, s.nuclei, s.overlapPixels, s.source]),
    [
      ['a', 5, 3, 4, 2, 2, 'train'],
      ['b', 4, 2, 4, 2, 0, 'train'],
    ],
  );
  const a = await readSample(out, 'a');
  // Overlapping pixels stay with the first mask in sorted filename order.
  assert.deepEqual(render(a.labels.data, 5), ['112..', '112..', '....2']);
  const b = await readSample(out, 'b');
  assert.deepEqual(render(b.labels.data, 4), ['1.22', '1.22']);
});

test('fix-masks runs without a fixes folder (synthetic data has none)', async () => {
  const root = tempDir();
  const { train } = await tinyTrainingSet(root);
  const out = join(root, 'fixed');
  const result = await dsb(['fix-masks', '--in', train, '--out', out, '--source', 'synth', '--report', join(root, 'r.json')]);
  assert.equal(result.exitCode, 0, result.stderr);
  const report = JSON.parse(readFileSync(join(root, 'r.json'), 'utf8'));
  assert.equal(report.imagesWritten, 3);
  assert.equal(existsSync(join(out, 'report.json')), false);
  assert.deepEqual((await readManifest(out)).map((s) => s.source), ['synth', 'synth', 'synth']);
});

test('a mask of the wrong size fails naming the mask and leaves no output behind', async () => {
  const root = tempDir();
  const { train } = await tinyTrainingSet(root);
  await writeMasks(train, 'b', { 'wrong.png': ['###', '...'] });
  const out = join(root, 'fixed');
  const result = await dsb(['fix-masks', '--in', train, '--out', out]);
  assert.notEqual(result.exitCode, 0);
  assert.match(result.stderr, /b[/\\]masks[/\\]wrong\.png: mask is 3x2 but its image .*b\.png is 4x2/);
  assert.deepEqual(readdirSync(root).sort(), ['fixes', 'train']);
});

test('a truncated mask PNG fails naming the file, with no partial output', async () => {
  const root = tempDir();
  const { train } = await tinyTrainingSet(root);
  const file = join(train, 'a', 'masks', 'm4.png');
  const bytes = readFileSync(file);
  writeFileSync(file, bytes.subarray(0, bytes.length - 20));
  const result = await dsb(['fix-masks', '--in', train, '--out', join(root, 'fixed')]);
  assert.notEqual(result.exitCode, 0);
  assert.match(result.stderr, /a[/\\]masks[/\\]m4\.png: cannot decode mask/);
  assert.deepEqual(readdirSync(root).sort(), ['fixes', 'train']);
});

test('a truncated image fails naming the image, with no partial output', async () => {
  const root = tempDir();
  const { train } = await tinyTrainingSet(root);
  const file = join(train, 'b', 'images', 'b.png');
  const bytes = readFileSync(file);
  writeFileSync(file, bytes.subarray(0, bytes.length - 20));
  const result = await dsb(['fix-masks', '--in', train, '--out', join(root, 'fixed')]);
  assert.notEqual(result.exitCode, 0);
  assert.match(result.stderr, /b[/\\]images[/\\]b\.png: cannot decode image/);
  assert.deepEqual(readdirSync(root).sort(), ['fixes', 'train']);
});

test('an empty input folder is an error naming it', async () => {
  const root = tempDir();
  mkdirSync(join(root, 'empty'));
  const result = await dsb(['fix-masks', '--in', join(root, 'empty'), '--out', join(root, 'fixed')]);
  assert.equal(result.exitCode, 1);
  assert.match(result.stderr, /empty: no image folders found/);
  assert.deepEqual(readdirSync(root), ['empty']);
});

const realTrain = join(sharedData, 'stage1_train');
test(
  'fix-masks, strip-alpha and fill-holes run on a handful of real images, one of them fixed and one removed',
  { skip: existsSync(realTrain) ? false : `real DSB2018 data not found at ${sharedData}` },
  async () => {
    const root = tempDir();
    const subset = join(root, 'subset');
    mkdirSync(subset);
    const fixes = join(sharedData, 'stage1_train_fixes');
    const removed = readFileSync(join(fixes, 'removed_ids.txt'), 'utf8').trim().split('\n')[0]!.trim();
    const fixed = readdirSync(fixes).filter((name) => name !== 'removed_ids.txt' && name !== removed)[0]!;
    const plain = readdirSync(realTrain).sort().find((id) => id !== removed && !existsSync(join(fixes, id)))!;
    for (const id of new Set([removed, fixed, plain])) symlinkSync(join(realTrain, id), join(subset, id));
    const steps = [
      ['fix-masks', '--in', subset, '--fixes', fixes, '--out', join(root, 'a')],
      ['strip-alpha', '--in', join(root, 'a'), '--out', join(root, 'b')],
      ['fill-holes', '--in', join(root, 'b'), '--out', join(root, 'c')],
    ];
    for (const step of steps) {
      const result = await dsb(step);
      assert.equal(result.exitCode, 0, result.stderr);
    }
    const report = JSON.parse(readFileSync(join(root, 'a', 'report.json'), 'utf8'));
    assert.equal(report.imagesRemoved, 1);
    assert.equal(report.imagesFixed, 1);
    const manifest = await readManifest(join(root, 'c'));
    assert.deepEqual(manifest.map((s) => s.id), [fixed, plain].sort());
    for (const info of manifest) {
      const sample = await readSample(join(root, 'c'), info.id);
      assert.equal(sample.image.channels, 3);
      assert.ok(sample.labels.count > 0);
      assert.equal(sample.labels.count, info.nuclei);
    }
  },
);
