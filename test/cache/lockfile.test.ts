import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLock, writeLock, updateLockEntry, lockText, LockFileError } from '../../cache/lockfile.js';
import type { ContentHash, LockEntry, StageKey } from '../../cache/types.js';

const hash = (c: string): ContentHash => c.repeat(64) as ContentHash;
const entry = (k: string): LockEntry => ({
  key: k.repeat(64) as StageKey,
  cmd: ['dsb2018', 'split'],
  deps: [
    { path: 'z', hash: hash('1'), size: 1, isDir: false },
    { path: 'a', hash: hash('2'), size: 9, nfiles: 3, isDir: true },
  ],
  params: { split: { seed: 1, fraction: 0.1 } },
  outs: [{ path: 'out', hash: hash('3'), size: 4, isDir: false }],
});

test('the lock file is sorted and its bytes do not depend on insertion order', () => {
  const one = lockText({ b: entry('b'), a: entry('a') });
  const other = lockText({ a: { ...entry('a'), deps: [...entry('a').deps].reverse(), params: { split: { fraction: 0.1, seed: 1 } } }, b: entry('b') });
  assert.equal(one, other);
  assert.ok(one.indexOf('"a": {') < one.indexOf('"b": {'));
  assert.ok(one.indexOf('"path": "a"') < one.indexOf('"path": "z"'));
  assert.ok(one.indexOf('"key"') < one.indexOf('"cmd"') && one.indexOf('"cmd"') < one.indexOf('"deps"'));
});

test('a no-op rewrite leaves identical bytes and does not touch the file', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'cache-lock-')), 'p.lock');
  writeLock(file, { a: entry('a'), b: entry('b') });
  const bytes = readFileSync(file);
  const old = new Date(Date.now() - 60_000);
  utimesSync(file, old, old);
  writeLock(file, readLock(file));
  assert.deepEqual(readFileSync(file), bytes);
  assert.equal(Math.round(statSync(file).mtimeMs), old.getTime());
  const sortedB = { ...entry('b'), deps: [...entry('b').deps].reverse() };
  assert.deepEqual(readLock(file)['b'], sortedB);
});

test('updating one stage keeps the others, and undefined removes it', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'cache-lock-')), 'p.lock');
  updateLockEntry(file, 'a', entry('a'));
  updateLockEntry(file, 'b', entry('b'));
  assert.deepEqual(Object.keys(readLock(file)), ['a', 'b']);
  updateLockEntry(file, 'a', undefined);
  assert.deepEqual(Object.keys(readLock(file)), ['b']);
});

test('a missing lock file reads as empty and a corrupt one is an error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-lock-'));
  assert.deepEqual(readLock(join(dir, 'none.lock')), {});
  const bad = join(dir, 'bad.lock');
  writeFileSync(bad, JSON.stringify({ schema: '1', stages: { a: { key: 'x', deps: 3 } } }));
  assert.throws(() => readLock(bad), (e: unknown) => e instanceof LockFileError && e.message.includes(bad) && /deps is not a list/.test(e.message));
  writeFileSync(bad, '{"stages": [\n');
  assert.throws(() => readLock(bad), (e: unknown) => e instanceof LockFileError && e.message.startsWith(`${bad}: not valid JSON`));
});
