// Ctrl-C of a local run: the running stage is cancelled, nothing is recorded, and the runner exits 130.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../runner/process-alive.js';
import { makeWorkspace, spawnCli, waitFor } from './helpers.js';

test('SIGINT cancels the running stage, records nothing and exits 130', async () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `stages:
  slow:
    cmd: [sh, -c, "echo $$ > pid.txt; sleep 30; touch out.txt"]
    outs: [out.txt]
`,
  });
  const child = spawnCli(dir, ['run', 'pipeline.yaml']);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const pidFile = join(dir, 'pid.txt');
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
  });
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /slow failed: cancelled/);
  const stagePid = Number(readFileSync(pidFile, 'utf8').trim());
  await waitFor(() => !processAlive(stagePid), 'the stage process to end', 10_000);
  assert.equal(existsSync(join(dir, 'out.txt')), false);
  const lock = join(dir, 'pipeline.lock');
  assert.ok(!existsSync(lock) || !readFileSync(lock, 'utf8').includes('"slow"'), 'an interrupted stage is not in the lock file');
});
