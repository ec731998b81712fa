// A job array's directory goes without ever failing the run: a cancelled job still writing into it (ENOTEMPTY)
// gets a second try later, and directories of ended runners are swept by the next Slurm run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeBatchDir, sweepBatchDirs } from '../../runner/executors/slurm-batch-dir.js';

test('a batch directory is removed with what is in it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runner-batch-'));
  writeFileSync(join(dir, '0.exit'), '0\n');
  removeBatchDir(dir);
  assert.ok(!existsSync(dir));
});

test('a removal that fails (a cancelled job still writing) is retried later and never throws', async () => {
  const calls: number[] = [];
  const started = Date.now();
  removeBatchDir('/nowhere', 30, () => (calls.push(Date.now() - started), calls.length > 1));
  assert.equal(calls.length, 1, 'one try at once');
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(calls.length, 2, 'a second try after the delay');
  assert.ok(calls[1]! >= 25);
});

test('the sweep removes the directories of ended runners and keeps those of live ones', () => {
  const root = mkdtempSync(join(tmpdir(), 'runner-slurm-'));
  const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const live = spawn('sleep', ['30']);
  try {
    const names = [`${ended}-abc-1`, `${live.pid}-abc-1`, `${process.pid}-abc-2`, 'not-a-batch'];
    for (const name of names) {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, 'array.sh'), '');
    }
    assert.equal(sweepBatchDirs(root), 1);
    assert.deepEqual(names.map((name) => existsSync(join(root, name))), [false, true, true, true]);
    assert.equal(sweepBatchDirs(join(root, 'absent')), 0);
  } finally {
    live.kill();
  }
});
