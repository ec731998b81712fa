// The store's packs (cache/store-packs.ts): a directory pulled through a pack is kept as one object of the
// store plus an index, restored from it byte for byte, and trusted no more than a loose object: a pack with a
// wrong byte, cut short, replaced by a symlink, or an index that lies is never restored from; gc keeps a pack
// exactly as long as its manifest; a store holding objects only inside a pack can push them on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileBackend } from '../../cache/remote/file.js';
import { RemoteTransfer } from '../../cache/remote/transfer.js';
import { PACK_OBJECT_MAX_BYTES, packMembers } from '../../cache/pack.js';
import { parseManifest } from '../../cache/manifest.js';
import { sha256 } from '../../cache/hash.js';
import { DamagedObjectError, MissingObjectError, Store } from '../../cache/store.js';
import { PARALLEL_RESTORE_MIN } from '../../cache/pack-restore-worker.js';
import { availableParallelism } from 'node:os';
import { StatCache } from '../../cache/stat-cache.js';
import { hashPath } from '../../cache/hash.js';
import type { PathHash, RunRecord, StageKey } from '../../cache/types.js';
import { tempDir } from './remote-helpers.js';

const KEY = sha256('a stage whose out is a folder of small files') as string as StageKey;
const FILES = 120;

/** A workspace with out/ (120 small files, an empty one, a shared content, a symlink, one big file), saved and pushed to a file:// remote. */
async function pushedFolder(files = FILES): Promise<{ workspace: string; record: RunRecord; remote: string }> {
  const workspace = tempDir('runner-store-packs-a-');
  mkdirSync(join(workspace, 'out/sub/deep'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(workspace, `out/sub/${i % 3 === 0 ? 'deep/' : ''}f${i}.txt`), `small file ${i}\n`);
  writeFileSync(join(workspace, 'out/empty'), '');
  writeFileSync(join(workspace, 'out/same-1'), 'same\n');
  writeFileSync(join(workspace, 'out/same-2'), 'same\n');
  writeFileSync(join(workspace, 'out/big.bin'), Buffer.alloc(PACK_OBJECT_MAX_BYTES + 7, 5));
  symlinkSync('sub/f1.txt', join(workspace, 'out/link'));
  const store = new Store(join(workspace, '.runner/cache'));
  const dir = await store.save(workspace, 'out');
  const record: RunRecord = { key: KEY, cmd: 'make', deps: [], params: {}, outs: [dir], durationMs: 1, createdAt: new Date().toISOString() };
  const remote = tempDir('runner-store-packs-remote-');
  const up = new RemoteTransfer(new FileBackend(pathToFileURL(remote)), store, { warn: (m) => assert.fail(m) });
  assert.equal(await up.pushRecord(record), true);
  up.close();
  return { workspace, record, remote };
}

/** Pulls the record into a fresh store; the store, the out entry and the warnings. */
async function pulled(remote: string): Promise<{ store: Store; dir: PathHash; warnings: string[]; cacheDir: string }> {
  const cacheDir = join(tempDir('runner-store-packs-b-'), 'cache');
  const warnings: string[] = [];
  const store = new Store(cacheDir, { warn: (m) => warnings.push(m) });
  const down = new RemoteTransfer(new FileBackend(pathToFileURL(remote)), store, { warn: (m) => warnings.push(m) });
  const record = await down.fetchRecord(KEY, ['out']);
  down.close();
  assert.notEqual(record, undefined, warnings.join('\n'));
  return { store, dir: record!.outs[0]!, warnings, cacheDir };
}

function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out.sort();
}

function assertSameOut(a: string, b: string): void {
  const names = filesBelow(join(a, 'out'));
  assert.deepEqual(filesBelow(join(b, 'out')), names);
  for (const name of names) {
    const pa = join(a, 'out', name);
    if (lstatSync(pa).isSymbolicLink()) assert.equal(readlinkSync(join(b, 'out', name)), readlinkSync(pa), name);
    else assert.deepEqual(readFileSync(join(b, 'out', name)), readFileSync(pa), name);
  }
}

/** The pack object the store's index names, and the index file. */
function packOf(cacheDir: string, dir: PathHash): { index: string; pack: string } {
  const index = join(cacheDir, 'packs', `${dir.hash}.json`);
  const name = (JSON.parse(readFileSync(index, 'utf8')) as { pack: string }).pack;
  return { index, pack: join(cacheDir, 'objects', name.slice(0, 2), name) };
}

test('a pulled folder is one pack object and an index in the store, restored from it byte for byte', async () => {
  const { workspace, remote } = await pushedFolder();
  const { store, dir, warnings, cacheDir } = await pulled(remote);
  assert.deepEqual(warnings, []);
  const { index, pack } = packOf(cacheDir, dir);
  const members = packMembers(parseManifest(readFileSync(join(cacheDir, 'objects', dir.hash.slice(0, 2), `${dir.hash}.dir`), 'utf8')), PACK_OBJECT_MAX_BYTES);
  assert.equal(sha256(readFileSync(pack)), (JSON.parse(readFileSync(index, 'utf8')) as { pack: string }).pack, 'the pack is stored under its own hash');
  // Loose: only the big file, the manifest and the pack itself; the small objects live in the pack.
  const loose = filesBelow(join(cacheDir, 'objects'));
  assert.equal(loose.length, 3, loose.join('\n'));
  for (const member of members) assert.equal(existsSync(store.objectPath(member.hash)), false);
  assert.equal(store.has(dir), true);
  assert.deepEqual(store.verify(dir), []);

  const target = tempDir('runner-store-packs-c-');
  const statCache = StatCache.inMemory();
  // Restored files carry their objects' (or pack's) times: old ones are old enough for the stat cache to trust.
  const old = new Date(Date.now() - 3600_000);
  for (const object of filesBelow(join(cacheDir, 'objects'))) utimesSync(join(cacheDir, 'objects', object), old, old);
  await store.restore(target, dir, statCache);
  assertSameOut(workspace, target);
  // The restore recorded the tree: hashing it again reads no file and gives the same hash.
  const again = await hashPath(target, 'out', statCache);
  assert.equal(again.hash, dir.hash);
  assert.deepEqual(statCache.treeRecord(join(target, 'out'))?.hit, { hash: dir.hash, size: dir.size, nfiles: dir.nfiles });
});

test('a pack with one wrong byte is never restored from: named, removed with its index, the workspace untouched', async () => {
  const { remote } = await pushedFolder();
  const { store, dir, cacheDir } = await pulled(remote);
  const { index, pack } = packOf(cacheDir, dir);
  const bytes = readFileSync(pack);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
  chmodSync(pack, 0o644);
  writeFileSync(pack, bytes);
  assert.equal(store.verify(dir).length, 1, 'verify names the one object whose bytes changed');
  const target = tempDir('runner-store-packs-d-');
  writeFileSync(join(target, 'out'), 'what was there before');
  await assert.rejects(new Store(cacheDir).restore(target, dir), (error: unknown) => error instanceof DamagedObjectError && /pack .* is damaged/.test(error.message));
  assert.equal(readFileSync(join(target, 'out'), 'utf8'), 'what was there before');
  assert.deepEqual(readdirSync(target), ['out'], 'no temp left beside the target');
  assert.equal(existsSync(pack), false, 'the damaged pack is gone');
  assert.equal(existsSync(index), false, 'and so is its index');
  assert.equal(new Store(cacheDir).has(dir), false, 'the folder is a miss now: the next run pulls or reruns it');
});

test('a pack cut short, a pack that is a symlink, or an index that lies serve nothing', async () => {
  const { remote } = await pushedFolder();
  {
    const { dir, cacheDir } = await pulled(remote);
    const { pack } = packOf(cacheDir, dir);
    chmodSync(pack, 0o644);
    truncateSync(pack, 10);
    const store = new Store(cacheDir);
    assert.equal(store.has(dir), false);
    await assert.rejects(store.restore(tempDir('runner-store-packs-e-'), dir), MissingObjectError);
  }
  {
    const { dir, cacheDir } = await pulled(remote);
    const { pack } = packOf(cacheDir, dir);
    const elsewhere = join(tempDir('runner-store-packs-outside-'), 'pack');
    writeFileSync(elsewhere, readFileSync(pack));
    rmSync(pack);
    symlinkSync(elsewhere, pack);
    const store = new Store(cacheDir);
    assert.equal(store.has(dir), false, 'a pack that is not a regular file serves nothing');
    await assert.rejects(store.restore(tempDir('runner-store-packs-f-'), dir), MissingObjectError);
    await store.gc([dir.hash]);
    assert.equal(existsSync(pack), false, 'gc removes the link');
    assert.deepEqual(readFileSync(elsewhere), readFileSync(elsewhere), 'and never touches its target');
    assert.equal(existsSync(elsewhere), true);
  }
  {
    const { dir, cacheDir } = await pulled(remote);
    const { index } = packOf(cacheDir, dir);
    const value = JSON.parse(readFileSync(index, 'utf8')) as { size: number };
    chmodSync(index, 0o644);
    writeFileSync(index, JSON.stringify({ ...value, size: value.size + 1 }));
    const warnings: string[] = [];
    const store = new Store(cacheDir, { warn: (m) => warnings.push(m) });
    assert.equal(store.has(dir), false);
    assert.match(warnings.join('\n'), /pack index .* is damaged \(its size/);
    assert.equal(existsSync(index), false);
  }
});

test('gc keeps a pack and its index while their manifest lives, and removes them with it', async () => {
  const { workspace, remote } = await pushedFolder();
  const { store, dir, cacheDir } = await pulled(remote);
  const { index, pack } = packOf(cacheDir, dir);
  writeFileSync(join(cacheDir, 'packs', 'stray.txt'), 'not an index');
  await store.gc([dir.hash]);
  assert.equal(existsSync(pack), true);
  assert.equal(existsSync(index), true);
  assert.equal(existsSync(join(cacheDir, 'packs', 'stray.txt')), false);
  const target = tempDir('runner-store-packs-g-');
  await new Store(cacheDir).restore(target, dir);
  assertSameOut(workspace, target);
  const freed = await new Store(cacheDir).gc([]);
  assert.equal(existsSync(pack), false);
  assert.equal(existsSync(index), false);
  assert.deepEqual(filesBelow(join(cacheDir, 'objects')), []);
  assert.equal(freed.removedObjects, 3);
});

test('a store whose objects are only in a pack pushes them on: another machine pulls the same bytes', async () => {
  const { workspace, record, remote } = await pushedFolder();
  const { store, dir, cacheDir } = await pulled(remote);
  const second = tempDir('runner-store-packs-remote2-');
  const warnings: string[] = [];
  const up = new RemoteTransfer(new FileBackend(pathToFileURL(second)), store, { warn: (m) => warnings.push(m) });
  assert.equal(await up.pushRecord({ ...record, outs: [dir] }), true, warnings.join('\n'));
  up.close();
  // The local pack went as it is (same name), beside every object on its own.
  const { pack } = packOf(cacheDir, dir);
  const packName = pack.slice(pack.lastIndexOf('/') + 1);
  assert.deepEqual(readFileSync(join(second, 'cas', packName)), readFileSync(pack));
  const { store: third, dir: thirdDir } = await pulled(second);
  const target = tempDir('runner-store-packs-h-');
  await third.restore(target, thirdDir);
  assertSameOut(workspace, target);
  // And object by object, without the pack: every small object was sent from its range of the pack.
  rmSync(join(second, 'cas', packName));
  const { store: fourth, dir: fourthDir, warnings: fourthWarnings } = await pulled(second);
  assert.match(fourthWarnings.join('\n'), /is missing; \d+ of its objects fetched one by one/);
  const target2 = tempDir('runner-store-packs-i-');
  await fourth.restore(target2, fourthDir);
  assertSameOut(workspace, target2);
});

test('a large folder restores on two threads: the same bytes, and a wrong byte in the worker\'s half is caught', { skip: availableParallelism() < 2 ? 'one core: the restore takes no worker' : false }, async () => {
  const { workspace, remote } = await pushedFolder(PARALLEL_RESTORE_MIN + 10);
  const { store, dir, cacheDir } = await pulled(remote);
  const target = tempDir('runner-store-packs-j-');
  await store.restore(target, dir);
  assert.equal(store.workerRestores, 1, 'half of the files went to a worker');
  assertSameOut(workspace, target);

  // The last small file is in the worker's half: alter its bytes inside the pack.
  const { pack } = packOf(cacheDir, dir);
  const bytes = readFileSync(pack);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
  chmodSync(pack, 0o644);
  writeFileSync(pack, bytes);
  const again = new Store(cacheDir);
  const target2 = tempDir('runner-store-packs-k-');
  await assert.rejects(again.restore(target2, dir), (error: unknown) => error instanceof DamagedObjectError && /pack .* of out\/.* is damaged \(the bytes it holds/.test(error.message));
  assert.equal(again.workerRestores, 1);
  assert.deepEqual(readdirSync(target2), [], 'nothing of the half-built folder is left');
  assert.equal(existsSync(pack), false);
});

test('a packs folder that is a symlink is never read, written or emptied through', async () => {
  const { remote } = await pushedFolder();
  const { dir, cacheDir } = await pulled(remote);
  const packsDir = join(cacheDir, 'packs');
  // The folder moved elsewhere and a link left in its place (a planted link to someone else's files).
  const elsewhere = tempDir('runner-store-packs-elsewhere-');
  for (const name of readdirSync(packsDir)) writeFileSync(join(elsewhere, name), readFileSync(join(packsDir, name)));
  writeFileSync(join(elsewhere, 'someone-elses.json'), '{}');
  rmSync(packsDir, { recursive: true });
  symlinkSync(elsewhere, packsDir);
  const warnings: string[] = [];
  const store = new Store(cacheDir, { warn: (m) => warnings.push(m) });
  assert.equal(store.has(dir), false, 'indexes behind a link are not read');
  await store.gc([dir.hash]);
  assert.equal(lstatSync(packsDir, { throwIfNoEntry: false }), undefined, 'gc removed the link');
  assert.deepEqual(readdirSync(elsewhere).sort(), [`${dir.hash}.json`, 'someone-elses.json'].sort(), 'and deleted nothing behind it');
  assert.match(warnings.join('\n'), /a symlink or file where the cache keeps its pack indexes/);
});
