import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, symlinkSync, readlinkSync, statSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, MissingObjectError } from '../../cache/store.js';
import { hashPath } from '../../cache/hash.js';
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
