// Nothing outside the workspace is written or deleted: not through a symlinked parent folder of an out, not
// through a poisoned manifest reached by a valid run-cache record, not by gc through a symlink in objects/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { makeWorkspace, runCli, runJson, runs } from './helpers.js';

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function outsideDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'runner-outside-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((entry) => [entry.name, entry.isDirectory() ? '(folder)' : readFileSync(join(dir, entry.name), 'utf8')]));
}

function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

for (const [what, out] of [
  ['a symlinked parent', 'o/f'],
  ['a symlinked grandparent', 'o/sub/f'],
  ['a symlinked parent (a folder out)', 'o/d'],
] as const) {
  test(`an out below ${what} leading out of the workspace is refused before anything is deleted`, () => {
    const outside = outsideDir({ f: 'precious' });
    mkdirSync(join(outside, 'sub'));
    writeFileSync(join(outside, 'sub/f'), 'precious too');
    mkdirSync(join(outside, 'd'));
    writeFileSync(join(outside, 'd/x'), 'kept');
    const before = JSON.stringify([snapshot(outside), snapshot(join(outside, 'sub')), snapshot(join(outside, 'd'))]);
    const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen ${out}\n    outs: [${out}]\n` });
    symlinkSync(outside, join(dir, 'o'));
    const result = runJson(dir, ['run', 'pipeline.yaml']);
    assert.equal(result.status, 1);
    const failure = result.summary.stages['gen']!.failure!;
    assert.equal(failure.reason, 'unsafe-path');
    assert.match(failure.message, new RegExp(`^refused: out "${out}" is below the symlink "o" -> \\S+, outside the workspace`));
    assertNoStack(result.stderr);
    assert.deepEqual(runs(dir), [], 'the stage never started');
    assert.equal(JSON.stringify([snapshot(outside), snapshot(join(outside, 'sub')), snapshot(join(outside, 'd'))]), before);
  });
}

test('a dangling symlinked parent is refused too', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen o/f\n    outs: [o/f]\n` });
  const gone = join(outsideDir(), 'not-there');
  symlinkSync(gone, join(dir, 'o'));
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.summary.stages['gen']!.failure!.reason, 'unsafe-path');
  assert.equal(existsSync(gone), false);
});

test('a symlinked parent that stays inside the workspace is fine', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen o/f\n    outs: [o/f]\n` });
  mkdirSync(join(dir, 'real'));
  symlinkSync('real', join(dir, 'o'));
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(readFileSync(join(dir, 'real/f'), 'utf8'), 'gen o/f\n');
});

test('a restore through a parent that became a symlink out of the workspace writes nothing there', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen o/f\n    outs: [o/f]\n` });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  rmSync(join(dir, 'o'), { recursive: true });
  const outside = outsideDir();
  symlinkSync(outside, join(dir, 'o'));
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['gen']!.failure!.reason, 'unsafe-path');
  assert.deepEqual(readdirSync(outside), [], 'nothing restored outside');
});

/**
 * A workspace whose stage `gen` (outs: [d]) ran once, then a run-cache record (valid in every field) whose
 * out names the manifest `text`, stored under its own sha256 with the objects its rows name.
 */
function poisonedWorkspace(rows: (dir: string) => { text: string; objects: string[] }): string {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen d/\n    outs: [d]\n` });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  const cache = join(dir, '.runner/cache');
  const journal = join(cache, 'runs/journal');
  const line = readdirSync(journal).map((name) => readFileSync(join(journal, name), 'utf8')).join('').split('\n')[0]!;
  const record = JSON.parse(line.slice(65)) as { key: string; outs: { hash: string }[] };
  const { text, objects } = rows(dir);
  const put = (name: string, bytes: string): void => {
    mkdirSync(join(cache, 'objects', name.slice(0, 2)), { recursive: true });
    writeFileSync(join(cache, 'objects', name.slice(0, 2), name), bytes);
  };
  for (const bytes of objects) put(sha256(bytes), bytes);
  put(`${sha256(text)}.dir`, text);
  record.outs[0]!.hash = sha256(text);
  mkdirSync(join(cache, 'runs', record.key.slice(0, 2)), { recursive: true });
  writeFileSync(join(cache, 'runs', record.key.slice(0, 2), `${record.key}.json`), JSON.stringify(record));
  rmSync(join(dir, 'd'), { recursive: true });
  return dir;
}

const POISONS: [string, (dir: string, outside: string) => { text: string; objects: string[] }][] = [
  ['an entry with ../', (dir, outside) => {
    const path = `../${'../'.repeat(dir.split('/').length)}${outside.slice(1)}/pwn`;
    return { text: JSON.stringify([[path, sha256('pwn'), 3]]), objects: ['pwn'] };
  }],
  ['an entry climbing to a sibling folder', (_dir, outside) => ({ text: JSON.stringify([[`../../${basename(outside)}/pwn`, sha256('pwn'), 3]]), objects: ['pwn'] })],
  ['an absolute entry', (_dir, outside) => ({ text: JSON.stringify([[`${outside}/pwn`, sha256('pwn'), 3]]), objects: ['pwn'] })],
  ['an entry below a symlink entry', (_dir, outside) => ({
    text: JSON.stringify([['a', sha256(outside), outside.length, 'symlink'], ['a/pwn', sha256('pwn'), 3]]),
    objects: [outside, 'pwn'],
  })],
  ['a duplicate entry', () => ({ text: JSON.stringify([['x', sha256('pwn'), 3], ['x', sha256('pwn'), 3]]), objects: ['pwn'] })],
];

for (const [what, poison] of POISONS) {
  test(`a manifest with ${what}, reached through a valid run-cache record, is refused before anything is written`, () => {
    const outside = outsideDir();
    const dir = poisonedWorkspace((ws) => poison(ws, outside));
    const result = runJson(dir, ['run', 'pipeline.yaml']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.summary.stages['gen']!.status, 'ran', 'not restored: run');
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside the workspace');
    const warnings = result.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    assert.equal(warnings.length, 1, result.stderr);
    assert.match(warnings[0]!, /^warning: the manifest \S+\.dir of d is damaged \(row \d .+\); removed it from the cache$/);
    assertNoStack(result.stderr);
    assert.equal(readFileSync(join(dir, 'd/part.txt'), 'utf8'), 'gen\n');
  });
}

test('gc never follows a symlink in objects/ and skips stray files there, with one warning line each', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen f.txt\n    outs: [f.txt]\n` });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  const outside = outsideDir({ precious: 'keep me', ['d0'.repeat(32)]: 'an outside file named like an object' });
  const objects = join(dir, '.runner/cache/objects');
  symlinkSync(outside, join(objects, 'zz')); // a shard that is a symlink
  const shard = readdirSync(objects).find((name) => name !== 'zz')!;
  symlinkSync(join(outside, 'precious'), join(objects, shard, 'e'.repeat(64))); // an "object" that is a symlink
  writeFileSync(join(objects, '.DS_Store'), 'finder');
  mkdirSync(join(objects, shard, 'stray-folder'));
  const result = runCli(dir, ['gc']);
  assert.equal(result.status, 0, result.stderr);
  assertNoStack(result.stderr);
  assert.equal(result.stderr.split('\n').filter((l) => l.startsWith('warning: gc: skipped')).length, 3, result.stderr);
  assert.deepEqual(snapshot(outside), { precious: 'keep me', ['d0'.repeat(32)]: 'an outside file named like an object' });
  assert.equal(existsSync(join(objects, shard, 'e'.repeat(64))), false, 'the symlink itself is removed, as the link it is');
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).summary.stages['gen']!.status, 'fresh', 'live objects kept');
});

test('a retry after an attempt that turned an out\'s folder into a symlink out of the workspace is refused', () => {
  const outside = outsideDir({ f: 'precious' });
  const dir = makeWorkspace({
    'pipeline.yaml': `stages:
  gen:
    cmd: [sh, -c, 'if [ ! -L o ]; then rm -rf o; ln -s ${outside} o; exit 1; fi; echo written > o/f']
    outs: [o/f]
    retries: 1
`,
  });
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['gen']!.failure!.reason, 'unsafe-path');
  assert.deepEqual(snapshot(outside), { f: 'precious' });
});
