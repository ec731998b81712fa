// Where the real DSB2018 folder is absent, the pipeline runs on the synthetic set: fix-masks reads --fallback
// (with its classes.csv as modalities) and external writes an empty dataset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stagesCommand } from '../helpers/paths.js';

function dsb2018(args: string[]): { status: number | null; stderr: string } {
  const [node, ...prefix] = stagesCommand;
  const result = spawnSync(node!, [...prefix, ...args], { encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

test('fix-masks reads the fallback folder when --in is absent, with modalities from its classes.csv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fallback-'));
  assert.equal(dsb2018(['synth', '--out', join(dir, 'synth'), '--n', '3', '--preset', 'easy', '--seed', '2']).status, 0);
  const result = dsb2018(['fix-masks', '--in', join(dir, 'absent/stage1_train'), '--fixes', join(dir, 'absent/fixes'),
    '--classes', join(dir, 'absent/classes.csv'), '--fallback', join(dir, 'synth'), '--out', join(dir, 'fixed')]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /absent or empty: using .*synth instead/);
  const manifest = JSON.parse(readFileSync(join(dir, 'fixed/manifest.json'), 'utf8')) as { samples: Array<{ id: string; modality?: string }> };
  assert.deepEqual(manifest.samples.map((s) => s.id), ['synth_0000', 'synth_0001', 'synth_0002']);
  assert.ok(manifest.samples.every((s) => s.modality === 'whiteblack'), JSON.stringify(manifest.samples));
});

test('without --fallback an absent --in is still an error naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fallback-'));
  const result = dsb2018(['fix-masks', '--in', join(dir, 'absent'), '--out', join(dir, 'fixed')]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /absent/);
});

test('external with --if-missing empty writes an empty dataset when there are no tissue images', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fallback-'));
  const result = dsb2018(['external', '--images', join(dir, 'none/tissue'), '--annotations', join(dir, 'none/xml'), '--out', join(dir, 'ext'), '--if-missing', 'empty']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'ext/manifest.json'), 'utf8')).samples, []);
  const strict = dsb2018(['external', '--images', join(dir, 'none/tissue'), '--annotations', join(dir, 'none/xml'), '--out', join(dir, 'ext2')]);
  assert.equal(strict.status, 1);
});

test('mosaic and external with --enabled false write empty datasets (the ablations without them)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fallback-'));
  const ext = dsb2018(['external', '--images', join(dir, 'no'), '--annotations', join(dir, 'no'), '--out', join(dir, 'ext'), '--enabled', 'false']);
  assert.equal(ext.status, 0, ext.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'ext/manifest.json'), 'utf8')).samples, []);
  const mosaic = dsb2018(['mosaic', '--in', join(dir, 'no'), '--out', join(dir, 'mos'), '--enabled', 'false']);
  assert.equal(mosaic.status, 0, mosaic.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'mos/manifest.json'), 'utf8')).samples, []);
  assert.equal(dsb2018(['mosaic', '--in', join(dir, 'no'), '--out', join(dir, 'mos2'), '--enabled', 'maybe']).status, 1);
});
