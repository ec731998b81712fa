// A folder restored while its pack streams in (cache/streamed-restore.ts through remote/transfer.ts): the
// workspace gets exactly the files a restore from the store gives, with their stat-cache records; a pack with
// a wrong byte, or cut short, leaves nothing of the folder in the workspace and no temp, and the store then
// restores it as before.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACK_OBJECT_MAX_BYTES, packIndexKey, packMembers, type PackIndex } from '../../cache/pack.js';
import { parseManifest } from '../../cache/manifest.js';
import { sha256 } from '../../cache/hash.js';
import { Store } from '../../cache/store.js';
import { StatCache } from '../../cache/stat-cache.js';
import { STREAMED_WORKER_MIN_FILES, StreamedTree, warmRestoreWriter, type WrittenTree } from '../../cache/streamed-restore.js';
import { restoreWriterAddon, type RestoreWriterAddon } from '../../cache/restore-writer-addon.js';
import { createRequire } from 'node:module';
import { nodeIncludeDir } from '../../runner/native-addon.js';
import { RestoreSite } from '../../cache/restore-temps.js';
import { treeStats } from '../../cache/tree-stats.js';
import type { StreamRestore } from '../../cache/remote/transfer.js';
import type { ContentHash, PathHash, RunRecord, StageKey } from '../../cache/types.js';
import { tempDir, transferHarness, type TransferHarness } from './remote-helpers.js';

const KEY = sha256('a stage whose folder streams in') as string as StageKey;

const body = (i: number): string => `file ${i} ${'x'.repeat(i % 300)}\n`;

/**
 * A folder of `files` small files, an empty one, two with one content, a symlink and (`big`) one too big for
 * a pack (downloaded on its own, so just now: too young for the stat cache).
 */
async function pushed(h: TransferHarness, files: number, big = true): Promise<{ workspace: string; dir: PathHash; pack: string }> {
  const workspace = tempDir('runner-stream-a-');
  mkdirSync(join(workspace, 'out/sub/deeper'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(workspace, i % 3 ? `out/sub/f${i}.txt` : `out/sub/deeper/f${i}.txt`), body(i));
  writeFileSync(join(workspace, 'out/empty'), '');
  writeFileSync(join(workspace, 'out/same-1'), 'same\n');
  writeFileSync(join(workspace, 'out/same-2'), 'same\n');
  if (big) writeFileSync(join(workspace, 'out/big.bin'), Buffer.alloc(PACK_OBJECT_MAX_BYTES + 1, 3));
  symlinkSync('sub/f1.txt', join(workspace, 'out/link'));
  const store = new Store(join(workspace, '.runner/cache'));
  const dir = await store.save(workspace, 'out');
  const record: RunRecord = { key: KEY, cmd: 'make', deps: [], params: {}, outs: [dir], durationMs: 5, createdAt: new Date().toISOString() };
  const up = h.transfer(store);
  assert.equal(await up.pushRecord(record), true, h.warnings.join('\n'));
  up.close();
  const index = JSON.parse(h.server.objects.get(packIndexKey(dir.hash))!.toString()) as PackIndex;
  return { workspace, dir, pack: `cas/${index.pack}` };
}

/** Every path below `dir`, files with their bytes (a symlink as its target). */
function tree(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const path of readdirSync(dir, { recursive: true }) as string[]) {
    const stat = lstatSync(join(dir, path));
    if (stat.isSymbolicLink()) found.set(path, `-> ${readlinkSync(join(dir, path))}`);
    else if (stat.isFile()) found.set(path, sha256(readFileSync(join(dir, path))));
    else found.set(path, 'folder');
  }
  return found;
}

/** A pull into a fresh store that restores `out` while it streams in; the tree handed over, if any. */
async function streamedPull(h: TransferHarness): Promise<{ store: Store; workspace: string; statCache: StatCache; trees: Map<string, StreamedTree>; record: RunRecord | undefined }> {
  const workspace = tempDir('runner-stream-b-');
  const store = new Store(join(workspace, '.runner/cache'), { ledgerDir: join(workspace, '.runner/tmp/restoring') });
  const statCache = StatCache.inMemory();
  const trees = new Map<string, StreamedTree>();
  const restore: StreamRestore = { workspace, statCache, wants: () => true, arrived: (out, tree) => trees.set(out.path, tree) };
  const down = h.transfer(store);
  const record = await down.fetchRecord(KEY, ['out'], restore);
  down.close();
  return { store, workspace, statCache, trees, record };
}

/** The workspace's own entries, leaving out the runner's folder. */
const workspaceEntries = (workspace: string): string[] => readdirSync(workspace).filter((name) => name !== '.runner');

for (const files of [200, STREAMED_WORKER_MIN_FILES + 100]) {
  const how = files >= STREAMED_WORKER_MIN_FILES ? 'by a worker thread' : 'on the main thread';
  test(`a folder of ${files} files restored while its pack streams in (${how}): identical files and stat-cache records`, async (t) => {
    const h = await transferHarness(2000);
    t.after(() => h.server.stop());
    const { workspace: a, dir } = await pushed(h, files, false);
    const { store, workspace, statCache, trees, record } = await streamedPull(h);
    assert.notEqual(record, undefined, h.warnings.join('\n'));
    const streamed = trees.get('out');
    assert.ok(streamed, 'the tree was handed over');
    assert.ok(workspaceEntries(workspace).every((name) => name.startsWith('.out.restore-')), 'at most its temp before it is finished');
    await store.finishStreamedRestore(streamed, dir, statCache);
    assert.deepEqual(tree(join(workspace, 'out')), tree(join(a, 'out')));
    assert.deepEqual(workspaceEntries(workspace), ['out'], 'no temp left beside it');
    assert.deepEqual(readdirSync(store.tmpDir), [], 'no temp left in the store');
    assert.deepEqual(h.warnings, []);

    // The files carry the pack's time, as a restore from the store gives them, and their records are kept.
    const index = store.packIndexOf(dir.hash)!;
    const packTime = lstatSync(store.objectPath(index.pack)).mtimeMs;
    const root = realpathSync(join(workspace, 'out'));
    for (const name of ['sub/f1.txt', 'sub/deeper/f0.txt', 'same-2', 'empty']) {
      const stat = lstatSync(join(root, name));
      assert.equal(stat.mtimeMs, packTime, name);
      const slash = name.lastIndexOf('/');
      const folder = slash < 0 ? root : `${root}/${name.slice(0, slash)}`;
      assert.equal(statCache.lookupIn(statCache.directory(folder), name.slice(slash + 1), stat), sha256(readFileSync(join(root, name))), `${name}'s record`);
    }
    assert.equal(statCache.lookupTree(root, treeStats(root).statDigest)?.hash, dir.hash, 'the tree record matches a fresh walk');
  });
}

for (const files of [200, STREAMED_WORKER_MIN_FILES + 100]) {
  test(`a pack with a wrong byte in the middle (${files} files): nothing of the folder reaches the workspace; the store restores it from what was salvaged`, async (t) => {
    const h = await transferHarness(2000);
    t.after(() => h.server.stop());
    const { workspace: a, dir, pack } = await pushed(h, files);
    const altered = Buffer.from(h.server.objects.get(pack)!);
    const members = packMembers(parseManifest(h.server.objects.get(`cas/${dir.hash}`)!.toString()), PACK_OBJECT_MAX_BYTES);
    const victim = sha256(body(files >> 1));
    let offset = 0;
    for (const m of members) {
      if (m.hash === victim) break;
      offset += m.size;
    }
    assert.ok(offset > 0 && offset < altered.length / 2 + 1000, 'a member in the middle');
    altered[offset] = altered[offset]! ^ 0x20;
    h.server.objects.set(pack, altered);
    const { store, workspace, statCache, trees, record } = await streamedPull(h);
    assert.notEqual(record, undefined, h.warnings.join('\n'));
    assert.equal(trees.size, 0, 'no tree handed over');
    assert.deepEqual(workspaceEntries(workspace), [], 'no file and no temp in the workspace');
    assert.match(h.warnings.join('\n'), new RegExp(`object cas/${victim} in it does not hash to its name; 1 of its objects fetched one by one`));
    await store.restore(workspace, record!.outs[0]!, statCache);
    assert.deepEqual(tree(join(workspace, 'out')), tree(join(a, 'out')));
    assert.deepEqual(workspaceEntries(workspace), ['out']);
  });
}

test('a pack cut short mid-stream: nothing of the folder in the workspace, no temp; the rest comes object by object', async (t) => {
  const h = await transferHarness(2000);
  t.after(() => h.server.stop());
  const { workspace: a, pack } = await pushed(h, STREAMED_WORKER_MIN_FILES + 100);
  h.server.fault = (req) => (req.method === 'GET' && req.url === `/${pack}` ? 'truncate' : undefined);
  const { store, workspace, trees, record } = await streamedPull(h);
  assert.notEqual(record, undefined, h.warnings.join('\n'));
  assert.equal(trees.size, 0);
  assert.deepEqual(workspaceEntries(workspace), []);
  assert.match(h.warnings.join('\n'), /the pack (stream broke|ended) after member \d+/);
  await store.restore(workspace, record!.outs[0]!);
  assert.deepEqual(tree(join(workspace, 'out')), tree(join(a, 'out')));
});

test('a streamed tree discarded (the stage\'s other outs failed) leaves nothing behind, worker or not', async (t) => {
  const h = await transferHarness(2000);
  t.after(() => h.server.stop());
  await pushed(h, STREAMED_WORKER_MIN_FILES + 100);
  const { workspace, trees } = await streamedPull(h);
  await trees.get('out')!.discard();
  assert.deepEqual(workspaceEntries(workspace), []);
});

test('files written by both threads (this one writing every file whose folder the worker has made): the same tree and stats as a walk', async () => {
  // The download's thread writes files itself only when the worker is far behind; backlog 0 makes it write
  // every file whose folder is made, so the tree comes from both threads, as it can under load.
  const workspace = tempDir('runner-stream-split-');
  const entries = Array.from({ length: STREAMED_WORKER_MIN_FILES + 300 }, (_, i) => {
    const text = body(i);
    return { path: `d${i % 7}/e${i % 3}/f${i}.txt`, hash: sha256(text) as ContentHash, size: Buffer.byteLength(text), text };
  }).sort((a, b) => (a.path < b.path ? -1 : 1));
  const timeMs = Date.now() - 60_000;
  const tree = new StreamedTree(new RestoreSite(workspace, 'out', undefined), entries, timeMs, { backlogMax: 0 });
  // The first files go to the worker (no folder is made yet), the rest are written here once all are made.
  const first = 100;
  for (const entry of entries.slice(0, first)) tree.place(entry.hash, Buffer.from(entry.text));
  for (const until = Date.now() + 30_000; tree.foldersMade < 1 + 7 + 7 * 3; ) {
    assert.ok(Date.now() < until, 'the worker makes the folders');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  for (const entry of entries.slice(first)) tree.place(entry.hash, Buffer.from(entry.text));
  const written = await tree.finish();
  tree.site.commit();
  const byPath = new Map(entries.map((e, i) => [e.path, i]));
  let checked = 0;
  treeStats(join(workspace, 'out'), undefined, (dirAbs, name, stat) => {
    const rel = `${dirAbs}/${name}`.slice(join(workspace, 'out').length + 1);
    const i = byPath.get(rel)!;
    assert.equal(readFileSync(join(workspace, 'out', rel), 'utf8'), entries[i]!.text, rel);
    assert.deepEqual([...written.stats.subarray(i * 4, i * 4 + 4)], [stat.size, stat.mtimeMs, stat.ctimeMs, stat.ino], rel);
    assert.ok(Math.abs(stat.mtimeMs - timeMs) < 1, `${rel}: the time given`);
    checked++;
  });
  assert.equal(checked, entries.length);
  assert.equal(written.folders?.size, 1 + 7 + 7 * 3, 'every folder listed, the top included');
  for (const [rel, listing] of written.folders!) {
    assert.deepEqual([...listing.names].sort(), readdirSync(join(workspace, 'out', rel)).sort(), `${rel || 'the top'}: its listing is whole`);
  }
});

/** Entries of a folder large enough for the writer thread, sorted as a manifest is, with their bytes. */
function folderEntries(files: number): (ManifestEntryText)[] {
  return Array.from({ length: files }, (_, i) => {
    const text = body(i);
    return { path: `d${i % 5}/f${i}.txt`, hash: sha256(text) as ContentHash, size: Buffer.byteLength(text), text };
  }).sort((a, b) => (a.path < b.path ? -1 : 1));
}

type ManifestEntryText = { path: string; hash: ContentHash; size: number; text: string };

test('a writer started ahead of its tree (warmRestoreWriter) writes it, each file with its bytes and time', async () => {
  warmRestoreWriter();
  // Long enough for the spare to be up and idle when the tree is handed to it.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const workspace = tempDir('runner-stream-warm-');
  const entries = folderEntries(STREAMED_WORKER_MIN_FILES + 50);
  const timeMs = Date.now() - 60_000;
  const written = new StreamedTree(new RestoreSite(workspace, 'out', undefined), entries, timeMs);
  for (const entry of entries) written.place(entry.hash, Buffer.from(entry.text));
  const known = await written.finish();
  written.site.commit();
  entries.forEach((entry, i) => {
    const file = join(workspace, 'out', entry.path);
    assert.equal(readFileSync(file, 'utf8'), entry.text, entry.path);
    assert.equal(known.stats[i * 4 + 3], lstatSync(file).ino, `${entry.path}: its stats came from the writer`);
    assert.ok(Math.abs(lstatSync(file).mtimeMs - timeMs) < 1, `${entry.path}: the time given`);
  });
  assert.equal(known.folders?.size, 1 + 5);
});

test('a writer started ahead that no tree takes does not keep the process alive', () => {
  const module = fileURLToPath(new URL('../../cache/streamed-restore.ts', import.meta.url));
  const script = join(tempDir('runner-stream-spare-'), 'warm.mjs');
  writeFileSync(script, `const { warmRestoreWriter } = await import(${JSON.stringify(module)});\nwarmRestoreWriter();\nconsole.log('warmed');\n`);
  const child = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(child.error, undefined, 'the process exits by itself');
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'warmed');
});

/** Why the C writer cannot be built here (no compiler, no Node headers), or undefined: then the build made it. */
function noCompiler(): string | undefined {
  const cc = spawnSync(process.env['CC'] ?? 'cc', ['--version']);
  if (cc.error || cc.status !== 0) return 'no C compiler';
  return nodeIncludeDir() === undefined ? 'no Node headers (node_api.h)' : undefined;
}

/** A folder of odd names (space, accents, a newline, a leading dash) written by one writer; its files' stats by path. */
async function writtenBy(nativeWriter: boolean, timeMs: number): Promise<{ root: string; written: WrittenTree; entries: ManifestEntryText[] }> {
  const workspace = tempDir('runner-stream-writer-');
  const names = ['plain', 'with space', 'accentu\u00e9', 'new\nline', '-dash', '\u6587\u4ef6'];
  const entries = Array.from({ length: STREAMED_WORKER_MIN_FILES + 40 }, (_, i) => {
    const text = i % 50 === 0 ? '' : body(i);
    return { path: `d${i % 4}/${names[i % names.length]}-${i}`, hash: sha256(text) as ContentHash, size: Buffer.byteLength(text), text };
  }).sort((a, b) => (a.path < b.path ? -1 : 1));
  const tree = new StreamedTree(new RestoreSite(workspace, 'out', undefined), entries, timeMs, { nativeWriter });
  for (const entry of entries) tree.place(entry.hash, Buffer.from(entry.text));
  const written = await tree.finish();
  tree.site.commit();
  return { root: join(workspace, 'out'), written, entries };
}

test('the C writer and the JavaScript loop write the same files: bytes, mode, time, and the stats a walk sees', async (t) => {
  const why = noCompiler();
  if (why) {
    t.skip(`${why}: only the JavaScript loop can run here`);
    return;
  }
  assert.ok(restoreWriterAddon(), 'the build (npm run build) compiled the restore writer');
  const timeMs = Date.now() - 60_000;
  const byC = await writtenBy(true, timeMs);
  const byJs = await writtenBy(false, timeMs);
  assert.equal(byC.written.native, true, 'the C loop wrote');
  assert.equal(byJs.written.native, false, 'the JavaScript loop wrote');
  for (const { root, written, entries } of [byC, byJs]) {
    entries.forEach((entry, i) => {
      const file = join(root, entry.path);
      const stat = lstatSync(file);
      assert.equal(readFileSync(file, 'utf8'), entry.text, entry.path);
      assert.equal(stat.mode & 0o777, 0o644, entry.path);
      assert.deepEqual([...written.stats.subarray(i * 4, i * 4 + 4)], [stat.size, stat.mtimeMs, stat.ctimeMs, stat.ino], entry.path);
    });
  }
  // Both give every file the same time: the given one (whole ms), to futimes' microsecond.
  for (let i = 0; i < byC.entries.length; i++) {
    assert.equal(byC.written.stats[i * 4 + 1], byJs.written.stats[i * 4 + 1], byC.entries[i]!.path);
    assert.ok(Math.abs(byC.written.stats[i * 4 + 1]! - timeMs) < 0.002, `${byC.entries[i]!.path}: ${byC.written.stats[i * 4 + 1]} vs ${timeMs}`);
  }
});

test('the C writer stops at the first file it cannot create and says why (-errno)', (t) => {
  const why = noCompiler();
  if (why) {
    t.skip(`${why}: the C writer is not built here`);
    return;
  }
  const addon = createRequire(import.meta.url)(restoreWriterAddon()!) as RestoreWriterAddon;
  const dir = tempDir('runner-stream-c-');
  writeFileSync(join(dir, 'taken'), 'before');
  const out = new Float64Array(18);
  const bytes = Buffer.from('abcdefgh');
  const written = addon.writeFiles(`${dir}/`, 'first\0taken\0third\0', bytes, Int32Array.of(0, 3, 6), Int32Array.of(3, 3, 2), 1_700_000_000.25, false, out);
  assert.equal(written, -17, 'EEXIST');
  assert.equal(readFileSync(join(dir, 'first'), 'utf8'), 'abc');
  assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'before', 'an existing file is never written');
  assert.equal(existsSync(join(dir, 'third')), false, 'nothing after the failure');
  assert.equal(out[0], 3);
  assert.equal(out[1]! * 1e3 + out[2]! / 1e6, 1_700_000_000_250);
  // A range outside the buffer is refused before anything is written.
  assert.equal(addon.writeFiles(`${dir}/`, 'fourth\0', bytes, Int32Array.of(6), Int32Array.of(3), 1, false, out), -22);
  assert.equal(existsSync(join(dir, 'fourth')), false);
});
