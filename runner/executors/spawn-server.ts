// Starts stage processes from a small long-lived helper process instead of from the runner itself.
//
// Why: Node's child_process (libuv) fork()s the whole runner and blocks its event loop until the child has
// exec'd. On a loaded 2-core machine that wait is the cost of a trivial stage: 1000 `touch` stages took 5-9 s
// through child_process against 2-3 s through this helper (bench:runner-peers, fanin-1000). The helper is a
// few lines of Python whose os.posix_spawn is glibc's vfork-based one (no page tables copied, the child runs
// at once), and the runner's thread never waits on it.
//
// Protocol: JSON lines. Requests on the helper's stdin:
//   {"op": "spawn", "id": 1, "argv": [...], "env": {...}, "log": "/abs/log", "header": "$ ...\n"}
//   {"op": "kill", "id": 1, "signal": 15}
// Replies on its stdout: {"ready": true} once, then per request {"id": 1, "error": "...", "errno": 2} (not
// started) or, when it ended, {"id": 1, "exit": 0} (a negative exit is the signal that ended the process;
// "logError" is added when the output could not be written to the log).
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

const HELPER_SOURCE = String.raw`
import errno, json, os, select, signal, sys
def usable():
    if not all(hasattr(os, name) for name in ('posix_spawn', 'pidfd_open', 'waitstatus_to_exitcode')) or not hasattr(signal, 'pidfd_send_signal'):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))  # the kernel may lack it (Linux < 5.3)
        return True
    except OSError:
        return False
out = sys.stdout.buffer
if not usable():
    out.write(b'{"ready": false}\n'); out.flush(); sys.exit(0)
# Ctrl-C and a TERM of the process group are for the runner, which then asks for its stages to be killed.
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
RESET = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM)
def find(program, path):
    if '/' in program:
        return program
    for folder in path.split(':'):
        candidate = os.path.join(folder or '.', program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(errno.ENOENT, 'not found')
# One thread, no per-stage threads: posix_spawn (vfork) returns once the child has exec'd, and each child is
# watched through a pidfd in the same epoll set as the requests. A kill goes through the pidfd, which names
# that process and no other, and the pidfd is closed only after the child is reaped: a reused pid is never hit.
poll = select.epoll()
running = {}  # pidfd -> (id, pid, read end of the stage's output pipe, its logs entry)
by_id = {}  # id -> pidfd
logs = {}  # read end -> [log path, header, log fd (None until the first byte), why the log can't be written]
replies = []
closed = set()  # fds closed while handling this poll's events: a later event of the batch names a stale fd
def spawn(request):
    job, argv = request['id'], request['argv']
    # The output goes through a pipe, so the log is created only when the stage writes something: most
    # trivial stages write nothing, and creating a file is slow after mass deletes on this disk.
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        env = request['env']
        pid = os.posix_spawn(find(argv[0], env.get('PATH', '')), argv, env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)], setsigdef=RESET, setsigmask=())
    except OSError as error:
        os.close(r)
        message = 'program not found: ' + argv[0] if error.errno == errno.ENOENT else (error.strerror or str(error)) + ': ' + argv[0]
        return replies.append({'id': job, 'error': message, 'errno': error.errno or 0})
    finally:
        os.close(w)
    os.set_blocking(r, False)
    entry = logs[r] = [request['log'], request['header'].encode(), None, None]
    poll.register(r, select.EPOLLIN)
    pidfd = os.pidfd_open(pid)
    running[pidfd] = (job, pid, r, entry)
    by_id[job] = pidfd
    poll.register(pidfd, select.EPOLLIN)
def close(fd):
    os.close(fd)
    closed.add(fd)
def relay(r):
    # Copies what is in the pipe to the log (opened, header first, at the first byte); closes both at EOF.
    entry = logs[r]
    while True:
        try:
            data = os.read(r, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            poll.unregister(r)
            close(r)
            if entry[2] is not None:
                os.close(entry[2])
            del logs[r]
            return
        if entry[3] is not None:
            continue  # the log can't be written: drained, so the stage does not block; told with its exit
        try:
            if entry[2] is None:
                entry[2] = os.open(entry[0], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                data = entry[1] + data
            view = memoryview(data)
            while view:
                view = view[os.write(entry[2], view):]
        except OSError as error:
            entry[3] = 'cannot write the log ' + entry[0] + ': ' + (error.strerror or str(error))
def reap(pidfd):
    job, pid, r, entry = running.pop(pidfd)
    del by_id[job]
    poll.unregister(pidfd)
    status = os.waitpid(pid, 0)[1]
    close(pidfd)
    # What the stage wrote before it ended is in the log before its exit is told (a background child that
    # keeps the pipe open is relayed on, after the reply).
    if r in logs:
        relay(r)
    reply = {'id': job, 'exit': os.waitstatus_to_exitcode(status)}
    if entry[3] is not None:
        reply['logError'] = entry[3]
    replies.append(reply)
def handle(request):
    if request['op'] == 'spawn':
        spawn(request)
    elif request['id'] in by_id:
        try:
            signal.pidfd_send_signal(by_id[request['id']], request['signal'])
        except ProcessLookupError:
            pass  # it has just ended; its exit is on the way
stdin = sys.stdin.fileno()
poll.register(stdin, select.EPOLLIN)
out.write(b'{"ready": true}\n'); out.flush()
pending = b''
runner_gone = False
while True:
    if runner_gone and not logs and not running:
        sys.exit(0)
    closed.clear()
    for fd, _ in poll.poll():
        if fd in closed:
            continue
        if fd in running:
            reap(fd)
        elif fd in logs:
            relay(fd)
        elif fd == stdin and not runner_gone:
            data = os.read(stdin, 1 << 16)
            if not data:
                # The runner is gone: running stages are left alone (as a killed runner's children would be),
                # their output still relayed to their logs until they close it.
                runner_gone = True
                poll.unregister(stdin)
                continue
            lines = (pending + data).split(b'\n')
            pending = lines.pop()
            for line in lines:
                handle(json.loads(line))
    if replies and not runner_gone:
        try:
            out.write(b''.join(json.dumps(r).encode() + b'\n' for r in replies)); out.flush()
        except BrokenPipeError:
            runner_gone = True
    replies.clear()
`;

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
  | { kind: 'exited'; exitCode: number }
  | { kind: 'signalled'; signal: string }
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
    const helper = spawn(python, ['-I', '-S', '-c', HELPER_SOURCE], { cwd, stdio: ['pipe', 'pipe', 'inherit'] }) as unknown as Helper;
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
      } else if ('exit' in reply && reply.logError !== undefined) {
        this.settle(reply.id, { kind: 'not-started', message: `its output was lost: ${reply.logError}` });
      } else if ('exit' in reply) {
        const signal = SIGNAL_NAMES.get(-reply.exit) ?? `signal ${-reply.exit}`;
        this.settle(reply.id, reply.exit >= 0 ? { kind: 'exited', exitCode: reply.exit } : { kind: 'signalled', signal });
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
