import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { stagesCommand, sharedData } from '../helpers/paths.js';
import { connectedComponents } from '../../stages/imaging/components.js';
import { classesCsv, knobsFromFlags, presets, synthImage } from '../../stages/data/synth.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'synth-test-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function runSynth(args: string[]): void {
  const [node, ...rest] = stagesCommand;
  execFileSync(node!, [...rest, 'synth', ...args], { stdio: 'pipe' });
}

/** Every file under dir (relative path -> bytes), sorted. */
function filesOf(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length + 1), readFileSync(path));
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
}

test('the same seed writes byte-identical files and another seed writes different ones', () => {
  const dir = tempDir();
  const args = ['--n', '3', '--preset', 'easy', '--size', '64-96'];
  runSynth(['--out', join(dir, 'a'), '--seed', '11', ...args]);
  runSynth(['--out', join(dir, 'b'), '--seed', '11', ...args]);
  runSynth(['--out', join(dir, 'c'), '--seed', '12', ...args]);
  const a = filesOf(join(dir, 'a'));
  const b = filesOf(join(dir, 'b'));
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${name} differs between two runs with seed 11`);
  const imageA = a.get(join('synth_0000', 'images', 'synth_0000.png'))!;
  const imageC = filesOf(join(dir, 'c')).get(join('synth_0000', 'images', 'synth_0000.png'))!;
  assert.ok(!imageA.equals(imageC), 'seeds 11 and 12 gave the same first image');
});

test('image i is a function of the seed and i alone, so a bigger set extends a smaller one', () => {
  const knobs = { ...presets.easy, size: { min: 48, max: 64 } };
  const first = synthImage('5', 2, 'x', knobs);
  const again = synthImage('5', 2, 'x', knobs);
  assert.deepEqual(first.rgba, again.rgba);
  assert.deepEqual(first.labels.data, again.labels.data);
  assert.notDeepEqual(synthImage('5', 3, 'x', knobs).rgba, first.rgba);
});

test('masks are exact: non-empty, disjoint, one piece each, and they are exactly the bright pixels', async () => {
  const dir = tempDir();
  const out = join(dir, 'set');
  // No noise, blur or illumination: then a single threshold must separate nuclei from background.
  runSynth(['--out', out, '--n', '3', '--seed', '4', '--preset', 'easy', '--size', '96-128',
    '--noise', '0', '--blur', '0', '--illumination', '0']);
  for (const id of ['synth_0000', 'synth_0001', 'synth_0002']) {
    const image = await sharp(join(out, id, 'images', `${id}.png`)).raw().toBuffer({ resolveWithObject: true });
    assert.equal(image.info.channels, 4, 'images are RGBA like the real set');
    const { width, height } = image.info;
    const union = new Uint8Array(width * height);
    const maskFiles = readdirSync(join(out, id, 'masks')).sort();
    assert.ok(maskFiles.length >= 5, `${id} has ${maskFiles.length} masks, the easy preset asks for 5-25`);
    for (const file of maskFiles) {
      const maskFile = join(out, id, 'masks', file);
      assert.equal((await sharp(maskFile).metadata()).channels, 1, 'masks are single-channel like the real ones');
      const mask = await sharp(maskFile).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([mask.info.width, mask.info.height], [width, height]);
      const binary = new Uint8Array(width * height);
      for (let p = 0; p < binary.length; p++) {
        const v = mask.data[p]!;
        assert.ok(v === 0 || v === 255, `${id}/${file} is not binary`);
        if (v === 255) {
          assert.equal(union[p], 0, `${id}/${file} overlaps another mask`);
          binary[p] = union[p] = 1;
        }
      }
      assert.equal(connectedComponents(binary, width, height, 8).count, 1, `${id}/${file} is not one non-empty piece`);
    }
    for (let p = 0; p < union.length; p++) {
      const bright = image.data[p * 4]! > 50 ? 1 : 0;
      assert.equal(bright, union[p], `${id}: pixel ${p % width},${Math.floor(p / width)} is ${bright ? 'bright' : 'dark'} but ${union[p] ? 'in' : 'outside'} a mask`);
    }
  }
});

test('classes.csv is written in the exact format of the real file', (t) => {
  const text = classesCsv([{ id: 'synth_0000', modality: 'whiteblack' }, { id: 'synth_0001', modality: 'purplewhite' }]);
  assert.equal(text, 'filename,foreground,background\r\nsynth_0000.png,white,black\r\nsynth_0001.png,purple,white');
  const real = join(sharedData, 'classes.csv');
  if (!existsSync(real)) return t.skip(`real DSB2018 data not found at ${real}`);
  const realText = readFileSync(real, 'utf8');
  assert.equal(realText.split('\r\n')[0], 'filename,foreground,background');
  assert.ok(!realText.endsWith('\n'), 'the real file has no final newline');
});

test('the default preset mixes modalities with the real set majority of bright nuclei on dark', () => {
  const knobs = { ...presets.real, size: { min: 32, max: 40 }, radius: { min: 3, max: 4 } };
  const counts: Record<string, number> = {};
  for (let i = 0; i < 60; i++) {
    const m = synthImage('1', i, 'x', knobs).modality;
    counts[m] = (counts[m] ?? 0) + 1;
  }
  assert.ok((counts['whiteblack'] ?? 0) > 30, JSON.stringify(counts));
  assert.ok(Object.keys(counts).length >= 2, JSON.stringify(counts));
});

test('a bad knob is an error naming the flag, and nothing is written', () => {
  const dir = tempDir();
  const out = join(dir, 'never');
  const [node, ...rest] = stagesCommand;
  const result = spawnSync(node!, [...rest, 'synth', '--out', out, '--n', '2', '--radius', '9-3'], { encoding: 'utf8' });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /--radius: "9-3"/);
  assert.equal(existsSync(out), false);
  assert.throws(() => knobsFromFlags({ preset: 'easy', modalities: 'whiteblack,greenred' }), /--modalities: "greenred"/);
});
