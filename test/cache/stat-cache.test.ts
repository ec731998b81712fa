import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, statSync, utimesSync, renameSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatCache } from '../../cache/stat-cache.js';
import { hashPath, sha256 } from '../../cache/hash.js';
import type { ContentHash } from '../../cache/types.js';

const FAKE = 'f'.repeat(64) as ContentHash;
const past = new Date(Date.now() - 60_000);

function oldFile(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cache-stat-'));
  const file = join(dir, 'f');
  writeFileSync(file, content);
  utimesSync(file, past, past);
  return file;
}

test('a remembered hash is returned while size, mtime, ctime and inode are unchanged', () => {
  const file = oldFile('abc');
  const cache = StatCache.inMemory();
  cache.remember(file, statSync(file), FAKE);
  assert.equal(cache.lookup(file, statSync(file)), FAKE);
});

test('a change of mtime, size or inode is a miss', () => {
  const cache = StatCache.inMemory();
  const file = oldFile('abc');
  const stat = statSync(file);
  cache.remember(file, stat, FAKE);
  assert.equal(cache.lookup(file, { ...stat, size: stat.size, ctimeMs: stat.ctimeMs, ino: stat.ino, mtimeMs: stat.mtimeMs + 1 }), undefined);
  assert.equal(cache.lookup(file, { size: stat.size + 1, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino }), undefined);
  assert.equal(cache.lookup(file, { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino + 1 }), undefined);
  assert.equal(cache.lookup(file, { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino }), FAKE);
});

test('a file rewritten with the same size and a restored mtime is re-hashed, because its ctime moved', async () => {
  const file = oldFile('aaaa');
  const cache = StatCache.inMemory();
  const ws = join(file, '..');
  const before = await hashPath(ws, 'f', cache);
  assert.equal(cache.lookup(file, statSync(file)), before.hash);
  const { mtime, atime } = statSync(file);
  // The limit this test stays clear of: ctime has the kernel's coarse clock tick (~4 ms), and a rewrite in
  // the same tick as the last change would be invisible; past one tick it is seen.
  await new Promise((r) => setTimeout(r, 20));
  writeFileSync(file, 'bbbb'); // same size, same inode
  utimesSync(file, atime, mtime); // mtime put back, as a careless tool might; ctime can't be put back
  assert.equal(Math.round(statSync(file).mtimeMs), mtime.getTime());
  const after = await hashPath(ws, 'f', cache);
  assert.notEqual(after.hash, before.hash);
});

test('a file replaced by another (new inode) with the same size and mtime is re-hashed', async () => {
  const file = oldFile('aaaa');
  const cache = StatCache.inMemory();
  const ws = join(file, '..');
  const before = await hashPath(ws, 'f', cache);
  const other = join(ws, 'g');
  writeFileSync(other, 'cccc');
  utimesSync(other, past, past);
  renameSync(other, file);
  assert.notEqual((await hashPath(ws, 'f', cache)).hash, before.hash);
});

test('a file modified within the racy window is not remembered', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-stat-'));
  const file = join(dir, 'young');
  writeFileSync(file, 'x');
  const cache = StatCache.inMemory({ racyWindowMs: 60_000 });
  cache.remember(file, statSync(file), FAKE);
  assert.equal(cache.lookup(file, statSync(file)), undefined);
});

test('save persists across load, and a load with nothing new does not rewrite the files', async () => {
  const file = oldFile('abc');
  const ws = join(file, '..');
  mkdirSync(join(ws, 'd'));
  writeFileSync(join(ws, 'd/inner'), 'x');
  utimesSync(join(ws, 'd/inner'), past, past);
  const cacheFile = join(ws, 'state', 'stat.json');
  const cache = StatCache.load(cacheFile);
  cache.remember(file, statSync(file), FAKE); // a file on its own: kept in the small file
  await hashPath(ws, 'd', cache); // files below a directory: kept in `.files`
  cache.save();
  const reloaded = StatCache.load(cacheFile);
  assert.equal(reloaded.lookup(file, statSync(file)), FAKE);
  assert.equal(reloaded.lookupIn(reloaded.directory(join(ws, 'd')), 'inner', statSync(join(ws, 'd/inner'))), sha256('x'));
  const before = [cacheFile, cacheFile + '.files'].map((f) => ({ bytes: readFileSync(f), mtimeMs: statSync(f).mtimeMs }));
  reloaded.remember(file, statSync(file), FAKE);
  await hashPath(ws, 'd', reloaded);
  reloaded.save();
  const after = [cacheFile, cacheFile + '.files'].map((f) => ({ bytes: readFileSync(f), mtimeMs: statSync(f).mtimeMs }));
  assert.deepEqual(after, before);
});

test('a corrupt cache file loads as an empty cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-stat-'));
  const cacheFile = join(dir, 'stat.json');
  writeFileSync(cacheFile, '{not json');
  writeFileSync(cacheFile + '.files', '[');
  const cache = StatCache.load(cacheFile);
  assert.equal(cache.lookup(join(dir, 'x'), { size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1 }), undefined);
  assert.equal(existsSync(cacheFile), true);
});

/** A hash of its own for each record (sha256 hex, like every stored hash). */
const hashOf = (i: number): ContentHash => sha256(`record ${i}`) as ContentHash;

test('per-directory records survive save and load exactly: many names, fractional times, large inodes, a replaced record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-stat-'));
  const cacheFile = join(dir, 'stat.json');
  const now = Date.now();
  const statOf = (i: number) => ({ size: i * 7, mtimeMs: now - 60_000 - i + 0.123456789, ctimeMs: now - 50_000 + i / 3, ino: 2 ** 40 + i });
  const cache = StatCache.load(cacheFile);
  const folders = ['/w/a', '/w/a/b', '/w/c'];
  for (let i = 0; i < 300; i++) cache.rememberIn(folders[i % 3]!, `f ${i}.png`, statOf(i), hashOf(i), now);
  cache.rememberIn('/w/a', 'f 0.png', statOf(1000), hashOf(1000), now); // replaces f 0's record
  cache.save();
  const saved = JSON.parse(readFileSync(cacheFile + '.files', 'utf8')) as { version: number; dirs: Record<string, unknown> };
  assert.equal(saved.version, 3);
  assert.deepEqual(Object.keys(saved.dirs).sort(), folders);
  const reloaded = StatCache.load(cacheFile);
  for (let i = 1; i < 300; i++) {
    const records = reloaded.directory(folders[i % 3]!);
    assert.equal(reloaded.lookupIn(records, `f ${i}.png`, statOf(i)), hashOf(i), `f ${i}`);
    assert.equal(reloaded.lookupIn(records, `f ${i}.png`, { ...statOf(i), ctimeMs: statOf(i).ctimeMs + 0.001 }), undefined, `f ${i}, another ctime`);
  }
  assert.equal(reloaded.lookupIn(reloaded.directory('/w/a'), 'f 0.png', statOf(0)), undefined, 'the replaced record is gone');
  assert.equal(reloaded.lookupIn(reloaded.directory('/w/a'), 'f 0.png', statOf(1000)), hashOf(1000));
  assert.equal(reloaded.lookupIn(reloaded.directory('/w/a'), 'f 3000.png', statOf(0)), undefined);
});

test('a damaged directory entry in the records file drops that directory only; records of an older format are not read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-stat-'));
  const cacheFile = join(dir, 'stat.json');
  const stat = { size: 3, mtimeMs: 1000.5, ctimeMs: 2000.25, ino: 77 };
  const cache = StatCache.load(cacheFile);
  for (const folder of ['/w/good', '/w/short-stats', '/w/short-hashes', '/w/not-base64', '/w/not-names']) cache.rememberIn(folder, 'x', stat, FAKE, 1e12);
  cache.save();
  const saved = JSON.parse(readFileSync(cacheFile + '.files', 'utf8')) as { version: number; dirs: Record<string, [unknown, string, string]> };
  saved.dirs['/w/short-stats']![1] = saved.dirs['/w/short-stats']![1].slice(0, 8);
  saved.dirs['/w/short-hashes']![2] = 'f'.repeat(63);
  saved.dirs['/w/not-base64']![1] = '%%%%';
  saved.dirs['/w/not-names']![0] = [5];
  writeFileSync(cacheFile + '.files', JSON.stringify(saved));
  const reloaded = StatCache.load(cacheFile);
  assert.equal(reloaded.lookupIn(reloaded.directory('/w/good'), 'x', stat), FAKE);
  for (const folder of ['/w/short-stats', '/w/short-hashes', '/w/not-base64', '/w/not-names']) assert.equal(reloaded.directory(folder), undefined, folder);
  // The format before the column form (an array per record) is ignored: its directories are hashed again.
  writeFileSync(cacheFile + '.files', JSON.stringify({ version: 2, dirs: { '/w/good': { x: [3, 1000.5, 2000.25, 77, FAKE] } } }));
  assert.equal(StatCache.load(cacheFile).directory('/w/good'), undefined);
});
