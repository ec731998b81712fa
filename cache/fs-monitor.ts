// The client side of the watch daemon (runner/watch/daemon.ts, `runner watch start`): asks "did anything
// below this directory change since token T?" so a warm check can reuse a directory's remembered hash
// without a single readdir or lstat. The design is git's fsmonitor protocol:
//
//   - A token is "<daemon instance id>:<event sequence number>". The stat cache keeps, with each directory
//     record, the token the daemon gave *before* the walk that made the record: every change after that
//     token is an event with a larger sequence number.
//   - The daemon answers a query only after it has read its own cookie file's creation event, so every
//     change that finished before the query is in its log (one inotify queue, first in first out).
//   - "unknown" (another instance, a reset after a queue overflow or a replaced root, a directory it does not
//     watch, history it no longer keeps) and any failure to answer mean: walk, as without a daemon.
//
// Nothing here is needed for correctness: no socket, a refused connection, a bad reply or no reply within
// RUNNER_FSMONITOR_TIMEOUT_MS (default 20 ms) turn the client off for the rest of the process, with one
// line on stderr when RUNNER_DEBUG names fsmonitor.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The daemon's answer to a query about one directory. */
export interface MonitorAnswer {
  /** The token to remember with a walk made now; absent when the daemon cannot vouch for this directory. */
  token?: string;
  /** True only when the daemon saw no change at, above or below the directory since the given token. */
  unchanged: boolean;
  /** Why the answer is not "unchanged": the changed paths (a few), or why the daemon does not know. */
  why: string;
}

export interface FsMonitor {
  /** The daemon's answer, or undefined when no daemon answered (walk, and remember no token). */
  query(dirAbs: string, since: string | undefined): Promise<MonitorAnswer | undefined>;
}

/** Wire format, one JSON object per line each way. */
export interface QueryRequest {
  op: 'query';
  id: number;
  dir: string;
  since: string | null;
}
export interface QueryReply {
  id: number;
  token?: string;
  /** Present when the daemon knows: the changed paths related to the directory (at most 20), and how many. */
  changed?: string[];
  count?: number;
  /** Present when it does not. */
  unknown?: string;
}

/** Unix socket paths are limited to 107 bytes (sun_path); a deep workspace gets one in the temp dir. */
const SUN_PATH_MAX = 107;

/** Where the daemon of a workspace (its real path) listens. */
export function fsMonitorSocket(workspaceReal: string): string {
  const inWorkspace = join(workspaceReal, '.runner', 'fsmonitor.sock');
  if (Buffer.byteLength(inWorkspace) <= SUN_PATH_MAX) return inWorkspace;
  const id = createHash('sha256').update(workspaceReal).digest('hex').slice(0, 16);
  return join(tmpdir(), `runner-fsmonitor-${id}.sock`);
}

export function debugEnabled(): boolean {
  return /\bfsmonitor\b|^1$|^\*$/.test(process.env['RUNNER_DEBUG'] ?? '');
}

export function debugLine(text: string): void {
  if (debugEnabled()) process.stderr.write(`runner: fsmonitor: ${text}\n`);
}

function timeoutMs(): number {
  const value = Number(process.env['RUNNER_FSMONITOR_TIMEOUT_MS']);
  return Number.isFinite(value) && value > 0 ? value : 20;
}

/** A client of the daemon of `workspace`; connects on the first query, and never again after a failure. */
export class FsMonitorClient implements FsMonitor {
  private socket: Socket | undefined;
  private connecting: Promise<Socket | undefined> | undefined;
  private off = false;
  private nextId = 1;
  private buffered = '';
  private readonly waiting = new Map<number, (reply: QueryReply | undefined) => void>();

  constructor(private readonly workspace: string) {}

  private turnOff(why: string): undefined {
    if (!this.off) debugLine(`${why}: walking as without a daemon`);
    this.off = true;
    this.socket?.destroy();
    for (const resolve of this.waiting.values()) resolve(undefined);
    this.waiting.clear();
    return undefined;
  }

  private connect(): Promise<Socket | undefined> {
    this.connecting ??= new Promise((resolve) => {
      let path: string;
      try {
        path = fsMonitorSocket(realpathSync.native(this.workspace));
      } catch {
        resolve(this.turnOff('workspace not found'));
        return;
      }
      if (!existsSync(path)) {
        resolve(this.turnOff('no watch daemon (runner watch start)'));
        return;
      }
      const socket = createConnection(path);
      socket.setEncoding('utf8');
      socket.once('connect', () => {
        socket.unref(); // an idle connection never keeps the runner alive
        this.socket = socket;
        resolve(socket);
      });
      socket.on('error', (error) => resolve(this.turnOff(`watch daemon unreachable (${error.message})`)));
      socket.on('close', () => resolve(this.turnOff('watch daemon closed the connection')));
      socket.on('data', (chunk: string) => this.receive(chunk));
    });
    return this.connecting;
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    for (let newline = this.buffered.indexOf('\n'); newline >= 0; newline = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      let reply: QueryReply;
      try {
        reply = JSON.parse(line) as QueryReply;
      } catch {
        this.turnOff('unreadable reply from the watch daemon');
        return;
      }
      const resolve = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      resolve?.(reply);
    }
  }

  async query(dirAbs: string, since: string | undefined): Promise<MonitorAnswer | undefined> {
    if (this.off) return undefined;
    const limit = timeoutMs();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limit);
    });
    try {
      const socket = await Promise.race([this.connect(), timeout]);
      if (socket === 'timeout') return this.turnOff(`no connection within ${limit} ms`);
      if (!socket) return undefined;
      const id = this.nextId++;
      const reply = new Promise<QueryReply | undefined>((resolve) => this.waiting.set(id, resolve));
      const request: QueryRequest = { op: 'query', id, dir: dirAbs, since: since ?? null };
      socket.write(JSON.stringify(request) + '\n');
      const answer = await Promise.race([reply, timeout]);
      if (answer === 'timeout') return this.turnOff(`no answer within ${limit} ms (RUNNER_FSMONITOR_TIMEOUT_MS)`);
      if (!answer) return undefined;
      return interpret(answer);
    } finally {
      clearTimeout(timer);
    }
  }
}

function interpret(reply: QueryReply): MonitorAnswer {
  const token = typeof reply.token === 'string' ? reply.token : undefined;
  if (typeof reply.unknown === 'string' || !Array.isArray(reply.changed)) {
    return { ...(token ? { token } : {}), unchanged: false, why: `unknown: ${reply.unknown ?? 'malformed reply'}` };
  }
  const count = typeof reply.count === 'number' ? reply.count : reply.changed.length;
  const unchanged = count === 0 && reply.changed.length === 0 && token !== undefined;
  return { ...(token ? { token } : {}), unchanged, why: unchanged ? 'unchanged' : `${count} changed, e.g. ${reply.changed.slice(0, 3).join(', ')}` };
}
