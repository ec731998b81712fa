// Starts stage processes from a small long-lived helper process instead of from the runner itself.
//
// Why: Node's child_process (libuv) fork()s the whole runner and blocks its event loop until the child has
// exec'd. On a loaded 2-core machine that wait is the cost of a trivial stage (figures in the helper's
// header). The helper (runner/speedups/spawn-helper.py, protocol there) is a few lines of Python whose
// os.posix_spawn is glibc's vfork-based one (no page tables copied, the child runs at once), and the runner's
// thread never waits on it.
//
// The child gets what child_process would give it: argv as given (never a shell string), the program found
// on the env's PATH, cwd, the complete env, stdin /dev/null, default signal dispositions, the runner's process
// group; stdout and stderr are one pipe that the helper copies to the log, which it creates (header line
// first) only when the stage writes something: a stage that writes nothing has no log, and a trivial stage
// costs one new file (its out) instead of two. Everything written before the stage ended is in the log when
// its exit is told. A kill goes through the process's pidfd, which the helper closes only after reaping it, so
// a reused pid is never hit. When the runner dies the helper reads EOF and stops taking requests, leaving
// running stages alone (as a killed runner's children would be) and copying their output until they end.
//
// The helper is one thread with one epoll set (requests, the children's pidfds and pipes), and it sends no reply
// between a start and an exit: per stage that is one request, one reply, no thread to create and no lock
// to pass (a thread per stage cost the helper about as much CPU as the `touch` it started).
//
// No python3 (or one without os.pidfd_open: Python < 3.9, Linux < 5.3), or RUNNER_SPAWN=node: the local
// executor spawns through execa instead (local.ts).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:os';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The helper's source, a real file beside the other optional speed-ups (copied into dist/ by the build). */
const HELPER_FILE = fileURLToPath(new URL('../speedups/spawn-helper.py', import.meta.url));

export interface SpawnRequest {
  argv: string[];
  env: Record<string, string>;
  /** stdout and stderr are appended here; created at the first byte (no output, no file). */
  logFile: string;
  /** Written to the log before the first byte of output. */
  logHeader?: string;
}

/** How a spawned process ended. */
export type SpawnExit =
  | { kind: 'exited'; exitCode: number; logError?: string }
  | { kind: 'signalled'; signal: string; logError?: string }
  | { kind: 'not-started'; message: string; code?: string };

export interface SpawnedProcess {
  readonly exit: Promise<SpawnExit>;
  kill(signal: NodeJS.Signals): void;
}

type Reply = { ready: boolean } | { id: number; error: string; errno: number } | { id: number; exit: number; logError?: string };

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

type Helper = ChildProcessByStdio<Socket, Socket, null>;

export class SpawnServer {
  private nextId = 1;
  private readonly jobs = new Map<number, (exit: SpawnExit) => void>();
  private buffered = '';
  private dead: string | undefined;
  private onReady: ((ready: boolean) => void) | undefined;

  private constructor(private readonly helper: Helper) {
    helper.stdout.setEncoding('utf8');
    helper.stdout.on('data', (text: string) => this.receive(text));
    helper.on('exit', (code, signal) => this.died(`the spawn helper exited (${signal ?? `code ${code}`})`));
    helper.on('error', (error) => this.died(`the spawn helper failed: ${error.message}`));
    helper.stdin.on('error', (error) => this.died(`the spawn helper's input failed: ${error.message}`));
  }

  /**
   * Starts a helper whose processes run in `cwd` (one per cwd: posix_spawn has none of its own); undefined
   * when it can't run here (the caller then spawns directly).
   */
  static async start(cwd: string, python = process.env['RUNNER_PYTHON'] ?? 'python3'): Promise<SpawnServer | undefined> {
    // -I -S: no user site, no PYTHON* variables, no site module (the helper needs only the standard library).
    const helper = spawn(python, ['-I', '-S', HELPER_FILE], { cwd, stdio: ['pipe', 'pipe', 'inherit'] }) as unknown as Helper;
    const server = new SpawnServer(helper);
    const ready = await new Promise<boolean>((resolve) => {
      server.onReady = resolve;
      if (server.dead !== undefined) resolve(false);
    });
    if (!ready || server.dead !== undefined) {
      server.dead ??= 'the spawn helper cannot run here';
      helper.kill();
      return undefined;
    }
    server.idle();
    return server;
  }

  /** Whether the helper still takes requests. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  run(request: SpawnRequest): SpawnedProcess {
    const id = this.nextId++;
    const exit = new Promise<SpawnExit>((resolve) => {
      if (this.dead !== undefined) return resolve({ kind: 'not-started', message: this.dead });
      this.jobs.set(id, resolve);
      this.busy();
      this.send({ op: 'spawn', id, argv: request.argv, env: request.env, log: request.logFile, header: request.logHeader ?? '' });
    });
    return {
      exit,
      kill: (signal) => {
        if (this.jobs.has(id)) this.send({ op: 'kill', id, signal: constants.signals[signal] });
      },
    };
  }

  private send(message: object): void {
    this.helper.stdin.write(JSON.stringify(message) + '\n');
  }

  private receive(text: string): void {
    const lines = (this.buffered + text).split('\n');
    this.buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      const reply = JSON.parse(line) as Reply;
      if ('ready' in reply) {
        this.onReady?.(reply.ready);
        this.onReady = undefined;
      } else if ('exit' in reply) {
        // A log that could not be written does not undo the run: the exit is told as it was, with why.
        const logError = reply.logError !== undefined ? { logError: reply.logError } : {};
        const signal = SIGNAL_NAMES.get(-reply.exit) ?? `signal ${-reply.exit}`;
        this.settle(reply.id, reply.exit >= 0 ? { kind: 'exited', exitCode: reply.exit, ...logError } : { kind: 'signalled', signal, ...logError });
      } else if ('error' in reply) {
        this.settle(reply.id, { kind: 'not-started', message: reply.error, ...(reply.errno === constants.errno.ENOENT ? { code: 'ENOENT' } : {}) });
      }
    }
  }

  private settle(id: number, exit: SpawnExit): void {
    const resolve = this.jobs.get(id);
    if (!resolve) return;
    this.jobs.delete(id);
    resolve(exit);
    if (this.jobs.size === 0 && this.dead === undefined) this.idle();
  }

  private died(why: string): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    this.onReady?.(false);
    for (const id of [...this.jobs.keys()]) this.settle(id, { kind: 'not-started', message: why });
  }

  // While a stage runs, the helper and its pipes keep the runner alive; when none runs, they must not.
  private busy(): void {
    this.helper.ref();
    this.helper.stdin.ref();
    this.helper.stdout.ref();
  }

  private idle(): void {
    this.helper.unref();
    this.helper.stdin.unref();
    this.helper.stdout.unref();
  }
}
