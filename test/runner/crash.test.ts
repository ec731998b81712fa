// kill -9 of the runner mid-run, and two runners on one workspace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { makeWorkspace, runCli, runJson, runs, spawnCli, stagePid, waitFor } from './helpers.js';

const PIPELINE = `stages:
  fast:
    cmd: sh stage.sh fast fast.txt
    outs: [fast.txt]
  slow:
    cmd: sh stage.sh slow slow.txt
    deps: [fast.txt]
    outs: [slow.txt]
`;

function killOrphan(dir: string, stage: string): void {
  // The stage process outlives a kill -9 of its runner (as it would in real life); end it by its pid.
  const pid = stagePid(dir, stage);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

test('kill -9 of the runner mid-stage records nothing unfinished, and the next run repeats only that stage', async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': PIPELINE, 'block-slow': '' });
  const child = spawnCli(dir, ['run', 'pipeline.yaml']);
  await waitFor(() => runs(dir).includes('slow'), 'the slow stage to start');
  child.kill('SIGKILL');
  await once(child, 'exit');
  killOrphan(dir, 'slow');
  const lock = existsSync(join(dir, 'pipeline.lock')) ? readFileSync(join(dir, 'pipeline.lock'), 'utf8') : '';
  assert.doesNotMatch(lock, /slow/, 'the unfinished stage is not in the lock file');

  rmSync(join(dir, 'block-slow'));
  const resumed = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.summary.stages['fast']!.status, /^(fresh|restored)$/, 'the finished stage is not run again');
  assert.equal(resumed.summary.stages['slow']!.status, 'ran');
  assert.deepEqual(runs(dir), ['fast', 'slow', 'slow']);
});

test('a second runner on a busy workspace is refused with a clear message, and the first finishes', async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': PIPELINE, 'block-slow': '' });
  const first = spawnCli(dir, ['run', 'pipeline.yaml']);
  const exited = once(first, 'exit');
  await waitFor(() => runs(dir).includes('slow'), 'the first runner to start its slow stage');
  const second = runCli(dir, ['run', 'pipeline.yaml']);
  assert.equal(second.status, 2);
  assert.match(second.stderr, /^error: another runner is using this workspace \(pid \d+ on .*\); wait for it to finish/);
  rmSync(join(dir, 'block-slow'));
  const [code] = await exited;
  assert.equal(code, 0);
  assert.deepEqual(runs(dir), ['fast', 'slow']);
});

test('a lock left by a killed runner is recovered at once', async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': PIPELINE, 'block-fast': '' });
  const child = spawnCli(dir, ['run', 'pipeline.yaml']);
  await waitFor(() => runs(dir).includes('fast'), 'the fast stage to start');
  child.kill('SIGKILL');
  await once(child, 'exit');
  killOrphan(dir, 'fast');
  rmSync(join(dir, 'block-fast'));
  const result = runCli(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
});
