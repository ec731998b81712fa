// The remote's transfer rules against an in-process HTTP cache that misbehaves on request: retries, timeouts,
// truncated, altered and reset responses, validation of what comes back, ordering and no re-sending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { HttpBackend } from '../../cache/remote/http.js';
import { acKey, RemoteTransfer } from '../../cache/remote/transfer.js';
import { manifestText, sha256 } from '../../cache/hash.js';
import { Store } from '../../cache/store.js';
import type { ContentHash, ManifestEntry, RunRecord, StageKey } from '../../cache/types.js';
import { tempDir, transferHarness, type TransferHarness } from './remote-helpers.js';

const KEY = sha256('a stage key') as string as StageKey;

/** A workspace with a directory out (three files and a symlink) and a file out, saved in its store. */
async function producer(): Promise<{ store: Store; record: RunRecord; workspace: string }> {
  const workspace = tempDir('runner-remote-ws-');
  mkdirSync(join(workspace, 'out/sub'), { recursive: true });
  writeFileSync(join(workspace, 'out/a.txt'), 'alpha\n');
  writeFileSync(join(workspace, 'out/sub/b.txt'), 'beta\n');
  writeFileSync(join(workspace, 'out/c.bin'), Buffer.alloc(100_000, 7));
  symlinkSync('a.txt', join(workspace, 'out/link'));
  writeFileSync(join(workspace, 'one.txt'), 'one\n');
  const store = new Store(join(workspace, '.runner/cache'));
  const outs = [await store.save(workspace, 'out'), await store.save(workspace, 'one.txt')];
  const record: RunRecord = { key: KEY, cmd: 'make', deps: [], params: {}, outs, durationMs: 5, createdAt: new Date().toISOString() };
  return { store, record, workspace };
}

function consumerStore(): Store {
  return new Store(join(tempDir('runner-remote-b-'), 'cache'));
}

type Harness = TransferHarness;

const harness = (): Promise<Harness> => transferHarness(300);

async function pushed(h: Harness): Promise<RunRecord> {
  const { store, record } = await producer();
  const t = h.transfer(store);
  assert.equal(await t.pushRecord(record), true, h.warnings.join('\n'));
  t.close();
  return record;
}

test('push then fetch: every object arrives, is re-hashed into the store, and restores byte for byte', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { store, record, workspace } = await producer();
  const up = h.transfer(store);
  assert.equal(await up.pushRecord(record), true);
  up.close();
  // Blobs first, the directory manifest after its files, the record last.
  const puts = h.server.log.filter((r) => r.method === 'PUT').map((r) => r.path);
  assert.equal(puts.at(-1), acKey(KEY));
  const dirOut = record.outs.find((o) => o.isDir)!;
  assert.equal(puts.at(-2), `cas/${dirOut.hash}`);
  assert.equal(puts.length, 1 + 1 + 5); // record, manifest, a.txt, b.txt, c.bin, the link's target, one.txt

  const local = consumerStore();
  const down = h.transfer(local);
  const fetched = await down.fetchRecord(KEY, ['out', 'one.txt']);
  assert.deepEqual(fetched, record);
  assert.equal(down.stats.hits, 1);
  const target = tempDir('runner-remote-restore-');
  for (const out of fetched!.outs) await local.restore(target, out);
  for (const file of ['out/a.txt', 'out/sub/b.txt', 'out/c.bin', 'one.txt']) assert.deepEqual(readFileSync(join(target, file)), readFileSync(join(workspace, file)));
  assert.deepEqual(readdirSync(local.tmpDir), [], 'no temp file is left behind');
  down.close();
});

test('a second push of what the remote has sends no PUT (HEAD only), and a fetch of what the store has sends nothing', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { store, record } = await producer();
  const first = h.transfer(store);
  await first.pushRecord(record);
  first.close();
  const puts = h.server.count('PUT');
  const again = h.transfer(store);
  assert.equal(await again.pushRecord(record), true);
  again.close();
  assert.equal(h.server.count('PUT'), puts);
  assert.equal(again.stats.uploadedObjects, 0);
  const gets = h.server.count('GET');
  const local = h.transfer(store);
  assert.equal(await local.fetchOuts(record.outs), true);
  assert.equal(h.server.count('GET'), gets);
});

test('500s and connection resets are retried with backoff; the transfer succeeds', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const record = await pushed(h);
  const tries = new Map<string, number>();
  h.server.fault = (req) => {
    const n = (tries.get(req.url!) ?? 0) + 1;
    tries.set(req.url!, n);
    return n === 1 ? 'status500' : n === 2 ? 'reset' : undefined;
  };
  const down = h.transfer(consumerStore());
  assert.deepEqual(await down.fetchRecord(KEY, ['out', 'one.txt']), record);
  assert.equal(down.stats.errors, 0, h.warnings.join('\n'));
  down.close();
});

test('a truncated body is retried and never enters the store', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const record = await pushed(h);
  const big = `/cas/${sha256(Buffer.alloc(100_000, 7))}`;
  h.server.fault = (req) => (req.url === big && req.method === 'GET' ? 'truncate' : undefined);
  const local = consumerStore();
  const down = h.transfer(local);
  assert.equal(await down.fetchRecord(KEY, record.outs.map((o) => o.path)), undefined);
  assert.equal(down.stats.misses, 1);
  assert.equal(h.server.log.filter((r) => `/${r.path}` === big && r.method === 'GET').length, 3, 'three tries');
  assert.ok(h.warnings.some((w) => w.includes(big.slice(1))), h.warnings.join('\n'));
  assert.equal(existsSync(local.objectPath(big.slice(5) as ContentHash)), false);
  assert.deepEqual(readdirSync(local.tmpDir), []);
  down.close();
});

test('an altered object is a warning naming it, is not restored, and a later push sends it again', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { store, record, workspace } = await producer();
  const up = h.transfer(store);
  await up.pushRecord(record);
  up.close();
  const victim = `cas/${sha256('beta\n')}`;
  h.server.objects.set(victim, Buffer.from('BETA\n'));
  const local = consumerStore();
  const down = h.transfer(local);
  assert.equal(await down.fetchRecord(KEY, ['out', 'one.txt']), undefined);
  assert.ok(h.warnings.some((w) => w.includes(victim) && w.includes('corrupt')), h.warnings.join('\n'));
  assert.equal(local.has(record.outs.find((o) => o.isDir)!), false, 'the directory is not complete in the store');
  // The stage then runs (here: its outs are saved from the producer's workspace) and the run pushes: the object
  // HEAD calls present is sent again, since this process saw it corrupt, and so is the record the remote has.
  for (const out of record.outs) await local.save(workspace, out.path);
  const puts = h.server.count('PUT');
  assert.equal(await down.pushRecord(record), true, h.warnings.join('\n'));
  assert.equal(h.server.log.at(-1)!.path, acKey(KEY), 'the record last');
  assert.equal(h.server.count('PUT'), puts + 2, 'the corrupt object and the record, nothing else');
  assert.equal(h.server.objects.get(victim)!.toString(), 'beta\n');
  down.close();
});

test('an altered body in transit (wrong bytes, right length) is caught by the hash', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  await pushed(h);
  h.server.fault = (req) => (req.method === 'GET' && req.url!.startsWith('/cas/') ? 'alter' : undefined);
  const down = h.transfer(consumerStore());
  assert.equal(await down.fetchRecord(KEY, ['out', 'one.txt']), undefined);
  assert.ok(h.warnings.some((w) => /corrupt/.test(w)));
  down.close();
});

test('a server that never answers times out; a remote that keeps failing is given up on, and nothing throws', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const record = await pushed(h);
  h.server.fault = () => 'slow';
  const down = h.transfer(consumerStore(), { attempts: 1, downAfter: 2 });
  assert.equal(await down.fetchRecord(KEY, ['out', 'one.txt']), undefined);
  assert.ok(h.warnings.some((w) => /no response for 300 ms/.test(w)), h.warnings.join('\n'));
  h.server.fault = () => 'status500';
  assert.equal(await down.fetchRecord(KEY, ['out', 'one.txt']), undefined);
  assert.ok(h.warnings.some((w) => /going on without the remote/.test(w)), h.warnings.join('\n'));
  const requests = h.server.log.length;
  assert.equal(await down.fetchRecord(KEY, ['out', 'one.txt']), undefined);
  assert.equal(await down.pushRecord(record), false);
  assert.equal(h.server.log.length, requests, 'a remote taken as down gets no more requests');
  down.close();
});

test('a record that is not for this stage, not JSON, or names paths outside the workspace is a miss with a warning', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const record = await pushed(h);
  const bad: [string, unknown][] = [
    ['not JSON', 'garbage{'],
    ['other key', { ...record, key: sha256('other') }],
    ['climbing out', { ...record, outs: [{ ...record.outs[0]!, path: '../etc' }, record.outs[1]] }],
    ['absolute', { ...record, outs: [{ ...record.outs[0]!, path: '/etc' }, record.outs[1]] }],
    ['other outs', { ...record, outs: [record.outs[1]] }],
  ];
  for (const [why, value] of bad) {
    h.server.objects.set(acKey(KEY), Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));
    h.warnings.length = 0;
    const down = h.transfer(consumerStore());
    assert.equal(await down.fetchRecord(KEY, ['out', 'one.txt']), undefined, why);
    assert.ok(h.warnings.some((w) => w.includes(acKey(KEY)) && w.includes('unusable')), `${why}: ${h.warnings.join('\n')}`);
    down.close();
  }
});

/** Puts a directory out whose manifest is `entries` (objects: `files`) on the server, and its record. */
function plantDir(h: Harness, entries: ManifestEntry[], files: Record<string, string>): void {
  const text = manifestText(entries);
  const dirHash = sha256(text);
  h.server.objects.set(`cas/${dirHash}`, Buffer.from(text));
  for (const body of Object.values(files)) h.server.objects.set(`cas/${sha256(body)}`, Buffer.from(body));
  const record: RunRecord = { key: KEY, cmd: 'x', deps: [], params: {}, outs: [{ path: 'out', hash: dirHash, size: 1, isDir: true }], durationMs: 1, createdAt: 'now' };
  h.server.objects.set(acKey(KEY), Buffer.from(JSON.stringify(record)));
}

test('a manifest with paths that climb out, absolute paths, entries below a symlink, or a symlink out of its directory is refused', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const file = (path: string, body: string, symlink = false): ManifestEntry => ({ path, hash: sha256(body), size: body.length, ...(symlink ? { symlink: true as const } : {}) });
  const cases: [string, ManifestEntry[], Record<string, string>][] = [
    ['dot-dot', [file('../evil', 'x')], { x: 'x' }],
    ['absolute', [file('/tmp/evil', 'x')], { x: 'x' }],
    ['below a symlink', [file('link', 'elsewhere', true), file('link/f', 'x')], { l: 'elsewhere', x: 'x' }],
    ['symlink escaping', [file('link', '../../etc', true)], { l: '../../etc' }],
    ['absolute symlink', [file('link', '/etc', true)], { l: '/etc' }],
  ];
  for (const [why, entries, files] of cases) {
    plantDir(h, entries, files);
    h.warnings.length = 0;
    const local = consumerStore();
    const down = h.transfer(local);
    assert.equal(await down.fetchRecord(KEY, ['out']), undefined, why);
    assert.ok(h.warnings.some((w) => w.includes('unusable')), `${why}: ${h.warnings.join('\n')}`);
    down.close();
  }
  // The same shape with safe paths is accepted (the refusals above are about the paths, not the shape).
  plantDir(h, [file('dir/f', 'x'), file('link', 'dir/f', true)], { x: 'x', l: 'dir/f' });
  const ok = h.transfer(consumerStore());
  assert.notEqual(await ok.fetchRecord(KEY, ['out']), undefined, h.warnings.join('\n'));
  ok.close();
});

test('credentials go in the Authorization header only, never in a warning or the summary', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const { store, record } = await producer();
  const withUser = h.server.url.replace('http://', 'http://alice:s3cret@');
  const up = h.transfer(store, {}, withUser);
  await up.pushRecord(record);
  up.close();
  assert.ok(h.server.log.every((r) => r.auth === `Basic ${Buffer.from('alice:s3cret').toString('base64')}`));
  h.server.fault = () => 'status500';
  const down = h.transfer(consumerStore(), { attempts: 1 }, withUser);
  await down.fetchRecord(KEY, ['out', 'one.txt']);
  assert.ok(h.warnings.length > 0);
  for (const text of [...h.warnings, down.summary()]) assert.doesNotMatch(text, /s3cret|alice/);
  down.close();

  const bearer = new RemoteTransfer(new HttpBackend(new URL(h.server.url), { timeoutMs: 300, connections: 2, env: { RUNNER_REMOTE_TOKEN: 'tok-123' } }), consumerStore(), { attempts: 1, warn: () => {} });
  h.server.fault = () => undefined;
  await bearer.fetchRecord(KEY, ['out', 'one.txt']);
  assert.equal(h.server.log.at(-1)!.auth, 'Bearer tok-123');
  bearer.close();
});

test('files with the same content are downloaded once', async (t) => {
  const h = await harness();
  t.after(() => h.server.stop());
  const same = (path: string): ManifestEntry => ({ path, hash: sha256('same\n'), size: 5 });
  plantDir(h, [same('a.txt'), same('b.txt'), same('c/d.txt')], { s: 'same\n' });
  const local = consumerStore();
  const down = h.transfer(local);
  const record = await down.fetchRecord(KEY, ['out']);
  assert.notEqual(record, undefined, h.warnings.join('\n'));
  assert.equal(h.server.log.filter((r) => r.method === 'GET' && r.path === `cas/${sha256('same\n')}`).length, 1);
  const target = tempDir('runner-remote-same-');
  await local.restore(target, record!.outs[0]!);
  assert.equal(readFileSync(join(target, 'out/c/d.txt'), 'utf8'), 'same\n');
  down.close();
});
