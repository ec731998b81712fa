import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, symlinkSync, readlinkSync, statSync, rmSync, existsSync, lstatSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, MissingObjectError, DamagedObjectError } from '../../cache/store.js';
import { hashPath, sha256 } from '../../cache/hash.js';
import { OutsideWorkspaceError } from '../../cache/safe-path.js';
import { StatCache } from '../../cache/stat-cache.js';
import type { LinkMode } from '../../cache/types.js';

function setup(link: LinkMode = 'reflink-or-copy'): { ws: string; store: Store } {
  const root = mkdtempSync(join(tmpdir(), 'cache-store-'));
  const ws = join(root, 'ws');
  mkdirSync(join(ws, 'out/dir/sub'), { recursive: true });
  writeFileSync(join(ws, 'out/file.txt'), 'file content');
  writeFileSync(join(ws, 'out/dir/a'), 'A');
  writeFileSync(join(ws, 'out/dir/sub/b'), 'B');
  symlinkSync('a', join(ws, 'out/dir/to-a'));
  return { ws, store: new Store(join(root, 'cache'), { link }) };
}

for (const link of ['reflink-or-copy', 'copy', 'hardlink'] as const) {
  test(`a saved file and directory are restored byte for byte after deletion (${link})`, async () => {
    const { ws, store } = setup(link);
    const file = await store.save(ws, 'out/file.txt');
    const dir = await store.save(ws, 'out/dir');
    assert.equal(store.has(file) && store.has(dir), true);
    rmSync(join(ws, 'out'), { recursive: true });
    await store.restore(ws, file);
    await store.restore(ws, dir);
    assert.equal(readFileSync(join(ws, 'out/file.txt'), 'utf8'), 'file content');
    assert.equal(readFileSync(join(ws, 'out/dir/sub/b'), 'utf8'), 'B');
    assert.equal(readlinkSync(join(ws, 'out/dir/to-a')), 'a');
    assert.deepEqual(await hashPath(ws, 'out/dir'), dir);
    assert.deepEqual(readdirSync(join(ws, 'out')).sort(), ['dir', 'file.txt'], 'no temp siblings left behind');
  });
}

for (const link of ['reflink-or-copy', 'copy'] as const) {
  test(`writing into a restored file in place never changes the cached object (${link})`, async () => {
    const { ws, store } = setup(link);
    const file = await store.save(ws, 'out/file.txt');
    await store.restore(ws, file);
    writeFileSync(join(ws, 'out/file.txt'), 'overwritten!', { flag: 'r+' });
    assert.notEqual(statSync(join(ws, 'out/file.txt')).ino, statSync(store.objectPath(file.hash)).ino);
    assert.equal(readFileSync(store.objectPath(file.hash), 'utf8'), 'file content');
    assert.deepEqual(store.verify(file), []);
  });
}

test('objects are read-only, and in hardlink mode the restored file is the read-only object itself', async () => {
  const { ws, store } = setup('hardlink');
  const file = await store.save(ws, 'out/file.txt');
  assert.equal(statSync(store.objectPath(file.hash)).mode & 0o777, 0o444);
  await store.restore(ws, file);
  const restored = statSync(join(ws, 'out/file.txt'));
  assert.equal(restored.ino, statSync(store.objectPath(file.hash)).ino);
  assert.equal(restored.mode & 0o777, 0o444);
});

test('verify names an object whose bytes no longer match its name', async () => {
  const { ws, store } = setup('hardlink');
  const file = await store.save(ws, 'out/file.txt');
  writeFileSync(store.objectPath(file.hash), 'damaged'); // as root could, through a hardlink
  assert.deepEqual(store.verify(file), [file.hash]);
});

test('restoring without the objects fails before touching the workspace', async () => {
  const { ws, store } = setup();
  const entry = await hashPath(ws, 'out/dir');
  await assert.rejects(store.restore(ws, entry), MissingObjectError);
  assert.equal(readFileSync(join(ws, 'out/dir/a'), 'utf8'), 'A');
});

test('restore replaces whatever is at the target path', async () => {
  const { ws, store } = setup();
  const dir = await store.save(ws, 'out/dir');
  writeFileSync(join(ws, 'out/dir/extra'), 'stale');
  await store.restore(ws, dir);
  assert.equal(existsSync(join(ws, 'out/dir/extra')), false);
});

test('gc keeps the objects of kept entries (directories with their files) and removes the rest', async () => {
  const { ws, store } = setup();
  const file = await store.save(ws, 'out/file.txt');
  const dir = await store.save(ws, 'out/dir');
  writeFileSync(join(ws, 'out/file.txt'), 'second version');
  const second = await store.save(ws, 'out/file.txt');
  const result = await store.gc([dir.hash, second.hash]);
  assert.deepEqual(result, { removedObjects: 1, freedBytes: 'file content'.length });
  assert.equal(store.has(dir), true);
  assert.equal(store.has(second), true);
  assert.equal(store.has(file), false);
  const manifestBytes = statSync(store.objectPath(dir.hash, true)).size;
  // What is left: the manifest, a ("A"), sub/b ("B"), the symlink's target text ("a") and the second file.
  const left = manifestBytes + 1 + 1 + 1 + 'second version'.length;
  assert.deepEqual(await store.gc([]), { removedObjects: 5, freedBytes: left });
  assert.deepEqual(readdirSync(store.objectsDir).flatMap((shard) => readdirSync(join(store.objectsDir, shard))), []);
});

test('a restore below a parent folder that is a symlink out of the workspace is refused, nothing written there', async () => {
  const { ws, store } = setup();
  const file = await store.save(ws, 'out/file.txt');
  const outside = mkdtempSync(join(tmpdir(), 'cache-outside-'));
  rmSync(join(ws, 'out'), { recursive: true });
  symlinkSync(outside, join(ws, 'out'));
  await assert.rejects(store.restore(ws, file), OutsideWorkspaceError);
  assert.deepEqual(readdirSync(outside), []);
});

for (const link of ['reflink-or-copy', 'copy', 'hardlink'] as const) {
  for (const [what, plant] of [
    ['a fifo', (path: string) => execFileSync('mkfifo', [path])],
    ['a symlink', (path: string) => symlinkSync(join(mkdtempSync(join(tmpdir(), 'cache-outside-')), '..'), path)],
    ['a folder', (path: string) => mkdirSync(path)],
  ] as const) {
    test(`${what} planted as an object is damage: removed, named, the workspace untouched, no temp left (${link})`, async () => {
      const { ws, store } = setup(link);
      const dir = await store.save(ws, 'out/dir');
      const a = store.objectPath(sha256('A'));
      rmSync(a, { force: true });
      plant(a);
      await assert.rejects(store.restore(ws, dir), (error: unknown) => error instanceof DamagedObjectError && /of out\/dir\/a is damaged/.test(error.message));
      assert.equal(existsSync(a) || lstatExists(a), false, 'removed from the store');
      assert.equal(readFileSync(join(ws, 'out/dir/a'), 'utf8'), 'A', 'the workspace is as it was');
      assert.deepEqual(readdirSync(join(ws, 'out')).sort(), ['dir', 'file.txt']);
    });
  }
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

test('restore checks every byte it hands over, and what it restored is in the stat cache', async () => {
  const { ws, store } = setup();
  const dir = await store.save(ws, 'out/dir');
  const statCache = StatCache.inMemory({ racyWindowMs: 0 }); // the objects were written a moment ago
  rmSync(join(ws, 'out/dir'), { recursive: true });
  await store.restore(ws, dir, statCache);
  assert.deepEqual(await hashPath(ws, 'out/dir', statCache), dir);
  const b = join(realpathSync(ws), 'out/dir/sub');
  assert.equal(statCache.lookupIn(statCache.directory(b), 'b', lstatSync(join(b, 'b'))), sha256('B'));
});

test('a shard or temp folder that is a symlink out of the cache is replaced, never written or deleted through', async () => {
  const { ws, store } = setup();
  const outside = mkdtempSync(join(tmpdir(), 'cache-outside-'));
  const hash = sha256('file content');
  mkdirSync(store.objectsDir, { recursive: true });
  symlinkSync(outside, join(store.objectsDir, hash.slice(0, 2)));
  symlinkSync(outside, store.tmpDir);
  writeFileSync(join(outside, hash), 'planted');
  const warnings: string[] = [];
  const watched = new Store(store.cacheDir, { warn: (message) => warnings.push(message) });
  const file = await watched.save(ws, 'out/file.txt');
  assert.deepEqual(readdirSync(outside), [hash], 'nothing written there');
  assert.equal(readFileSync(join(outside, hash), 'utf8'), 'planted', 'nor deleted');
  assert.equal(lstatSync(join(store.objectsDir, hash.slice(0, 2))).isDirectory(), true);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  rmSync(join(ws, 'out/file.txt'));
  await watched.restore(ws, file);
  assert.equal(readFileSync(join(ws, 'out/file.txt'), 'utf8'), 'file content');
});
