// The remote cache from the command line: where its URL comes from, a failing remote never failing a run,
// credentials kept out of every output, a shared directory (file://) with gc, and S3 against s3rver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import S3rver from 's3rver';
import { sha256 } from '../../cache/hash.js';
import { FaultServer, runCliAsync, tempDir } from '../cache/remote-helpers.js';
import { makeWorkspace, runCli, runs } from './helpers.js';

const PIPELINE = `stages:
  prep:
    cmd: sh stage.sh prep data/prep.txt
    deps: [stage.sh]
    outs: [data/prep.txt]
  train:
    cmd: sh stage.sh train models/m/
    deps: [data/prep.txt]
    outs: [models/m]
`;

function workspace(extra = ''): string {
  return makeWorkspace({ 'pipeline.yaml': extra + PIPELINE });
}

function fileRemote(): string {
  return pathToFileURL(tempDir('runner-remote-dir-')).toString();
}

test('a remote that fails every request is a warning and a summary line; the run succeeds and runs its stages', async (t) => {
  const server = new FaultServer();
  await server.start();
  t.after(() => server.stop());
  server.fault = () => 'status500';
  const dir = workspace();
  const url = server.url.replace('http://', 'http://bob:hunter2@');
  const result = await runCliAsync(dir, ['run', 'pipeline.yaml', '--remote', url, '--push'], { RUNNER_REMOTE_TOKEN: 'tok-secret' });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(runs(dir), ['prep', 'train']);
  assert.match(result.stderr, /warning: remote http:\/\/127\.0\.0\.1:\d+\/?: GET .*HTTP 500/);
  assert.match(result.stderr, /remote http:\/\/127\.0\.0\.1:\d+\/?: 0 hits, 2 misses, .* [1-9]\d* errors?/);
  for (const text of [result.stdout, result.stderr, readFileSync(join(dir, 'pipeline.lock'), 'utf8')]) assert.doesNotMatch(text, /hunter2|bob:|tok-secret/);
});

test('an unreachable remote is a warning; the run succeeds', () => {
  const dir = workspace();
  const result = runCli(dir, ['run', 'pipeline.yaml', '--remote', 'http://127.0.0.1:9/cache', '--push']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(runs(dir), ['prep', 'train']);
  assert.match(result.stderr, /ECONNREFUSED/);
  assert.match(result.stderr, /errors?\n/);
});

test('the remote comes from --remote, RUNNER_REMOTE or cache.remote; --no-remote and RUNNER_REMOTE_PUSH=0 override', () => {
  const remote = fileRemote();
  const root = new URL(remote).pathname;
  const dir = workspace(`cache:\n  remote: {url: "${remote}", push: true}\n`);
  // RUNNER_REMOTE_PUSH=0 makes the pipeline's push: true read-only.
  let result = runCli(dir, ['run', 'pipeline.yaml'], { RUNNER_REMOTE_PUSH: '0' });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /0 objects \(0\.0 kB\) uploaded/);
  assert.equal(existsSync(join(root, 'ac')), false);
  // --no-remote: no remote at all, so no summary line.
  result = runCli(dir, ['run', 'pipeline.yaml', '--force', 'prep', '--no-remote']);
  assert.doesNotMatch(result.stderr, /remote /);
  // The pipeline's push: true (what ran is pushed; train, fresh, is not: `runner push` sends everything).
  result = runCli(dir, ['run', 'pipeline.yaml', '--force', 'prep']);
  assert.equal(readdirSync(join(root, 'ac')).length, 1, result.stderr);
  // `runner push` with the pipeline's remote sends the rest.
  result = runCli(dir, ['push', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(readdirSync(join(root, 'ac')).length, 2, result.stdout);
  // RUNNER_REMOTE alone, in a workspace whose pipeline names no remote.
  const other = workspace();
  result = runCli(other, ['run', 'pipeline.yaml'], { RUNNER_REMOTE: remote });
  assert.deepEqual(runs(other), []);
  assert.match(result.stderr, /2 hits/);
});

test('a bad remote URL or a bad cache.remote is a usage error before anything runs', () => {
  const dir = workspace();
  let result = runCli(dir, ['run', 'pipeline.yaml', '--remote', 'ftp://user:pw@host/x']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /unsupported URL scheme "ftp:"/);
  assert.doesNotMatch(result.stderr, /user:pw/);
  result = runCli(dir, ['run', 'pipeline.yaml', '--push']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--push needs a remote/);
  const typo = workspace('cache:\n  remote: {url: "file:///tmp/x", pushh: true}\n');
  result = runCli(typo, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /pipeline\.yaml:2:\d+ error: unknown key "pushh" in "cache\.remote" \(did you mean "push"\?\)/);
  assert.deepEqual(runs(dir), []);
});

test('file://: push, pull into a fresh clone, and gc --remote dropping orphans and broken records but nothing in use', () => {
  const remote = fileRemote();
  const root = new URL(remote).pathname;
  const a = workspace();
  assert.equal(runCli(a, ['run', 'pipeline.yaml']).status, 0);
  const pushed = runCli(a, ['push', 'pipeline.yaml', '--remote', remote]);
  assert.equal(pushed.status, 0, pushed.stderr);
  assert.match(pushed.stdout, /0 errors/);
  const b = workspace();
  writeFileSync(join(b, 'pipeline.lock'), readFileSync(join(a, 'pipeline.lock')));
  const pulled = runCli(b, ['pull', 'pipeline.yaml', '--remote', remote]);
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.equal(readFileSync(join(b, 'models/m/part.txt'), 'utf8'), readFileSync(join(a, 'models/m/part.txt'), 'utf8'));

  const old = new Date(Date.now() - 2 * 3600_000);
  const orphan = join(root, 'cas', sha256('orphan'));
  const youngOrphan = join(root, 'cas', sha256('young'));
  writeFileSync(orphan, 'orphan');
  writeFileSync(youngOrphan, 'young');
  utimesSync(orphan, old, old);
  const broken = join(root, 'ac', sha256('broken'));
  writeFileSync(broken, JSON.stringify({ key: 'broken', cmd: 'x', deps: [], params: {}, outs: [{ path: 'x', hash: sha256('gone'), size: 1, isDir: false }], durationMs: 1, createdAt: 'then' }));
  utimesSync(broken, old, old);
  const casBefore = readdirSync(join(root, 'cas')).length;
  const dry = runCli(a, ['gc', '--remote', remote, '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /would remove 1 of 3 records .* and 1 objects/);
  assert.equal(readdirSync(join(root, 'cas')).length, casBefore);
  const real = runCli(a, ['gc', '--remote', remote]);
  assert.match(real.stdout, /removed 1 of 3 records .* and 1 objects/);
  assert.equal(existsSync(orphan), false);
  assert.equal(existsSync(broken), false);
  assert.equal(existsSync(youngOrphan), true, 'younger than the grace period: maybe a push in progress');
  // What is left still restores a fresh clone.
  const c = workspace();
  assert.equal(runCli(c, ['run', 'pipeline.yaml', '--remote', remote]).status, 0);
  assert.deepEqual(runs(c), []);
  assert.equal(runCli(a, ['gc', '--remote', 'http://127.0.0.1:9/']).status, 2);
});

let s3: S3rver | undefined;
let s3env: Record<string, string> = {};
before(async () => {
  const directory = tempDir('runner-s3rver-');
  mkdirSync(directory, { recursive: true });
  s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'team-cache' }] });
  const address = await s3.run();
  s3env = {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${address.port}`,
  };
});
after(async () => {
  await s3?.close();
});

test('s3:// (SigV4 against s3rver): run --push, a fresh clone restores, pull, gc --remote', async () => {
  const url = 's3://team-cache/runner/v1';
  const a = workspace();
  const pushedRun = await runCliAsync(a, ['run', 'pipeline.yaml', '--remote', url, '--push'], s3env);
  assert.equal(pushedRun.status, 0, pushedRun.stderr);
  assert.match(pushedRun.stderr, /remote s3:\/\/team-cache\/runner\/v1: 0 hits, 2 misses, .*0 errors/);
  const b = workspace();
  const restored = await runCliAsync(b, ['run', 'pipeline.yaml', '--remote', url], s3env);
  assert.equal(restored.status, 0, restored.stderr);
  assert.deepEqual(runs(b), []);
  assert.match(restored.stderr, /2 hits, 0 misses/);
  const c = workspace();
  writeFileSync(join(c, 'pipeline.lock'), readFileSync(join(a, 'pipeline.lock')));
  const pulled = await runCliAsync(c, ['pull', 'pipeline.yaml', '--remote', url], s3env);
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.equal(readFileSync(join(c, 'data/prep.txt'), 'utf8'), readFileSync(join(a, 'data/prep.txt'), 'utf8'));
  const gc = await runCliAsync(a, ['gc', '--remote', url, '--dry-run'], s3env);
  assert.equal(gc.status, 0, gc.stderr);
  assert.match(gc.stdout, /would remove 0 of 2 records .* and 0 objects/);
});

// s3rver checks the access key id but not the SigV4 signature itself: a wrong secret would pass there.
test('s3:// with unknown credentials: refused with a 403, a warning, and the run still succeeds', async () => {
  const dir = workspace();
  const result = await runCliAsync(dir, ['run', 'pipeline.yaml', '--remote', 's3://team-cache/x', '--push'], { ...s3env, AWS_ACCESS_KEY_ID: 'NOBODY', AWS_SECRET_ACCESS_KEY: 'wrong-secret' });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(runs(dir), ['prep', 'train']);
  assert.match(result.stderr, /HTTP 403/);
  assert.doesNotMatch(result.stderr + result.stdout, /wrong-secret/);
});
