// The watch daemon of `runner watch start` (the client is cache/fs-monitor.ts; the protocol is git's
// fsmonitor design, explained there). One process per workspace, started detached:
//
//   node daemon.js '{"workspace": REAL, "roots": [REAL…], "socket": PATH, "idleHours": N}'
//
// It watches the workspace (less .runner, .git and node_modules) and each dep directory outside it, keeps a
// log of changed paths numbered by a sequence, and answers on a unix socket, one JSON object per line:
//   {"op": "query", "id", "dir", "since"}  ->  {"id", "token", "changed": [...], "count"} | {"id", "token"?, "unknown"}
//   {"op": "status", "id"}                 ->  what it watches, since when, its counts
//   {"op": "stop", "id"}                   ->  {"id", "stopping": true}, then it exits
// Every query is answered only after the daemon has read the creation event of a cookie file it made in
// .runner/fsmonitor/cookies for that query: all the watches share one inotify queue, read in order, so by
// then every change that finished before the query is in the log.
//
// It starts over with a new instance id (every token handed out becomes "unknown") after a queue overflow,
// when a root is removed, moved or replaced, or when its cookie folder goes; it exits when the workspace is
// gone, after `idleHours` without a query, or on SIGTERM/SIGINT.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, read, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { loadInotify, parseEvents } from './inotify-binding.js';
import type { QueryReply, QueryRequest } from '../../cache/fs-monitor.js';
import { related, WatchTree } from './tree.js';

export interface DaemonOptions {
  workspace: string;
  roots: string[];
  socket: string;
  idleHours: number;
}

/** The log keeps at most this many changed paths; a token older than what it keeps is "unknown". */
const MAX_LOG = 200_000;
/** How long a query waits for its cookie's event before answering "unknown". */
const COOKIE_TIMEOUT_MS = 2000;
/** At most this many changed paths are sent back (the count says how many there were). */
const MAX_CHANGED_SENT = 20;

const options = JSON.parse(process.argv[2] ?? '{}') as DaemonOptions;
const stateDir = join(options.workspace, '.runner', 'fsmonitor');
const cookieDir = join(stateDir, 'cookies');
const startedAt = new Date();

const inotify = loadInotify();
const fd = inotify.init();
if (fd < 0) throw new Error(`inotify_init1 failed (errno ${-fd})`);
// RUNNER_FSMONITOR_MAX_WATCHES: a lower watch limit than the kernel's, for the tests of running out of watches.
const tree = new WatchTree(inotify, fd, cookieDir, Number(process.env['RUNNER_FSMONITOR_MAX_WATCHES']) || Infinity);
/** Dep roots outside the workspace: from the lock files at start, and every directory a client asked about. */
const extraRoots = new Set(options.roots);
/** Directories asked about that could not be watched whole (the watch limit): asked again, still "unknown". */
const refused = new Map<string, string>();

let instance = '';
let seq = 0;
/** log[i] is the path changed by event number logStart + i. */
let log: string[] = [];
let logStart = 1;
let lastReset: { reason: string; at: string } | undefined;
let lastActivity = Date.now();
let cookieCounter = 0;
const waitingCookies = new Map<string, (token: string | undefined) => void>();
const counts = { events: 0, resets: 0, queries: 0, unchanged: 0, changed: 0, unknown: 0 };

function say(text: string): void {
  process.stderr.write(`${new Date().toISOString()} watch daemon: ${text}\n`);
}

/** A new instance: every watch added afresh, every token handed out so far "unknown". */
function start(reason: string | undefined): void {
  tree.clear();
  for (const resolve of waitingCookies.values()) resolve(undefined);
  waitingCookies.clear();
  instance = randomBytes(8).toString('hex');
  seq = 0;
  log = [];
  logStart = 1;
  if (reason !== undefined) {
    counts.resets++;
    lastReset = { reason, at: new Date().toISOString() };
    say(`starting over: ${reason}`);
  }
  if (!existsSync(options.workspace)) {
    shutdown('the workspace is gone');
    return;
  }
  if (reason !== undefined && !existsSync(cookieDir)) {
    // Someone removed .runner/ (or the whole workspace, still being deleted): recreating folders now could
    // make their `rm -rf` fail, and the socket went with them.
    shutdown('its folder .runner/fsmonitor was removed');
    return;
  }
  mkdirSync(cookieDir, { recursive: true });
  tree.watchCookies();
  tree.addRoot(options.workspace, true, seq);
  for (const root of extraRoots) {
    if (isDirectory(root)) tree.addRoot(root, false, seq);
    else extraRoots.delete(root);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function record(path: string): void {
  seq++;
  counts.events++;
  log.push(path);
  if (log.length > MAX_LOG) {
    const drop = log.length >> 1;
    log = log.slice(drop);
    logStart += drop;
  }
}

const buffer = Buffer.allocUnsafe(256 << 10);
/** A read(2) is parked on a pool thread; exiting then would hang (libuv joins its pool threads at exit). */
let readPending = false;
let exitCode: number | undefined;

/** Reads the inotify descriptor forever (a blocking read on a pool thread, see inotify-binding.ts). */
function readEvents(): void {
  readPending = true;
  read(fd, buffer, 0, buffer.length, null, (error, bytes) => {
    readPending = false;
    if (exitCode !== undefined) process.exit(exitCode);
    if (error) {
      if (error.code !== 'EINTR' && error.code !== 'EAGAIN') return shutdown(`reading inotify failed: ${error.message}`, 1);
    } else {
      for (const event of parseEvents(buffer, bytes)) {
        const outcome = tree.handle(event);
        if (outcome.kind === 'changed') record(outcome.path);
        else if (outcome.kind === 'reset') start(outcome.reason);
        else if (outcome.kind === 'cookie') waitingCookies.get(outcome.name)?.(`${instance}:${seq}`);
      }
    }
    readEvents();
  });
}

/** A token after every change that finished before this call, or undefined (timeout, reset meanwhile). */
function sync(): Promise<string | undefined> {
  const name = `${process.pid}-${++cookieCounter}`;
  const path = join(cookieDir, name);
  const startedIn = instance;
  return new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => done(undefined), COOKIE_TIMEOUT_MS);
    const done = (token: string | undefined): void => {
      clearTimeout(timer);
      waitingCookies.delete(name);
      rmSync(path, { force: true });
      resolve(startedIn === instance ? token : undefined);
    };
    waitingCookies.set(name, done);
    try {
      writeFileSync(path, '', { flag: 'wx' });
    } catch {
      done(undefined);
    }
  });
}

async function query(request: QueryRequest): Promise<QueryReply> {
  counts.queries++;
  const { id, dir, since } = request;
  const unknown = (why: string, token?: string): QueryReply => {
    counts.unknown++;
    return token === undefined ? { id, unknown: why } : { id, token, unknown: why };
  };
  if (typeof dir !== 'string' || !dir.startsWith('/')) return unknown('not an absolute path');
  let root = tree.rootOf(dir);
  if (!root && refused.has(dir)) return unknown(refused.get(dir)!);
  if (!root && isDirectory(dir)) {
    // Watched from now on; this answer is "unknown", the token below is good for the next one.
    const failure = tree.addRoot(dir, false, seq, true);
    if (failure === undefined) extraRoots.add(dir);
    else refused.set(dir, `not watched: ${failure}`);
    root = tree.rootOf(dir);
  }
  if (!root) return unknown(refused.get(dir) ?? 'not a directory the daemon can watch');
  const token = await sync();
  if (token === undefined) return unknown('no sync with the event queue (cookie timeout, or the daemon started over)');
  // After the sync, so a root swapped for another folder before the question (an ancestor renamed: no event
  // reaches the root's own watch) is seen here; one swapped later is seen by the next question.
  if (!tree.stillThere(root)) {
    start(`watched root ${root.path} now names another directory`);
    return unknown(`${root.path} was replaced`);
  }
  if (tree.failure !== undefined) return unknown(tree.failure);
  if (root.failure !== undefined) return unknown(root.failure);
  const unwatched = tree.unwatchedNear(dir);
  if (unwatched !== undefined) return unknown(`${unwatched} is not watched`);
  if (since === null || typeof since !== 'string') return unknown('no token yet', token);
  const [sinceInstance, sinceSeqText] = since.split(':');
  const sinceSeq = Number(sinceSeqText);
  if (sinceInstance !== instance) return unknown(`the token is from another daemon instance (this one: ${lastReset ? `started over, ${lastReset.reason}` : 'a new daemon'})`, token);
  if (!Number.isInteger(sinceSeq) || sinceSeq > seq) return unknown('malformed token', token);
  if (sinceSeq < root.sinceSeq) return unknown(`${root.path} is watched only since a later token`, token);
  if (sinceSeq < logStart - 1) return unknown('the change log no longer goes back to the token', token);
  const changed: string[] = [];
  let count = 0;
  for (let i = sinceSeq + 1 - logStart; i < log.length; i++) {
    const path = log[i]!;
    if (!related(path, dir)) continue;
    count++;
    if (changed.length < MAX_CHANGED_SENT && !changed.includes(path)) changed.push(path);
  }
  if (count === 0) counts.unchanged++;
  else counts.changed++;
  return { id, token, changed, count };
}

function status(id: number): Record<string, unknown> {
  return {
    id,
    pid: process.pid,
    workspace: options.workspace,
    roots: [...tree.roots.values()].map((r) => r.path),
    excluded: [...tree.excluded],
    watches: tree.watchCount,
    startedAt: startedAt.toISOString(),
    instance,
    seq,
    failure: [tree.failure, ...[...tree.roots.values()].map((r) => r.failure)].filter((f) => f !== undefined).join('; ') || null,
    lastReset: lastReset ?? null,
    counts,
    idleHours: options.idleHours,
    socket: options.socket,
  };
}

function serve(socket: Socket): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      lastActivity = Date.now();
      let request: { op?: string; id?: number } & Partial<QueryRequest>;
      try {
        request = JSON.parse(line) as typeof request;
      } catch {
        socket.end(JSON.stringify({ id: 0, unknown: 'unreadable request' }) + '\n');
        return;
      }
      const id = typeof request.id === 'number' ? request.id : 0;
      if (request.op === 'query') void query(request as QueryRequest).then((reply) => socket.writable && socket.write(JSON.stringify(reply) + '\n'));
      else if (request.op === 'status') socket.write(JSON.stringify(status(id)) + '\n');
      else if (request.op === 'stop') socket.end(JSON.stringify({ id, stopping: true }) + '\n', () => shutdown('asked to stop'));
      else socket.write(JSON.stringify({ id, unknown: `unknown op ${String(request.op)}` }) + '\n');
    }
  });
}

const server = createServer(serve);

let listening = false;

function shutdown(why: string, code = 0): void {
  if (exitCode !== undefined) return;
  say(`exiting: ${why}`);
  if (listening) {
    // Only a daemon that got the socket cleans up: a second one that lost the race leaves the first's files.
    server.close();
    rmSync(options.socket, { force: true });
    rmSync(join(stateDir, 'daemon.json'), { force: true });
  }
  if (!readPending) process.exit(code);
  // Removing the watches queues an IN_IGNORED event per watch, which ends the parked read; its callback
  // exits. Should no event come (no watch left), the process ends itself the hard way.
  exitCode = code;
  tree.clear();
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1000).unref();
}

/** Another daemon already answering on the socket: leave it. A socket file nobody answers on: stale. */
function socketInUse(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(options.socket);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

if (existsSync(options.socket)) {
  if (await socketInUse()) {
    say(`another daemon already answers on ${options.socket}`);
    process.exit(3);
  }
  rmSync(options.socket, { force: true });
}
start(undefined);
readEvents();
server.listen(options.socket, () => {
  listening = true;
  chmodSync(options.socket, 0o600); // the socket may be in the shared temp dir
  writeFileSync(join(stateDir, 'daemon.json'), JSON.stringify({ pid: process.pid, socket: options.socket, startedAt: startedAt.toISOString() }) + '\n');
  say(`watching ${[...tree.roots.keys()].join(', ')} (${tree.watchCount} directories), socket ${options.socket}`);
});
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
server.on('error', (error) => shutdown(`the socket failed: ${error.message}`));
const idleMs = options.idleHours * 3600_000;
setInterval(() => {
  if (!existsSync(options.workspace)) shutdown('the workspace is gone');
  else if (!existsSync(options.socket)) shutdown('its socket file was removed');
  else if (Date.now() - lastActivity > idleMs) shutdown(`idle for ${options.idleHours} h`);
}, Math.min(60_000, Math.max(100, idleMs / 4)));
