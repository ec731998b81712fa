// Packs (cache/remote/pack.ts) against an in-process HTTP cache that misbehaves on request: a pull of a folder
// of many small files is a handful of GETs; a pack or index that is missing, altered, cut short or malformed
// costs per-object GETs and a warning, never a wrong byte; gc --remote keeps a pack as long as its record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileBackend } from '../../cache/remote/file.js';
import { collectRemote } from '../../cache/remote/gc.js';
import { PACK_MIN_OBJECTS, PACK_OBJECT_MAX_BYTES, packIndexKey, packMembers, splitPack, type PackIndex } from '../../cache/pack.js';
import { acKey, RemoteTransfer } from '../../cache/remote/transfer.js';
import { parseManifest } from '../../cache/manifest.js';
import { sha256 } from '../../cache/hash.js';
import { Store } from '../../cache/store.js';
import type { ContentHash, PathHash, RunRecord, StageKey } from '../../cache/types.js';
import { tempDir, transferHarness, type TransferHarness } from './remote-helpers.js';

const KEY = sha256('a stage with a big folder') as string as StageKey;

const body = (i: number): string => `file ${i}\n`;

/**
 * A workspace whose out `out/` holds `files` small files (f0..), an empty file, two files with one content, a
 * symlink and one file larger than a pack takes; saved in its store.
 */
async function producer(files: number, change = ''): Promise<{ store: Store; record: RunRecord; workspace: string; dir: PathHash }> {
  const workspace = tempDir('runner-pack-ws-');
  mkdirSync(join(workspace, 'out/sub'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(workspace, `out/sub/f${i}.txt`), i % 2 === 0 && change ? `${change}${body(i)}` : body(i));
  writeFileSync(join(workspace, 'out/empty'), '');
  writeFileSync(join(workspace, 'out/same-1'), 'same\n');
  writeFileSync(join(workspace, 'out/same-2'), 'same\n');
  writeFileSync(join(workspace, 'out/big.bin'), Buffer.alloc(PACK_OBJECT_MAX_BYTES + 1, 3));
  symlinkSync('sub/f0.txt', join(workspace, 'out/link'));
  const store = new Store(join(workspace, '.runner/cache'));
  const dir = await store.save(workspace, 'out');
  const record: RunRecord = { key: KEY, cmd: 'make', deps: [], params: {}, outs: [dir], durationMs: 5, createdAt: new Date().toISOString() };
  return { store, record, workspace, dir };
}

type Harness = TransferHarness;

const harness = (): Promise<Harness> => transferHarness(2000);

/** A push from the process that found the pack bad sends the pack and its index again, and nothing else. */
async function assertPushRepairs(h: Harness, transfer: RemoteTransfer, record: RunRecord, pack: string, dir: PathHash, bytes: Buffer): Promise<void> {
  const puts = h.server.count('PUT');
  assert.equal(await transfer.pushRecord(record), true, h.warnings.join('\n'));
  assert.deepEqual(h.server.log.filter((r) => r.method === 'PUT').slice(puts).map((r) => r.path), [pack, packIndexKey(dir.hash)]);
  assert.deepEqual(h.server.objects.get(pack), bytes);
}

/** Pushes the producer's record; the pack's name and its index. */
async function pushed(h: Harness, files = 250): Promise<{ record: RunRecord; workspace: string; dir: PathHash; pack: string; index: PackIndex }> {
  const { store, record, workspace, dir } = await producer(files);
  const up = h.transfer(store);
  assert.equal(await up.pushRecord(record), true, h.warnings.join('\n'));
  up.close();
  const index = JSON.parse(h.server.objects.get(packIndexKey(dir.hash))!.toString()) as PackIndex;
  return { record, workspace, dir, pack: `cas/${index.pack}`, index };
}

/** Fetches the record into a fresh store and restores it; the restored folder. */
async function pullInto(h: Harness, store = new Store(join(tempDir('runner-pack-b-'), 'cache'))): Promise<{ target: string; transfer: RemoteTransfer; store: Store }> {
  const down = h.transfer(store);
  const record = await down.fetchRecord(KEY, ['out']);
  assert.notEqual(record, undefined, h.warnings.join('\n'));
  const target = tempDir('runner-pack-restore-');
  await store.restore(target, record!.outs[0]!);
  assert.deepEqual(readdirSync(store.tmpDir), [], 'no temp file is left behind');
  return { target, transfer: down, store };
}

function assertSameTree(a: string, b: string, files: number): void {
  for (let i = 0; i < files; i++) assert.deepEqual(readFileSync(join(b, `out/sub/f${i}.txt`)), readFileSync(join(a, `out/sub/f${i}.txt`)), `f${i}`);
  for (const name of ['empty', 'same-1', 'same-2', 'big.bin', 'link']) assert.deepEqual(readFileSync(join(b, 'out', name)), readFileSync(join(a, 'out', name)), name);
}

test('a push uploads the objects, the manifest, the pack, its index and the record last; a pull is a handful of GETs', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { record, workspace, dir, pack, index } = await pushed(h);
  const puts = h.server.log.filter((r) => r.method === 'PUT').map((r) => r.path);
  assert.deepEqual(puts.slice(-4), [`cas/${dir.hash}`, pack, packIndexKey(dir.hash), acKey(KEY)]);
  // 250 files, the empty one, one shared content, the link's target text, the big one; then the four above.
  assert.equal(puts.length, 250 + 4 + 4);
  const members = packMembers(parseManifest(h.server.objects.get(`cas/${dir.hash}`)!.toString()), PACK_OBJECT_MAX_BYTES);
  assert.deepEqual(index, { format: 'runner-pack', version: 1, manifest: dir.hash, pack: index.pack, size: members.reduce((n, m) => n + m.size, 0), objectMaxBytes: PACK_OBJECT_MAX_BYTES });
  assert.equal(sha256(h.server.objects.get(pack)!), index.pack);
  assert.equal(members.length, 253, 'every distinct small object once; the big one is not in the pack');

  const requests = h.server.log.length;
  const { target, transfer } = await pullInto(h);
  assert.deepEqual(h.server.log.slice(requests).map((r) => `${r.method} ${r.path}`).sort(),
    [`GET ${acKey(KEY)}`, `GET cas/${dir.hash}`, `GET ${packIndexKey(dir.hash)}`, `GET ${pack}`, `GET cas/${sha256(Buffer.alloc(PACK_OBJECT_MAX_BYTES + 1, 3))}`].sort());
  assertSameTree(workspace, target, 250);
  assert.equal(transfer.stats.errors, 0, h.warnings.join('\n'));
  assert.equal(transfer.stats.downloadedObjects, 5, 'the record, the manifest, the index, the pack and the big object');
  assert.match(transfer.summary(), /5 objects \(1\.\d MB\) downloaded/);
  transfer.close();
  // A second push of the same record sends nothing.
  const again = h.transfer((await producer(250)).store);
  const before = h.server.count('PUT');
  assert.equal(await again.pushRecord(record), true);
  assert.equal(h.server.count('PUT'), before);
  again.close();
});

test('a pull skips the bytes of objects the store has and writes only the missing ones from the pack', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  // The store already holds version 1 of the folder; version 2 changes half of its files.
  const first = await pushed(h);
  const { store } = await pullInto(h);
  const second = await producer(250, 'v2 ');
  h.server.objects.clear();
  const up = h.transfer(second.store);
  assert.equal(await up.pushRecord(second.record), true, h.warnings.join('\n'));
  up.close();
  const requests = h.server.log.length;
  const { target, transfer } = await pullInto(h, store);
  assert.equal(h.server.log.slice(requests).filter((r) => r.method === 'GET').length, 4, 'record, manifest, index, pack');
  assertSameTree(second.workspace, target, 250);
  assert.equal(transfer.stats.errors, 0, h.warnings.join('\n'));
  assert.notEqual(first.pack, `cas/${(JSON.parse(h.server.objects.get(packIndexKey(second.dir.hash))!.toString()) as PackIndex).pack}`);
  transfer.close();
});

test('a pack the remote lacks: every object fetched on its own, one warning naming the pack, and a push sends it again', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { record, workspace, pack, dir } = await pushed(h);
  const bytes = h.server.objects.get(pack)!;
  h.server.objects.delete(pack);
  const requests = h.server.log.length;
  const { target, transfer } = await pullInto(h);
  assertSameTree(workspace, target, 250);
  assert.ok(h.server.log.slice(requests).filter((r) => r.method === 'GET').length > 250, 'per-object GETs');
  assert.equal(h.warnings.length, 1, h.warnings.join('\n'));
  assert.match(h.warnings[0]!, new RegExp(`pack ${pack} of out .*it is missing; 253 of its objects fetched one by one`));
  await assertPushRepairs(h, transfer, record, pack, dir, bytes);
  transfer.close();
});

test('a pack with one byte altered: that object alone is fetched on its own, the warning names the pack, a push repairs it', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { record, workspace, pack, dir } = await pushed(h);
  const good = h.server.objects.get(pack)!;
  const altered = Buffer.from(good);
  // f1.txt's bytes, found by walking the members in pack order.
  const members = packMembers(parseManifest(h.server.objects.get(`cas/${dir.hash}`)!.toString()), PACK_OBJECT_MAX_BYTES);
  const victim = sha256(body(1));
  let offset = 0;
  for (const m of members) {
    if (m.hash === victim) break;
    offset += m.size;
  }
  altered[offset] = altered[offset]! ^ 0x20;
  h.server.objects.set(pack, altered);
  const requests = h.server.log.length;
  const { target, transfer } = await pullInto(h);
  assertSameTree(workspace, target, 250);
  const gets = h.server.log.slice(requests).filter((r) => r.method === 'GET').map((r) => r.path);
  assert.equal(gets.filter((p) => p === `cas/${victim}`).length, 1, 'the altered object, fetched on its own');
  assert.equal(gets.length, 6, `record, manifest, index, pack, the big object, the altered one: ${gets.join(' ')}`);
  assert.equal(h.warnings.length, 1, h.warnings.join('\n'));
  assert.match(h.warnings[0]!, new RegExp(`pack ${pack} of out .*object cas/${victim} in it does not hash to its name; 1 of its objects fetched one by one`));
  await assertPushRepairs(h, transfer, record, pack, dir, good);
  transfer.close();
});

test('a pack cut short in transit, or with a wrong length, falls back to per-object GETs for what it did not deliver', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { workspace, pack } = await pushed(h);
  h.server.fault = (req) => (req.method === 'GET' && req.url === `/${pack}` ? 'truncate' : undefined);
  const cut = await pullInto(h);
  assertSameTree(workspace, cut.target, 250);
  assert.equal(h.warnings.length, 1, h.warnings.join('\n'));
  assert.match(h.warnings[0]!, new RegExp(`pack ${pack} of out .*the pack (stream broke|ended) after member \\d+`));
  const fallbacks = Number(/(\d+) of its objects fetched one by one/.exec(h.warnings[0]!)![1]);
  assert.ok(fallbacks > 0 && fallbacks < 253, `only what the pack did not deliver: ${fallbacks}`);
  cut.transfer.close();

  h.server.fault = () => undefined;
  h.warnings.length = 0;
  h.server.objects.set(pack, Buffer.concat([h.server.objects.get(pack)!, Buffer.from('more')]));
  const longer = await pullInto(h);
  assertSameTree(workspace, longer.target, 250);
  assert.match(h.warnings.join('\n'), /it has \d+ bytes, not \d+; 253 of its objects fetched one by one/);
  longer.transfer.close();
});

test('a malformed index (wrong size, another manifest, extra fields, not JSON) is a warning naming it; objects come one by one', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { workspace, dir, index } = await pushed(h);
  const name = packIndexKey(dir.hash);
  const cases: [string, string, RegExp][] = [
    ['wrong size', JSON.stringify({ ...index, size: index.size - 1 }), /its size \d+ is not the \d+ bytes/],
    ['another manifest', JSON.stringify({ ...index, manifest: sha256('other') }), /for another manifest/],
    ['extra field', JSON.stringify({ ...index, path: '/etc/passwd' }), /its fields are/],
    ['pack not a hash', JSON.stringify({ ...index, pack: '../../etc/passwd' }), /not a sha256 hash/],
    ['huge objectMaxBytes', JSON.stringify({ ...index, objectMaxBytes: 2 ** 40 }), /objectMaxBytes/],
    ['not JSON', 'garbage{', /not JSON/],
  ];
  for (const [why, text, reason] of cases) {
    h.server.objects.set(name, Buffer.from(text));
    h.warnings.length = 0;
    const requests = h.server.log.length;
    const { target, transfer } = await pullInto(h);
    assertSameTree(workspace, target, 250);
    assert.equal(h.warnings.length, 1, `${why}: ${h.warnings.join('\n')}`);
    assert.match(h.warnings[0]!, new RegExp(`pack index ${name} of out is unusable: .*; fetching its objects one by one`), why);
    assert.match(h.warnings[0]!, reason, why);
    assert.ok(h.server.log.slice(requests).filter((r) => r.method === 'GET').length > 250, why);
    assert.equal(h.server.log.slice(requests).some((r) => r.path === `cas/${index.pack}`), false, `${why}: the pack is not read`);
    transfer.close();
  }
});

test('an index the remote lacks (a remote written without packs) is no warning: the objects come one by one', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { workspace, dir } = await pushed(h);
  h.server.objects.delete(packIndexKey(dir.hash));
  const { target, transfer } = await pullInto(h);
  assertSameTree(workspace, target, 250);
  assert.equal(transfer.stats.errors, 0, h.warnings.join('\n'));
  transfer.close();
});

test('a folder with fewer small objects than PACK_MIN_OBJECTS gets no pack', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  // f0..fN plus the empty file, the shared content and the link's target: PACK_MIN_OBJECTS - 1 small objects.
  const { store, record, dir } = await producer(PACK_MIN_OBJECTS - 4);
  const up = h.transfer(store);
  assert.equal(await up.pushRecord(record), true, h.warnings.join('\n'));
  up.close();
  assert.equal(h.server.objects.has(packIndexKey(dir.hash)), false);
  assert.equal([...h.server.objects.keys()].filter((k) => k.startsWith('ac/')).length, 1, 'the record only');
  const more = await producer(PACK_MIN_OBJECTS - 3);
  const up2 = h.transfer(more.store);
  assert.equal(await up2.pushRecord({ ...more.record, key: sha256('another stage') as string as StageKey }), true, h.warnings.join('\n'));
  up2.close();
  assert.equal(h.server.objects.has(packIndexKey(more.dir.hash)), true, 'PACK_MIN_OBJECTS distinct small objects: a pack');
});

test('splitPack cuts a stream at any chunk boundary, delivers empty members, and refuses a stream too long or too short', async () => {
  const members = [{ hash: sha256('ab') , size: 2 }, { hash: sha256('') , size: 0 }, { hash: sha256('cdefg'), size: 5 }] as { hash: ContentHash; size: number }[];
  const whole = Buffer.from('abcdefg');
  for (const cuts of [[7], [1, 6], [2, 5], [3, 1, 3], [1, 1, 1, 1, 1, 1, 1]]) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (const n of cuts) chunks.push(whole.subarray(at, (at += n)));
    const got: string[] = [];
    const digest = await splitPack((async function* () { yield* chunks; })(), members, (_m, bytes) => got.push(bytes.toString()));
    assert.deepEqual(got, ['ab', '', 'cdefg'], cuts.join(','));
    assert.equal(digest, sha256(whole));
  }
  await assert.rejects(splitPack((async function* () { yield Buffer.from('abcdefgh'); })(), members, () => {}), /longer than its 3 members/);
  await assert.rejects(splitPack((async function* () { yield Buffer.from('abcd'); })(), members, () => {}), /ended after 2 of its 3 members/);
});

test('gc --remote (file://) keeps a live record\'s pack and index, drops malformed and stray indexes, and drops a pack with its record; dry run removes nothing', async () => {
  const root = tempDir('runner-pack-gc-');
  const backend = new FileBackend(pathToFileURL(root));
  const { store, record, dir } = await producer(100);
  const up = new RemoteTransfer(backend, store, { warn: (m) => assert.fail(m) });
  assert.equal(await up.pushRecord(record), true);
  const indexName = packIndexKey(dir.hash);
  const index = JSON.parse(readFileSync(join(root, indexName), 'utf8')) as PackIndex;
  // An index that is not JSON-shaped right, and a well-formed one for a manifest no record names.
  const malformed = packIndexKey(sha256('malformed') as ContentHash);
  writeFileSync(join(root, malformed), JSON.stringify({ ...index, size: 'big' }));
  const strayManifest = sha256('a manifest nobody names') as ContentHash;
  const stray = packIndexKey(strayManifest);
  writeFileSync(join(root, stray), JSON.stringify({ ...index, manifest: strayManifest }));
  const listing = (): string[] => ['ac', 'cas'].flatMap((d) => readdirSync(join(root, d)).map((n) => `${d}/${n}`)).sort();
  const before = listing();
  const later = Date.now() + 2 * 3600_000;

  const dry = await collectRemote(backend, { dryRun: true, now: later });
  assert.equal(dry.records, 1);
  assert.equal(dry.packIndexes, 3);
  assert.deepEqual([...dry.deadPackIndexes].sort(), [malformed, stray].sort());
  assert.deepEqual(dry.orphans, []);
  assert.deepEqual(listing(), before, 'a dry run removes nothing');

  const real = await collectRemote(backend, { dryRun: false, now: later });
  assert.deepEqual([...real.deadPackIndexes].sort(), [malformed, stray].sort());
  assert.deepEqual(listing(), before.filter((k) => k !== malformed && k !== stray));
  assert.ok(existsSync(join(root, indexName)) && existsSync(join(root, 'cas', index.pack)), 'the live pack and its index stay');

  // Without its record, the index is garbage and its pack an orphan like the objects.
  rmSync(join(root, acKey(KEY)));
  const gone = await collectRemote(backend, { dryRun: false, now: later });
  assert.deepEqual(gone.deadPackIndexes, [indexName]);
  assert.ok(gone.orphans.some((o) => o.key === `cas/${index.pack}`));
  assert.deepEqual(listing(), []);
  up.close();
});

test('a pack index the server refuses is a warning; the record is pushed all the same and a pull goes object by object', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { store, record, workspace, dir } = await producer(100);
  h.server.fault = (req) => (req.method === 'PUT' && req.url === `/${packIndexKey(dir.hash)}` ? 'status500' : undefined);
  const up = h.transfer(store, { attempts: 1 });
  assert.equal(await up.pushRecord(record), true);
  assert.equal(up.stats.errors, 1);
  assert.match(h.warnings.join('\n'), new RegExp(`PUT .*${packIndexKey(dir.hash)}: HTTP 500`));
  assert.equal(h.server.log.at(-1)!.path, acKey(KEY), 'the record, last');
  up.close();
  h.server.fault = () => undefined;
  h.warnings.length = 0;
  const { target, transfer } = await pullInto(h);
  assertSameTree(workspace, target, 100);
  assert.equal(transfer.stats.errors, 0, h.warnings.join('\n'));
  transfer.close();
});

test('two outs with the same files, pulled at once, read the pack once', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { store, workspace, dir } = await producer(100);
  const copy = join(workspace, 'copy');
  mkdirSync(copy);
  for (let i = 0; i < 100; i++) writeFileSync(join(copy, `g${i}.txt`), body(i));
  const copyOut = await store.save(workspace, 'copy');
  const record: RunRecord = { key: KEY, cmd: 'make', deps: [], params: {}, outs: [dir, copyOut], durationMs: 5, createdAt: new Date().toISOString() };
  const up = h.transfer(store);
  assert.equal(await up.pushRecord(record), true, h.warnings.join('\n'));
  up.close();
  const packs = [dir, copyOut].map((o) => `cas/${(JSON.parse(h.server.objects.get(packIndexKey(o.hash))!.toString()) as PackIndex).pack}`);
  const local = new Store(join(tempDir('runner-pack-b-'), 'cache'));
  const down = h.transfer(local);
  const requests = h.server.log.length;
  assert.notEqual(await down.fetchRecord(KEY, ['out', 'copy']), undefined, h.warnings.join('\n'));
  const gets = h.server.log.slice(requests).filter((r) => r.method === 'GET').map((r) => r.path);
  assert.equal(gets.filter((p) => packs.includes(p)).length, 1, gets.join(' '));
  assert.ok(gets.length < 10, gets.join(' '));
  const target = tempDir('runner-pack-restore-');
  for (const out of record.outs) await local.restore(target, out);
  for (let i = 0; i < 100; i++) assert.equal(readFileSync(join(target, `copy/g${i}.txt`), 'utf8'), body(i));
  assertSameTree(workspace, target, 100);
  assert.equal(down.stats.errors, 0, h.warnings.join('\n'));
  assert.deepEqual(readdirSync(local.tmpDir), []);
  down.close();
});
