// `runner run --remote` restoring a folder while its pack streams in, as `runner pull` does (one code path:
// cache/remote/restore-outs.ts): on a fresh workspace the stage is restored, not run, its files identical and
// its tree remembered by the stat cache; files appear in the restore's temp while the pack is still coming
// (the old path wrote nothing into the workspace before the whole download was stored); a kill -9 in the
// middle of the stream leaves a temp the next run sweeps, and that run restores the folder whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FaultServer, runCliAsync, spawnCliProcess } from '../cache/remote-helpers.js';
import { makeWorkspace, runs } from './helpers.js';
import { assertRemembered, FILES, packOf, PIPELINE, restoreTemps, sameFolder } from './streamed-folder.js';

/** A workspace A that ran and pushed, and a fresh workspace B of the same pipeline (no lock file, no cache). */
async function pushed(server: FaultServer): Promise<{ a: string; b: string }> {
  const a = makeWorkspace({ 'pipeline.yaml': PIPELINE });
  const ran = await runCliAsync(a, ['run', 'pipeline.yaml', '--remote', server.url, '--push']);
  assert.equal(ran.status, 0, ran.stderr);
  assert.deepEqual(runs(a), ['many']);
  return { a, b: makeWorkspace({ 'pipeline.yaml': PIPELINE }) };
}

test('run --remote on a fresh workspace restores a packed folder from its stream: identical files, no run, the next status reads none of them', async (t) => {
  const server = new FaultServer();
  await server.start();
  t.after(() => server.stop());
  const { a, b } = await pushed(server);
  const ran = await runCliAsync(b, ['run', 'pipeline.yaml', '--remote', server.url]);
  assert.equal(ran.status, 0, ran.stderr);
  assert.deepEqual(runs(b), [], 'restored, not run');
  assert.match(ran.stderr + ran.stdout, /1 hit, 0 misses, 4 objects \([^)]*\) downloaded/, 'the record, the manifest, the pack index and the pack');
  assert.doesNotMatch(ran.stderr, /warning/);
  sameFolder(a, b);
  assert.deepEqual(restoreTemps(b), []);
  await assertRemembered(b);
});

test('run --remote writes the folder while its pack streams in; kill -9 then leaves a temp the next run sweeps, and that run restores it whole', async (t) => {
  const server = new FaultServer();
  await server.start();
  t.after(() => server.stop());
  const { a, b } = await pushed(server);
  const pack = packOf(server);
  // Half the pack, then nothing: files written meanwhile can only have come from the stream.
  server.fault = (req) => (req.method === 'GET' && req.url === `/${pack}` ? 'stall' : undefined);
  const seen = server.log.length;
  const child = spawnCliProcess(b, ['run', 'pipeline.yaml', '--remote', server.url]);
  const exited = once(child, 'exit');
  const until = Date.now() + 60_000;
  const written = (): number => restoreTemps(b).reduce((n, temp) => n + (readdirSync(join(b, temp), { recursive: true }) as string[]).length, 0);
  while (written() < FILES / 4 && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  assert.ok(written() >= FILES / 4, `files written into the temp while the pack streams: ${written()}`);
  // Still in the pack's stream: no fallback to single objects (a stalled pack that timed out would give one).
  assert.equal(server.log.slice(seen).filter((r) => r.method === 'GET').length, 4, 'the record, the manifest, the pack index and the pack: nothing else yet');
  child.kill('SIGKILL');
  await exited;
  assert.equal(restoreTemps(b).length, 1, 'the killed run left its temp');
  assert.equal(existsSync(join(b, 'big')), false, 'and nothing in the folder\'s place');

  server.fault = () => undefined;
  const again = await runCliAsync(b, ['run', 'pipeline.yaml', '--remote', server.url]);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(runs(b), [], 'restored, not run');
  assert.deepEqual(restoreTemps(b), [], 'the temp was swept');
  assert.deepEqual(readdirSync(join(b, '.runner/tmp/restoring')), [], 'and the dead run\'s ledger');
  sameFolder(a, b);
});
