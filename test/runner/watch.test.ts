// `runner watch start|stop|status` and `runner status` with the daemon, through the real CLI in a temp
// workspace whose dep is a symlink to a folder outside it (as the benchmark links stage1_train).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInotify } from '../../runner/watch/inotify-binding.js';
import { runCli } from './helpers.js';

let unavailable: string | false = false;
try {
  loadInotify();
} catch (error) {
  unavailable = `the watch daemon cannot run here: ${(error as Error).message}`;
}

const root = realpathSync(mkdtempSync(join(tmpdir(), 'runner-watch-')));
const ws = join(root, 'ws');
const external = join(root, 'images');
// Debug lines say which path a status took; a generous timeout keeps a loaded machine from choosing for us.
// The fixture's dep is small: RUNNER_FSMONITOR_MIN_FILES=0 has the daemon asked about it all the same.
const env = { RUNNER_DEBUG: 'fsmonitor', RUNNER_FSMONITOR_TIMEOUT_MS: '15000', RUNNER_FSMONITOR_MIN_FILES: '0' };

after(() => {
  try {
    const { pid } = JSON.parse(readFileSync(join(ws, '.runner', 'fsmonitor', 'daemon.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGTERM'); // only when a failed test left it running
  } catch {
    // stopped by the test, as it should be
  }
  rmSync(root, { recursive: true, force: true });
});

test('watch start, a warm status through the daemon, a change seen through the link, watch status and stop', { skip: unavailable }, () => {
  mkdirSync(join(ws, '.runner'), { recursive: true });
  mkdirSync(join(ws, 'out'));
  for (const name of ['one', 'two']) {
    mkdirSync(join(external, name), { recursive: true });
    writeFileSync(join(external, name, 'mask.png'), `${name} mask`);
    // Older than the stat cache's racy window, so the first run's records are kept.
    utimesSync(join(external, name, 'mask.png'), Date.now() / 1000 - 60, Date.now() / 1000 - 60);
  }
  symlinkSync(external, join(ws, 'data'));
  writeFileSync(join(ws, 'p.yaml'), 'stages:\n  count:\n    cmd: [sh, -c, "ls data | wc -l > out/count"]\n    deps: [data]\n    outs: [out/count]\n');
  assert.equal(runCli(ws, ['run', 'p.yaml']).status, 0);

  const started = runCli(ws, ['watch', 'start', '--dir', ws]);
  assert.equal(started.status, 0, started.stderr);
  assert.match(started.stdout, new RegExp(`watching ${ws} and ${external}: \\d+ director(y|ies)`), 'the dep outside the workspace, from the lock file');

  let status = runCli(ws, ['status', 'p.yaml'], env);
  assert.match(status.stdout, /all 1 stages fresh/);
  assert.match(status.stderr, /unknown: no token yet: walking/);
  status = runCli(ws, ['status', 'p.yaml'], env);
  assert.match(status.stdout, /all 1 stages fresh/);
  assert.match(status.stderr, new RegExp(`${external}: unchanged since [0-9a-f]+:\\d+: remembered hash, no walk`));

  writeFileSync(join(ws, 'data', 'two', 'mask.png'), 'two MASK'); // same size, through the link
  status = runCli(ws, ['status', 'p.yaml'], env);
  assert.match(status.stdout, /count: stale\n\s+dep changed: data/);
  assert.match(status.stderr, /\d+ changed, e\.g\. .*two\/mask\.png: walking/);

  const watching = runCli(ws, ['watch', 'status', '--dir', ws]);
  assert.match(watching.stdout, /running \(pid \d+\) since /);
  assert.match(watching.stdout, new RegExp(`below: ${ws}, ${external}`));
  assert.match(watching.stdout, /queries 3 \(unchanged 1, changed 1, unknown 1\)/);

  assert.match(runCli(ws, ['watch', 'stop', '--dir', ws]).stdout, /stopped the watch daemon/);
  assert.match(runCli(ws, ['watch', 'status', '--dir', ws]).stdout, /no watch daemon for/);
  status = runCli(ws, ['status', 'p.yaml'], env);
  assert.match(status.stdout, /count: stale\n\s+dep changed: data/, 'the same verdict without the daemon');
  assert.match(status.stderr, /no watch daemon \(runner watch start\): walking as without a daemon/);
});

test('without a working C compiler, watch start says so and starts nothing', { skip: process.platform === 'linux' ? false : 'inotify is Linux only' }, () => {
  const ws2 = join(root, 'no-compiler');
  mkdirSync(join(ws2, '.runner'), { recursive: true });
  const result = runCli(ws2, ['watch', 'start', '--dir', ws2], { CC: '/bin/false', RUNNER_NATIVE_CACHE: join(root, 'empty-native-cache') });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^runner watch error: could not compile the inotify addon with \/bin\/false \(set CC to another C compiler\): exit 1/);
  assert.match(runCli(ws2, ['watch', 'status', '--dir', ws2]).stdout, /no watch daemon/);
});

test('each watch action has its own --help, and a wrong action says which exist', () => {
  const help = runCli(root, ['watch', 'stop', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: runner watch stop \[--dir DIR\]/);
  const wrong = runCli(root, ['watch', 'strat']);
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /unknown watch action "strat" \(did you mean "start"\?\); actions: start, stop, status/);
});
