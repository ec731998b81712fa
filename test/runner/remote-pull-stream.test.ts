// `runner pull` restoring a folder while its pack streams in, from the command line: the workspace files and
// the stat cache it leaves (the next status reads no file), and a kill -9 in the middle of the stream, whose
// temp the next pull sweeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaultServer, runCliAsync, spawnCliProcess } from '../cache/remote-helpers.js';
import { makeWorkspace } from './helpers.js';
import { assertRemembered, FILES, packOf, PIPELINE, restoreTemps, sameFolder } from './streamed-folder.js';

/** A pushed workspace A and a fresh clone B with A's lock file. */
async function cloned(server: FaultServer): Promise<{ a: string; b: string }> {
  const a = makeWorkspace({ 'pipeline.yaml': PIPELINE });
  const ran = await runCliAsync(a, ['run', 'pipeline.yaml', '--remote', server.url, '--push']);
  assert.equal(ran.status, 0, ran.stderr);
  const b = makeWorkspace({ 'pipeline.yaml': PIPELINE });
  writeFileSync(join(b, 'pipeline.lock'), readFileSync(join(a, 'pipeline.lock')));
  return { a, b };
}

test('a pulled folder is restored from its pack\'s stream: identical files, and the next status reads none of them', async (t) => {
  const server = new FaultServer();
  await server.start();
  t.after(() => server.stop());
  const { a, b } = await cloned(server);
  const pulled = await runCliAsync(b, ['pull', 'pipeline.yaml', '--remote', server.url]);
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.match(pulled.stdout, /restored 1 outs, 0 already up to date/);
  assert.match(pulled.stdout, /4 objects \([^)]*\) downloaded/, 'the record, the manifest, the pack index and the pack');
  assert.equal(pulled.stderr, '');
  sameFolder(a, b);
  assert.deepEqual(restoreTemps(b), []);
  // The folder's tree record matches a fresh walk of it: the next status reads no file of it.
  const [, contentHash] = await assertRemembered(b);
  assert.ok(readFileSync(join(b, 'pipeline.lock'), 'utf8').includes(contentHash), 'under the hash the lock file names');
});

test('kill -9 while the pack streams in leaves a temp the next pull sweeps; that pull restores the folder whole', async (t) => {
  const server = new FaultServer();
  await server.start();
  t.after(() => server.stop());
  const { a, b } = await cloned(server);
  const pack = packOf(server);
  // Half the pack, then nothing: the pull waits in the middle of the stream, its tree half written.
  server.fault = (req) => (req.method === 'GET' && req.url === `/${pack}` ? 'stall' : undefined);
  const child = spawnCliProcess(b, ['pull', 'pipeline.yaml', '--remote', server.url]);
  const exited = once(child, 'exit');
  const until = Date.now() + 60_000;
  const written = (): number => restoreTemps(b).reduce((n, temp) => n + (readdirSync(join(b, temp), { recursive: true }) as string[]).length, 0);
  while (written() < FILES / 4 && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  assert.ok(written() >= FILES / 4, `files written into the temp before the kill: ${written()}`);
  child.kill('SIGKILL');
  await exited;
  assert.equal(restoreTemps(b).length, 1, 'the killed pull left its temp');
  assert.equal(existsSync(join(b, 'big')), false, 'and nothing in the folder\'s place');

  server.fault = () => undefined;
  const again = await runCliAsync(b, ['pull', 'pipeline.yaml', '--remote', server.url]);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(restoreTemps(b), [], 'the temp was swept');
  assert.deepEqual(readdirSync(join(b, '.runner/tmp/restoring')), [], 'and the dead pull\'s ledger');
  sameFolder(a, b);
});
