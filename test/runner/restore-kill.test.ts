// What a killed runner leaves is cleaned up by the next one: restore temps (kill -9 during a restore), a lock
// folder without its owner, half-built lock folders; and a full disk while taking the lock is one clear line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWorkspace, runCli, runJson, spawnCli } from './helpers.js';

/** A pid that no process has any more (one that just exited). */
function deadPid(): number {
  return spawnSync('true').pid!;
}

/** Every path below `dir` whose name is a restore temp. */
function restoreTemps(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((path) => /(^|\/)\.[^/]+\.restore-\d+-[0-9a-f]{8}$/.test(path));
}

const FILES = 3000;
const MANY_FILES = `stages:
  gen:
    cmd: [node, -e, "const fs = require('fs'); fs.mkdirSync('d'); for (let i = 0; i < ${FILES}; i++) fs.writeFileSync('d/f' + i, 'x'.repeat(2000) + i)"]
    outs: [d]
`;

test('kill -9 during a restore leaves a temp that the next run removes; the out is then whole', async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': MANY_FILES });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  let caught: string[] = [];
  // The kill lands while the temp folder exists; should a restore finish first, it is tried again.
  for (let attempt = 0; attempt < 5 && caught.length === 0; attempt++) {
    rmSync(join(dir, 'd'), { recursive: true, force: true });
    const child = spawnCli(dir, ['run', 'pipeline.yaml']);
    const exited = once(child, 'exit');
    let done = false;
    void exited.then(() => (done = true));
    while (!done && !readdirSync(dir).some((name) => name.startsWith('.d.restore-'))) await new Promise((r) => setImmediate(r));
    child.kill('SIGKILL');
    await exited;
    caught = restoreTemps(dir);
  }
  assert.equal(caught.length, 1, 'a kill landed during the restore');
  assert.equal(readdirSync(join(dir, '.runner/tmp/restoring')).length, 1, 'the killed runner left its ledger');

  const next = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(next.status, 0, next.stderr);
  assert.deepEqual(restoreTemps(dir), [], 'nothing left behind');
  assert.deepEqual(readdirSync(join(dir, '.runner/tmp/restoring')), [], 'ledgers of dead runners swept, and this run removed its own');
  assert.equal(readdirSync(join(dir, 'd')).length, FILES);
  assert.equal(readFileSync(join(dir, 'd/f1234'), 'utf8'), 'x'.repeat(2000) + '1234');
});

test('restore temps named in the ledger of a dead runner are swept, and nothing else', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen sub/f.txt\n    outs: [sub/f.txt]\n` });
  const dead = deadPid();
  const ledgers = join(dir, '.runner/tmp/restoring');
  mkdirSync(join(dir, `sub/.f.txt.restore-${dead}-0123abcd`), { recursive: true });
  writeFileSync(join(dir, `sub/.f.txt.restore-${dead}-0123abcd/part`), 'half');
  writeFileSync(join(dir, `.g.restore-${dead}-89abcdef`), 'half a file');
  writeFileSync(join(dir, `.h.restore-${process.pid}-00000000`), 'a live runner is building this');
  writeFileSync(join(dir, 'keep.txt'), 'not a temp');
  mkdirSync(ledgers, { recursive: true });
  // The dead runner's ledger, with lines that must not be acted on: not a temp, another pid's temp, a path out.
  writeFileSync(join(ledgers, `${dead}-0123abcd.txt`), [
    `sub/.f.txt.restore-${dead}-0123abcd`, `.g.restore-${dead}-89abcdef`, 'keep.txt', `.h.restore-${process.pid}-00000000`,
    `../.x.restore-${dead}-0123abcd`, `/tmp/.x.restore-${dead}-0123abcd`, 'pipeline.yaml', '',
  ].join('\n'));
  writeFileSync(join(ledgers, `${process.pid}-00000000.txt`), `.h.restore-${process.pid}-00000000\n`);
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(restoreTemps(dir), [`.h.restore-${process.pid}-00000000`], 'only the live runner\'s temp is left');
  assert.deepEqual(readdirSync(ledgers), [`${process.pid}-00000000.txt`]);
  assert.equal(readFileSync(join(dir, 'keep.txt'), 'utf8'), 'not a temp');
  assert.ok(existsSync(join(dir, 'pipeline.yaml')));
});

test('gc sweeps restore temps of dead runners too', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen f.txt\n    outs: [f.txt]\n` });
  const dead = deadPid();
  writeFileSync(join(dir, `.f.txt.restore-${dead}-0123abcd`), 'half');
  mkdirSync(join(dir, '.runner/tmp/restoring'), { recursive: true });
  writeFileSync(join(dir, `.runner/tmp/restoring/${dead}-0123abcd.txt`), `.f.txt.restore-${dead}-0123abcd\n`);
  assert.equal(runCli(dir, ['gc']).status, 0);
  assert.deepEqual(restoreTemps(dir), []);
});

test('a lock folder left without its owner (a kill between creating it and naming its owner) does not block the next run', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen f.txt\n    outs: [f.txt]\n` });
  mkdirSync(join(dir, '.runner/workspace.lock'));
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.summary.stages['gen']!.status, 'ran');
  assert.equal(existsSync(join(dir, '.runner/workspace.lock')), false, 'released at the end');
});

test('a lock folder of a dead runner is recovered at once, and half-built lock folders of dead runners are swept', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen f.txt\n    outs: [f.txt]\n` });
  const dead = deadPid();
  const owner = JSON.stringify({ pid: dead, host: hostname(), startedAt: 'then', command: 'run pipeline.yaml' });
  mkdirSync(join(dir, '.runner/workspace.lock'));
  writeFileSync(join(dir, '.runner/workspace.lock/owner.json'), owner);
  mkdirSync(join(dir, `.runner/workspace.lock.new-${dead}-0123abcd`));
  writeFileSync(join(dir, `.runner/workspace.lock.new-${dead}-0123abcd/owner.json`), owner);
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(readdirSync(join(dir, '.runner')).filter((name) => name.startsWith('workspace.lock')), []);
});

test('a full disk while taking the workspace lock is one clear error line', (t) => {
  const mount = mkdtempSync(join(tmpdir(), 'runner-full-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mount]).status !== 0) {
    t.skip('needs permission to mount a small tmpfs');
    return;
  }
  try {
    mkdirSync(join(mount, '.runner'));
    writeFileSync(join(mount, 'pipeline.yaml'), `stages:\n  gen:\n    cmd: sh -c "echo hi > f.txt"\n    outs: [f.txt]\n`);
    spawnSync('dd', ['if=/dev/zero', `of=${join(mount, 'fill')}`, 'bs=4k']); // until the disk is full
    const result = runCli(mount, ['run', 'pipeline.yaml']);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stderr, 'error: cannot take the workspace lock .runner/workspace.lock: no space left on the device; free some space and run again\n');
  } finally {
    spawnSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});
