// `runner watch start|stop|status`: the opt-in watch daemon (daemon.ts) that lets a warm
// `runner status` skip walking dep directories nothing has touched (see docs/fsmonitor.md).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsMonitorSocket } from '../../cache/fs-monitor.js';
import { InotifyUnavailableError, loadInotify } from './inotify-binding.js';
import type { Values } from '../commands/values.js';
import { pipelinesWithLocks } from '../pipeline-files.js';
import { processAlive } from '../process-alive.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import { findWorkspace, runnerDirs } from '../workspace.js';
import type { DaemonOptions } from './daemon.js';

export const WATCH_HELP: Record<string, string> = {
  start: [
    'usage: runner watch start [--dir DIR] [--idle-hours N]',
    '',
    'Start a daemon that watches the workspace and every dep directory outside it that its lock files name',
    '(real paths; others are added when a status first asks about them), so a warm status reuses the hash of',
    'a directory nothing changed below without walking it. Linux only (inotify); compiles a small addon with',
    'the system C compiler on first use. Nothing depends on it: without it a status walks as before.',
    '',
    'options:',
    '  --dir DIR         the workspace (default: nearest ancestor of the current folder holding .runner/, .git or package.json)',
    '  --idle-hours N    exit after N hours without a query (default: 12)',
  ].join('\n'),
  stop: ['usage: runner watch stop [--dir DIR]', '', 'Stop the workspace\'s watch daemon (if one runs).'].join('\n'),
  status: [
    'usage: runner watch status [--dir DIR] [--json]',
    '',
    'Whether the workspace\'s watch daemon runs; what it watches, since when, its event and query counts, and',
    'why it last started over (queue overflow, replaced root) or cannot answer (watch limit).',
  ].join('\n'),
};

const folders = (n: number): string => `${n} ${n === 1 ? 'directory' : 'directories'}`;

interface DaemonStatus {
  id: number;
  pid: number;
  workspace: string;
  roots: string[];
  excluded: string[];
  watches: number;
  startedAt: string;
  instance: string;
  seq: number;
  failure: string | null;
  lastReset: { reason: string; at: string } | null;
  counts: Record<string, number>;
  idleHours: number;
  socket: string;
}

function workspaceOf(values: Values): string {
  const dir = typeof values['dir'] === 'string' ? values['dir'] : typeof values['workspace'] === 'string' ? values['workspace'] : undefined;
  const workspace = dir !== undefined ? resolve(dir) : findWorkspace(join(process.cwd(), 'x'));
  if (!existsSync(workspace)) fail(`--dir ${dir ?? workspace}: no such directory`);
  return realpathSync.native(workspace);
}

/** One request to the daemon; undefined when none answers within `timeoutMs`. */
export function ask<T>(socketPath: string, op: 'status' | 'stop', timeoutMs = 2000): Promise<T | undefined> {
  return new Promise((done) => {
    if (!existsSync(socketPath)) return done(undefined);
    const socket = createConnection(socketPath);
    let text = '';
    const finish = (value: T | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      done(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ op, id: 1 }) + '\n'));
    socket.on('data', (chunk: string) => {
      text += chunk;
      const newline = text.indexOf('\n');
      if (newline >= 0) finish(JSON.parse(text.slice(0, newline)) as T);
    });
    socket.on('error', () => finish(undefined));
  });
}

/** The real paths of directory deps outside the workspace, from its lock files (unreadable ones skipped). */
async function depRootsOutside(workspace: string): Promise<string[]> {
  const { readLock } = await import('../../cache/lockfile.js');
  const roots = new Set<string>();
  for (const { lock: file } of pipelinesWithLocks(workspace)) {
    let entries;
    try {
      entries = Object.values(readLock(file));
    } catch {
      continue;
    }
    for (const dep of entries.flatMap((e) => e.deps)) {
      if (!dep.isDir) continue;
      try {
        const real = realpathSync.native(resolve(workspace, dep.path));
        if (real !== workspace && !real.startsWith(workspace + '/')) roots.add(real);
      } catch {
        // missing now: a status will add it when it exists
      }
    }
  }
  // A root below another root is already watched.
  return [...roots].filter((r) => ![...roots].some((o) => o !== r && r.startsWith(o + '/')));
}

function daemonCommand(options: DaemonOptions): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./daemon.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  return [...(fromSource ? ['--import', import.meta.resolve('tsx')] : []), script, JSON.stringify(options)];
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' / ');
  } catch {
    return '';
  }
}

async function start(workspace: string, values: Values): Promise<number> {
  const socket = fsMonitorSocket(workspace);
  const running = await ask<DaemonStatus>(socket, 'status');
  if (running) {
    process.stdout.write(`already watching ${workspace} (pid ${running.pid}, since ${running.startedAt})\n`);
    return 0;
  }
  const idleText = typeof values['idle-hours'] === 'string' ? values['idle-hours'] : '12';
  const idleHours = Number(idleText);
  if (!Number.isFinite(idleHours) || idleHours <= 0) fail(`--idle-hours expects a positive number of hours, got "${idleText}"`);
  try {
    loadInotify(); // compiled here, so a missing compiler is this command's error, not a silent daemon's
  } catch (error) {
    if (!(error instanceof InotifyUnavailableError)) throw error;
    process.stderr.write(`runner watch error: ${error.message}\n`);
    return 1;
  }
  const stateDir = join(runnerDirs(workspace).root, 'fsmonitor');
  mkdirSync(stateDir, { recursive: true });
  const logFile = join(stateDir, 'daemon.log');
  const log = openSync(logFile, 'a');
  const options: DaemonOptions = { workspace, roots: await depRootsOutside(workspace), socket, idleHours };
  const child = spawn(process.execPath, daemonCommand(options), { cwd: workspace, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  // Wait for the condition (the socket answers), not for a time; give up after 20 s or when it exits.
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && exited === undefined; ) {
    const status = await ask<DaemonStatus>(socket, 'status', 500);
    if (status) {
      const others = status.roots.filter((r) => r !== workspace);
      process.stdout.write(`watching ${workspace}${others.length ? ` and ${others.join(', ')}` : ''}: ${folders(status.watches)} (pid ${status.pid})\n`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  process.stderr.write(`runner watch error: the daemon did not start${exited !== undefined ? ` (exit ${exited})` : ''}: ${logTail(logFile) || 'see ' + logFile}\n`);
  return 1;
}

async function stop(workspace: string): Promise<number> {
  const socket = fsMonitorSocket(workspace);
  const running = await ask<DaemonStatus>(socket, 'status');
  if (!running) {
    process.stdout.write(`no watch daemon for ${workspace}\n`);
    return 0;
  }
  await ask(socket, 'stop');
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    if (!processAlive(running.pid)) {
      process.stdout.write(`stopped the watch daemon of ${workspace} (pid ${running.pid})\n`);
      return 0;
    }
  }
  process.stderr.write(`runner watch error: the daemon (pid ${running.pid}) did not exit within 10 s\n`);
  return 1;
}

async function status(workspace: string, values: Values): Promise<number> {
  const running = await ask<DaemonStatus>(fsMonitorSocket(workspace), 'status');
  if (values['json']) {
    const { id: _, ...fields } = running ?? { id: 0 };
    process.stdout.write(JSON.stringify(running ? { running: true, ...fields } : { running: false, workspace }, null, 2) + '\n');
    return 0;
  }
  if (!running) {
    process.stdout.write(`no watch daemon for ${workspace} (start one with: runner watch start)\n`);
    return 0;
  }
  const c = running.counts;
  const lines = [
    `watch daemon for ${workspace}: running (pid ${running.pid}) since ${running.startedAt}`,
    `  watching ${folders(running.watches)} below: ${running.roots.join(', ')}`,
    ...(running.excluded.length ? [`  not watched: ${running.excluded.join(', ')}`] : []),
    `  events ${c['events']}, queries ${c['queries']} (unchanged ${c['unchanged']}, changed ${c['changed']}, unknown ${c['unknown']}), started over ${c['resets']} times`,
    ...(running.lastReset ? [`  last started over at ${running.lastReset.at}: ${running.lastReset.reason}`] : []),
    ...(running.failure ? [`  cannot answer: ${running.failure}`] : []),
    `  socket ${running.socket}; exits after ${running.idleHours} h without a query`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

export async function watchCommand(positionals: string[], values: Values): Promise<number> {
  const [action, ...extra] = positionals;
  if (action === undefined || !(action in WATCH_HELP)) {
    const actions = Object.keys(WATCH_HELP);
    fail(action === undefined ? `watch needs an action: ${actions.join(', ')}` : `unknown watch action "${action}"${didYouMean(action, actions)}; actions: ${actions.join(', ')}`);
  }
  if (values['help']) {
    process.stdout.write(WATCH_HELP[action] + '\n');
    return 0;
  }
  if (extra.length) fail(`watch ${action} takes no arguments, got "${extra[0]}"`);
  const workspace = workspaceOf(values);
  if (action === 'start') return start(workspace, values);
  if (action === 'stop') return stop(workspace);
  return status(workspace, values);
}
