import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirManifest, hashLargeFile, hashPath, MissingPathError } from '../../cache/hash.js';
import { StatCache } from '../../cache/stat-cache.js';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

function workspace(): string {
  return mkdtempSync(join(tmpdir(), 'cache-hash-'));
}

test('a file hashes to the sha256 of its bytes, with its size', async () => {
  const ws = workspace();
  writeFileSync(join(ws, 'a.txt'), 'hello\n');
  const h = await hashPath(ws, './a.txt');
  assert.deepEqual(h, { path: 'a.txt', hash: sha('hello\n'), size: 6, isDir: false });
  // The well-known digest, so the helper above isn't checking itself.
  assert.equal(h.hash, '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
});

test('a file larger than one read chunk hashes like the whole buffer', async () => {
  const ws = workspace();
  const bytes = Buffer.alloc((8 << 20) + 12345, 7);
  bytes[bytes.length - 1] = 1;
  writeFileSync(join(ws, 'big.bin'), bytes);
  const h = await hashPath(ws, 'big.bin');
  assert.equal(h.hash, createHash('sha256').update(bytes).digest('hex'));
  // The overlapped reader hashPath uses for files of 64 MiB and more, on the same bytes.
  assert.equal(await hashLargeFile(join(ws, 'big.bin')), h.hash);
});

test('a directory hashes to the sha256 of its sorted [path, hash, size] manifest, ignoring empty dirs', async () => {
  const ws = workspace();
  mkdirSync(join(ws, 'd/sub'), { recursive: true });
  mkdirSync(join(ws, 'd/empty'));
  writeFileSync(join(ws, 'd/b.txt'), 'bb');
  writeFileSync(join(ws, 'd/sub/a.txt'), 'a');
  writeFileSync(join(ws, 'd/sub-x'), 'x');
  symlinkSync('b.txt', join(ws, 'd/link'));
  const manifest = [
    ['b.txt', sha('bb'), 2],
    ['link', sha('b.txt'), 5, 'symlink'],
    ['sub-x', sha('x'), 1], // '-' sorts before '/', so before sub/a.txt
    ['sub/a.txt', sha('a'), 1],
  ];
  const h = await hashPath(ws, 'd/');
  assert.deepEqual(h, { path: 'd', hash: sha(JSON.stringify(manifest)), size: 9, nfiles: 4, isDir: true });
});

test('the directory manifest does not depend on the order files were created in', async () => {
  const names = ['z', 'a', 'm/q', 'm/b', 'b-c', 'b/c'];
  const hashes: string[] = [];
  for (const order of [names, [...names].reverse()]) {
    const ws = workspace();
    for (const name of order) {
      mkdirSync(join(ws, 'd', name, '..'), { recursive: true });
      writeFileSync(join(ws, 'd', name), name);
    }
    const manifest = await dirManifest(ws, 'd');
    assert.deepEqual(manifest.map((e) => e.path), ['a', 'b-c', 'b/c', 'm/b', 'm/q', 'z']);
    hashes.push((await hashPath(ws, 'd')).hash);
  }
  assert.equal(hashes[0], hashes[1]);
});

test('a directory with many files (hashed on worker threads) gets the same hash as hashed one by one', async () => {
  const ws = workspace();
  mkdirSync(join(ws, 'many'));
  for (let i = 0; i < 300; i++) writeFileSync(join(ws, 'many', `f${i}`), `content ${i}`);
  const manifest = await dirManifest(ws, 'many');
  assert.equal(manifest.length, 300);
  for (const e of manifest) assert.equal(e.hash, sha(`content ${e.path.slice(1)}`));
});

test('a missing dep throws MissingPathError naming it', async () => {
  const ws = workspace();
  await assert.rejects(hashPath(ws, 'nope/x.txt'), (e: unknown) => e instanceof MissingPathError && /nope\/x\.txt/.test(e.message));
});

test('a path outside the workspace is refused', async () => {
  await assert.rejects(hashPath(workspace(), '../etc'), /outside the workspace/);
});

test('a warm directory hash comes from the tree record and follows a change below it', async () => {
  const ws = workspace();
  mkdirSync(join(ws, 'd'));
  writeFileSync(join(ws, 'd/a'), 'one');
  const cache = StatCache.inMemory({ racyWindowMs: 0 });
  const first = await hashPath(ws, 'd', cache);
  assert.deepEqual(await hashPath(ws, 'd', cache), first);
  writeFileSync(join(ws, 'd/a'), 'two');
  const second = await hashPath(ws, 'd', cache);
  assert.notEqual(second.hash, first.hash);
  assert.equal(second.hash, (await hashPath(ws, 'd')).hash);
  rmSync(ws, { recursive: true });
});

test('a second hash of an unchanged directory is answered by the tree record, without the per-file records', async () => {
  const ws = workspace();
  mkdirSync(join(ws, 'd/sub'), { recursive: true });
  writeFileSync(join(ws, 'd/sub/a'), 'a');
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(ws, 'd/sub/a'), past, past);
  const cacheFile = join(ws, 'state/stat.json');
  const first = StatCache.load(cacheFile);
  const hashed = await hashPath(ws, 'd', first);
  first.save();
  rmSync(cacheFile + '.files'); // the tree record alone must answer
  const warm = StatCache.load(cacheFile);
  let treeHits = 0;
  const lookupTree = warm.lookupTree.bind(warm);
  warm.lookupTree = (dir, digest) => {
    const hit = lookupTree(dir, digest);
    if (hit) treeHits++;
    return hit;
  };
  assert.deepEqual(await hashPath(ws, 'd', warm), hashed);
  assert.equal(treeHits, 1);
});
