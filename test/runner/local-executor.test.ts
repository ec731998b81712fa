// The local executor, through both of its ways of starting a process: the spawn helper (python3's
// posix_spawn) and execa (RUNNER_SPAWN=node, or no python3). Both must give a stage the same argv, env, cwd
// and log, and report the same outcomes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalExecutor } from '../../runner/executors/local.js';
import type { StageJob } from '../../runner/executors/executor.js';
import { SpawnServer } from '../../runner/executors/spawn-server.js';
import { waitFor } from './helpers.js';

const hasPython = spawnSync('python3', ['-c', 'import os; os.pidfd_open(os.getpid())']).status === 0;
const backends = [
  { name: 'the spawn helper', spawn: 'helper', skip: hasPython ? false : 'python3 with os.pidfd_open (3.9+, Linux 5.3+) not found: the runner uses execa here' },
  { name: 'execa', spawn: 'node', skip: false },
] as const;

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'local-executor-'));
  mkdirSync(join(dir, 'logs'));
  return dir;
}

function job(dir: string, argv: string[], extra: Partial<StageJob> = {}): StageJob {
  return {
    stage: 's', argv, shell: false, cwd: dir, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', KEEP: 'kept' },
    logFile: join(dir, 'logs', 's.log'), eventsFile: join(dir, 'events.jsonl'), resources: { cpus: 1, gpus: 0, memoryBytes: 0 }, ...extra,
  };
}

async function run(spawn: string, stageJob: StageJob, signal = new AbortController().signal) {
  const saved = process.env['RUNNER_SPAWN'];
  process.env['RUNNER_SPAWN'] = spawn;
  try {
    return await new LocalExecutor().run(stageJob, signal);
  } finally {
    if (saved === undefined) delete process.env['RUNNER_SPAWN'];
    else process.env['RUNNER_SPAWN'] = saved;
  }
}

for (const backend of backends) {
  test(`through ${backend.name}, argv, env and cwd reach the program unchanged and its output follows the command line in the log`, { skip: backend.skip }, async () => {
    const dir = workspace();
    const script = 'printf "%s|" "$@"; echo "$KEEP $(pwd)"; cat; echo to-stderr >&2';
    const outcome = await run(backend.spawn, job(dir, ['sh', '-c', script, 'sh', 'a b', '$(x)', ';']));
    assert.equal(outcome.ok, true);
    const log = readFileSync(join(dir, 'logs', 's.log'), 'utf8').split('\n');
    assert.equal(log[0], '$ "sh" "-c" ' + JSON.stringify(script) + ' "sh" "a b" "$(x)" ";"');
    assert.equal(log[1], `a b|$(x)|;|kept ${dir}`, 'stdin is empty, so cat adds nothing');
    assert.equal(log[2], 'to-stderr');
  });

  test(`through ${backend.name}, a non-zero exit, a signal and a missing program are told apart`, { skip: backend.skip }, async () => {
    const dir = workspace();
    const exit3 = await run(backend.spawn, job(dir, ['sh', '-c', 'exit 3']));
    assert.deepEqual(!exit3.ok && exit3.failure, { reason: 'exit-non-zero', exitCode: 3 });
    const killed = await run(backend.spawn, job(dir, ['sh', '-c', 'kill -KILL $$']));
    assert.deepEqual(!killed.ok && killed.failure, { reason: 'killed', signal: 'SIGKILL' });
    const missing = await run(backend.spawn, job(dir, ['no-such-program-anywhere', 'x']));
    assert.deepEqual(!missing.ok && missing.failure, { reason: 'spawn-failed', message: 'program not found: no-such-program-anywhere' });
  });

  test(`through ${backend.name}, the program is looked up on the stage's own PATH`, { skip: backend.skip }, async () => {
    const dir = workspace();
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'hello-stage'), '#!/bin/sh\necho hello from $0\n');
    chmodSync(join(dir, 'bin', 'hello-stage'), 0o755);
    const stageJob = job(dir, ['hello-stage']);
    stageJob.env['PATH'] = `${join(dir, 'bin')}:${stageJob.env['PATH']}`;
    const outcome = await run(backend.spawn, stageJob);
    assert.equal(outcome.ok, true);
    assert.match(readFileSync(stageJob.logFile, 'utf8'), /hello from .*hello-stage/);
  });

  test(`through ${backend.name}, a timeout and a cancel stop a running stage and say which it was`, { skip: backend.skip }, async () => {
    const dir = workspace();
    const timedOut = await run(backend.spawn, job(dir, ['sleep', '30'], { timeoutMs: 200 }));
    assert.deepEqual(!timedOut.ok && timedOut.failure, { reason: 'timeout', timeoutMs: 200 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const cancelled = await run(backend.spawn, job(dir, ['sleep', '30']), controller.signal);
    assert.deepEqual(!cancelled.ok && cancelled.failure, { reason: 'cancelled' });
  });
}

test('the spawn helper starts where python3 can run it, and is reported missing (so execa is used) where it cannot', async () => {
  assert.equal(await SpawnServer.start(tmpdir(), '/no/such/python3'), undefined);
  if (hasPython) {
    const server = await SpawnServer.start(tmpdir());
    assert.ok(server?.alive);
  }
});

test('through the spawn helper, a stage that writes nothing leaves no log, and a background child\'s later output still reaches it', { skip: backends[0].skip }, async () => {
  const dir = workspace();
  const silent = await run('helper', job(dir, ['true']));
  assert.equal(silent.ok, true);
  assert.equal(existsSync(join(dir, 'logs', 's.log')), false);
  const outcome = await run('helper', job(dir, ['sh', '-c', '(sleep 0.3; echo late) & echo early']));
  assert.equal(outcome.ok, true);
  assert.equal(readFileSync(join(dir, 'logs', 's.log'), 'utf8'), '$ "sh" "-c" "(sleep 0.3; echo late) & echo early"\nearly\n', 'the output written before the exit is there at once');
  await waitFor(() => /early\nlate\n$/.test(readFileSync(join(dir, 'logs', 's.log'), 'utf8')), 'the background child\'s line in the log', 10_000);
});

test('through the spawn helper, output that cannot be written to the log leaves the stage as having run, its exit as it was, and says why', { skip: backends[0].skip }, async () => {
  const dir = workspace();
  const outcome = await run('helper', job(dir, ['sh', '-c', 'echo hi; touch ran'], { logFile: join(dir, 'no-such-folder', 's.log') }));
  assert.equal(outcome.ok, true, 'a stage that ran and exited 0 is not a failed start');
  assert.equal(existsSync(join(dir, 'ran')), true);
  assert.match(outcome.logError ?? '', /cannot write the log .*no-such-folder\/s\.log: No such file or directory/);
  const failing = await run('helper', job(dir, ['sh', '-c', 'echo hi; exit 3'], { logFile: join(dir, 'no-such-folder', 's.log') }));
  assert.equal(failing.ok, false);
  assert.match(!failing.ok ? JSON.stringify(failing.failure) : '', /exit-non-zero.*"exitCode":3/);
  assert.match(failing.logError ?? '', /cannot write the log/);
});
