// The watch daemon (runner/watch/daemon.ts, a real process) and hash.ts's use of it, at the cache level: each
// change a directory dep can go through must make the daemon say "changed" (never "unchanged"), and every hash
// taken with the daemon must equal the hash taken with no stat cache at all. No sleeps: each step waits for
// a condition (a process exit, the socket answering), and the daemon's own cookie sync orders the rest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FsMonitorClient, fsMonitorSocket, type MonitorAnswer } from '../../cache/fs-monitor.js';
import { hashPath } from '../../cache/hash.js';
import { loadInotify } from '../../runner/watch/inotify-binding.js';
import { StatCache } from '../../cache/stat-cache.js';
import { ask } from '../../runner/watch/command.js';
import type { DaemonOptions } from '../../runner/watch/daemon.js';

const daemonScript = fileURLToPath(new URL('../../runner/watch/daemon.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

let unavailable: string | false = false;
try {
  loadInotify();
} catch (error) {
  unavailable = `the watch daemon cannot run here: ${(error as Error).message}`;
}

// A loaded machine must not turn a check of the daemon's answers into a check of the fallback.
process.env['RUNNER_FSMONITOR_TIMEOUT_MS'] = '15000';
// The fixtures' folders are small; the daemon is asked about every one of them all the same.
process.env['RUNNER_FSMONITOR_MIN_FILES'] = '0';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'fs-monitor-')));
const ws = join(root, 'ws');
const external = join(root, 'external-data');
let daemon: ChildProcess | undefined;
const statCache = StatCache.inMemory({ racyWindowMs: 0 });

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

async function startDaemon(env: Record<string, string> = {}, workspace = ws, roots = [external], idleHours = 1): Promise<ChildProcess> {
  const socket = fsMonitorSocket(workspace);
  const options: DaemonOptions = { workspace, roots, socket, idleHours };
  const child = spawn(process.execPath, ['--import', tsx, daemonScript, JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  while (!(await ask(socket, 'status', 1000))) {
    if (exited) throw new Error(`the daemon exited: ${stderr}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return child;
}

function exitOf(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** hashPath through the daemon, with the daemon's answer (undefined: no daemon answered). */
async function hashWatched(dep: string): Promise<{ hash: string; answer: MonitorAnswer | undefined }> {
  const client = new FsMonitorClient(ws);
  let answer: MonitorAnswer | undefined;
  statCache.monitor = { query: async (dir, since) => (answer = await client.query(dir, since)) };
  const { hash } = await hashPath(ws, dep, statCache);
  return { hash, answer };
}

/** The hash as it is, with no stat cache and no daemon. */
async function truth(dep: string): Promise<string> {
  return (await hashPath(ws, dep)).hash;
}

/** Brings `dep` to "unchanged" through the daemon and returns its hash. */
async function settled(dep: string): Promise<string> {
  await hashWatched(dep);
  const { hash, answer } = await hashWatched(dep);
  assert.equal(answer?.unchanged, true, `expected the daemon to vouch for ${dep}: ${answer?.why}`);
  assert.equal(hash, await truth(dep));
  return hash;
}

/** After a change to `dep`: the daemon saw it, and the walk it led to gives the true hash. */
async function assertSeenChange(dep: string, before: string): Promise<void> {
  const { hash, answer } = await hashWatched(dep);
  assert.equal(answer?.unchanged, false);
  assert.match(answer!.why, /^\d+ changed/, 'the daemon itself saw the change (not an "unknown" fallback)');
  assert.notEqual(hash, before);
  assert.equal(hash, await truth(dep));
  assert.equal((await hashWatched(dep)).answer?.unchanged, true, 'and vouches for the new state next time');
}

before(async () => {
  if (unavailable) return;
  for (const name of ['a.txt', 'b.txt']) write(join(ws, 'inside', 'sub', name), `${name} contents\n`);
  write(join(ws, 'inside', 'top.txt'), 'top\n');
  write(join(external, 'images', 'x.txt'), 'external x\n');
  mkdirSync(join(ws, '.runner'), { recursive: true });
  symlinkSync(external, join(ws, 'data'));
  daemon = await startDaemon();
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await exitOf(daemon);
  }
  rmSync(root, { recursive: true, force: true });
});

const skip = unavailable;

test('with the daemon running and nothing changed, a directory is vouched for without a walk', { skip }, async () => {
  const first = await hashWatched('inside');
  assert.match(first.answer!.why, /^unknown: no token yet/);
  const second = await hashWatched('inside');
  assert.equal(second.answer?.unchanged, true);
  assert.equal(second.hash, first.hash);
  assert.equal(second.hash, await truth('inside'));
});

test('a directory of fewer than 256 files is walked without asking the daemon (asking costs more)', { skip }, async () => {
  await settled('inside');
  delete process.env['RUNNER_FSMONITOR_MIN_FILES'];
  try {
    const { hash, answer } = await hashWatched('inside');
    assert.equal(answer, undefined, 'not asked');
    assert.equal(hash, await truth('inside'));
  } finally {
    process.env['RUNNER_FSMONITOR_MIN_FILES'] = '0';
  }
});

test('a file rewritten in place with the same size and its mtime forced back is seen as a change', { skip }, async () => {
  const file = join(ws, 'inside', 'sub', 'a.txt');
  const wholeSecond = 1_700_000_000; // a time utimes can set back exactly
  utimesSync(file, wholeSecond, wholeSecond);
  const before = await settled('inside');
  const { size } = statSync(file);
  writeFileSync(file, 'A.TXT CONTENTS\n');
  utimesSync(file, wholeSecond, wholeSecond);
  assert.equal(statSync(file).size, size);
  assert.equal(statSync(file).mtimeMs, wholeSecond * 1000);
  await assertSeenChange('inside', before);
});

test('an added file is seen as a change', { skip }, async () => {
  const before = await settled('inside');
  write(join(ws, 'inside', 'sub', 'new.txt'), 'new\n');
  await assertSeenChange('inside', before);
});

test('a deleted file is seen as a change', { skip }, async () => {
  const before = await settled('inside');
  rmSync(join(ws, 'inside', 'sub', 'new.txt'));
  await assertSeenChange('inside', before);
});

test('a rename inside the tree is seen, and so is a later write below the renamed folder', { skip }, async () => {
  let before = await settled('inside');
  renameSync(join(ws, 'inside', 'sub'), join(ws, 'inside', 'moved'));
  await assertSeenChange('inside', before);
  // The moved folder's watch must now report under its new name.
  before = await settled('inside');
  writeFileSync(join(ws, 'inside', 'moved', 'b.txt'), 'b changed after the move\n');
  await assertSeenChange('inside', before);
});

test('a replaced subdirectory is seen, and so are files written into the new one at once', { skip }, async () => {
  let before = await settled('inside');
  rmSync(join(ws, 'inside', 'moved'), { recursive: true });
  mkdirSync(join(ws, 'inside', 'moved', 'deeper'), { recursive: true });
  writeFileSync(join(ws, 'inside', 'moved', 'deeper', 'c.txt'), 'written before any watch could be added\n');
  await assertSeenChange('inside', before);
  before = await settled('inside');
  writeFileSync(join(ws, 'inside', 'moved', 'deeper', 'c.txt'), 'written later\n');
  await assertSeenChange('inside', before);
});

test('a change made through a symlinked dep root outside the workspace is seen', { skip }, async () => {
  const before = await settled('data');
  writeFileSync(join(ws, 'data', 'images', 'x.txt'), 'changed through the link\n');
  assert.equal(readFileSync(join(external, 'images', 'x.txt'), 'utf8'), 'changed through the link\n');
  await assertSeenChange('data', before);
});

test('a dep root swapped for another folder by renaming its parent (no event on the root) is "unknown"', { skip }, async () => {
  write(join(root, 'shelf', 'data2', 'f.txt'), 'first shelf\n');
  symlinkSync(join(root, 'shelf', 'data2'), join(ws, 'data2'));
  const before = await settled('data2'); // watched from the first question on
  renameSync(join(root, 'shelf'), join(root, 'shelf-old'));
  write(join(root, 'shelf', 'data2', 'f.txt'), 'other shelf\n');
  const { hash, answer } = await hashWatched('data2');
  assert.match(answer!.why, /^unknown: .*data2 was replaced/);
  assert.notEqual(hash, before);
  assert.equal(hash, await truth('data2'));
});

test('a queue overflow starts the daemon over: every earlier token is "unknown", and the walk is right', { skip }, async () => {
  const noise = [join(ws, 'noise', 'a'), join(ws, 'noise', 'b')];
  for (const file of noise) write(file, '');
  const before = await settled('inside'); // also: the daemon has seen 'noise' appear and watches it
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  // Stopped, the daemon reads nothing: more events than the queue holds make the kernel drop some. Writes
  // to two files in turn (inotify merges an event only into an identical one just before it).
  const fds = noise.map((file) => openSync(file, 'a'));
  daemon!.kill('SIGSTOP');
  try {
    // The signal lands a moment after kill() returns, and the daemon may read some events before it does:
    // wait until it is stopped, and write twice the queue's length, so the overflow does not hang on a margin.
    for (const until = Date.now() + 5000; !/^\S+ \(.*\) T/.test(readFileSync(`/proc/${daemon!.pid}/stat`, 'utf8')); ) {
      assert.ok(Date.now() < until, 'the daemon stops');
    }
    for (let i = 0; i <= 2 * limit; i++) writeSync(fds[i % 2]!, 'x');
    writeFileSync(join(ws, 'inside', 'top.txt'), 'changed while events were being lost\n');
  } finally {
    daemon!.kill('SIGCONT');
    for (const fd of fds) closeSync(fd);
  }
  const { hash, answer } = await hashWatched('inside');
  // Whether the query's own cookie event was lost in the overflow (then the reset answers it) or came
  // after it, the answer is "unknown".
  assert.match(answer!.why, /^unknown: (the token is from another daemon instance|no sync with the event queue)/);
  assert.notEqual(hash, before);
  assert.equal(hash, await truth('inside'));
  let status = await ask<{ lastReset: { reason: string } | null }>(fsMonitorSocket(ws), 'status');
  while (!status?.lastReset) status = await ask(fsMonitorSocket(ws), 'status');
  assert.match(status.lastReset.reason, /overflow/);
  rmSync(join(ws, 'noise'), { recursive: true });
});

test('a daemon killed with SIGKILL leaves the client walking, still right', { skip }, async () => {
  const before = await settled('inside');
  daemon!.kill('SIGKILL');
  await exitOf(daemon!);
  writeFileSync(join(ws, 'inside', 'top.txt'), 'changed while no daemon ran\n');
  const { hash, answer } = await hashWatched('inside');
  assert.equal(answer, undefined, 'no daemon answered');
  assert.notEqual(hash, before);
  assert.equal(hash, await truth('inside'));
});

test('a restarted daemon answers "unknown" to the old tokens, then vouches again', { skip }, async () => {
  daemon = await startDaemon();
  await settled('inside'); // the record now holds this daemon's token
  daemon.kill('SIGTERM');
  await exitOf(daemon);
  writeFileSync(join(ws, 'inside', 'top.txt'), 'changed between the two daemons\n');
  daemon = await startDaemon();
  const { hash, answer } = await hashWatched('inside');
  assert.match(answer!.why, /^unknown: the token is from another daemon instance/);
  assert.equal(hash, await truth('inside'));
  await settled('inside');
});

test('with no daemon, hashing through the client gives what it gives without one', { skip }, async () => {
  daemon!.kill('SIGTERM');
  await exitOf(daemon!);
  writeFileSync(join(ws, 'inside', 'top.txt'), 'changed after the daemon stopped\n');
  const { hash, answer } = await hashWatched('inside');
  assert.equal(answer, undefined);
  assert.equal(hash, await truth('inside'));
  assert.equal((await hashWatched('data')).hash, await truth('data'));
});

test('a root too large for the watch limit is "unknown", says why, and leaves the other roots working', { skip }, async () => {
  const countDirs = (dir: string): number =>
    1 + readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== '.runner').reduce((n, e) => n + countDirs(join(dir, e.name)), 0);
  // Room for the workspace's folders and not one more: the external root does not fit.
  daemon = await startDaemon({ RUNNER_FSMONITOR_MAX_WATCHES: String(countDirs(ws)) });
  const { hash, answer } = await hashWatched('data');
  assert.match(answer!.why, /^unknown: inotify watch limit reached at .*external-data/);
  assert.equal(hash, await truth('data'));
  await settled('inside');
  const status = await ask<{ failure: string | null }>(fsMonitorSocket(ws), 'status');
  assert.match(status!.failure!, /watch limit/);
  daemon.kill('SIGTERM');
  await exitOf(daemon);
});

test('the daemon exits by itself when its workspace is deleted', { skip }, async () => {
  const doomed = join(root, 'doomed');
  mkdirSync(join(doomed, '.runner'), { recursive: true });
  const child = await startDaemon({}, doomed, []);
  rmSync(doomed, { recursive: true });
  await exitOf(child); // the root's own deletion event, then nothing left to watch: no timer involved
  assert.equal(child.exitCode, 0);
});

test('a workspace too deep for a socket path in it is served through the temp-dir socket', { skip }, async () => {
  const deep = join(root, 'a-rather-long-folder-name'.repeat(4));
  mkdirSync(join(deep, '.runner'), { recursive: true });
  write(join(deep, 'dep', 'f.txt'), 'f\n');
  const socket = fsMonitorSocket(deep);
  assert.ok(socket.startsWith(tmpdir()), socket);
  const child = await startDaemon({}, deep, []);
  try {
    const client = new FsMonitorClient(deep);
    const first = await client.query(join(deep, 'dep'), undefined);
    assert.equal(first?.unchanged, false);
    assert.equal((await client.query(join(deep, 'dep'), first!.token))?.unchanged, true);
  } finally {
    child.kill('SIGTERM');
    await exitOf(child);
  }
  assert.equal(existsSync(socket), false, 'the daemon removed its socket');
});

test('the daemon exits by itself after --idle-hours without a question', { skip }, async () => {
  const idle = join(root, 'idle');
  mkdirSync(join(idle, '.runner'), { recursive: true });
  const child = await startDaemon({}, idle, [], 0.5 / 3600); // half a second
  await exitOf(child);
  assert.equal(child.exitCode, 0);
  assert.equal(existsSync(fsMonitorSocket(idle)), false);
});

test('the socket lives in .runner/ unless that path passes the 107-byte limit of a unix socket path', () => {
  assert.equal(fsMonitorSocket('/srv/ws'), '/srv/ws/.runner/fsmonitor.sock');
  const deep = '/work' + '/a-rather-long-folder-name'.repeat(5);
  const socket = fsMonitorSocket(deep);
  assert.ok(socket.startsWith(join(tmpdir(), 'runner-fsmonitor-')), socket);
  assert.ok(Buffer.byteLength(socket) <= 107);
  assert.equal(fsMonitorSocket(deep), socket, 'the same workspace always gets the same socket');
  assert.notEqual(fsMonitorSocket(deep + '2'), socket);
});
