// Runs a stage as a child process on this machine: argv as given (no shell unless the stage asked for one),
// output appended to the stage's log file, a timeout, and cancellation that escalates from SIGTERM to
// SIGKILL. Processes are started through the spawn helper (spawn-server.ts and runner/speedups/spawn-helper.py:
// faster per stage than forking the runner); where it can't run, or with RUNNER_SPAWN=node, through execa.
import { closeSync, openSync, writeSync } from 'node:fs';
import { relative } from 'node:path';
import type { Executor, ExecFailure, StageJob, StageOutcome } from './executor.js';
import { MAX_TIMER_MS } from '../spec/units.js';
import { SpawnServer, type SpawnExit } from './spawn-server.js';

/** How long a cancelled or timed-out stage gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 5000;

/** The spawn helper's words for a log it could not write because the disk is full (strerror of ENOSPC). */
const DISK_FULL = /No space left on device|ENOSPC/;

/**
 * setTimeout for any delay: Node fires a timer of more than 2^31-1 ms (~24.8 days) at once, so a long delay is
 * waited out in chunks of at most MAX_TIMER_MS.
 */
export function longTimeout(callback: () => void, delayMs: number): { clear(): void } {
  let handle: NodeJS.Timeout;
  const due = Date.now() + delayMs;
  const arm = (): void => {
    const left = due - Date.now();
    handle = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(callback, Math.max(0, left));
  };
  arm();
  return { clear: () => clearTimeout(handle) };
}

/** One helper per cwd (in a run: the workspace), started on first use; undefined where it can't run. */
const servers = new Map<string, Promise<SpawnServer | undefined>>();
function spawnServer(cwd: string): Promise<SpawnServer | undefined> {
  if (process.env['RUNNER_SPAWN'] === 'node') return Promise.resolve(undefined);
  let server = servers.get(cwd);
  if (!server) servers.set(cwd, (server = SpawnServer.start(cwd)));
  return server;
}

/** Starts the helper for stages running in `cwd` now, so python's start-up overlaps the run's own. */
export function warmUpLocalExecutor(cwd: string): void {
  void spawnServer(cwd);
}

export class LocalExecutor implements Executor {
  readonly name = 'local';

  async run(job: StageJob, signal: AbortSignal): Promise<StageOutcome> {
    const started = performance.now();
    const [file, args] = job.shell ? ['/bin/sh', ['-c', job.argv[0] ?? '']] : [job.argv[0] ?? '', job.argv.slice(1)];
    const header = `$ ${job.shell ? `/bin/sh -c ${JSON.stringify(job.argv[0])}` : job.argv.map((a) => JSON.stringify(a)).join(' ')}\n`;
    const helper = await spawnServer(job.cwd);
    const { failure, logError } = helper?.alive ? await viaHelper(helper, job, [file, ...args], header, signal) : { failure: await viaExeca(job, file, args, header, signal) };
    const durationMs = performance.now() - started;
    // The stage ran whether or not its log could be written: its exit decides, and the runner says what was lost.
    if (logError !== undefined) process.stderr.write(`runner: ${job.stage}: its output was lost: ${logError}\n`);
    const lost = logError !== undefined ? { logError } : {};
    return failure ? { ok: false, durationMs, failure, ...lost } : { ok: true, durationMs, ...lost };
  }
}

/** Runs through the spawn helper, which writes the log (header line first) only if the stage writes something. */
async function viaHelper(helper: SpawnServer, job: StageJob, argv: string[], header: string, signal: AbortSignal): Promise<{ failure?: ExecFailure; logError?: string }> {
  if (signal.aborted) return { failure: { reason: 'cancelled' } };
  const child = helper.run({ argv, env: job.env, logFile: job.logFile, logHeader: header });
  let ending: 'cancelled' | 'timeout' | undefined;
  let forceKill: NodeJS.Timeout | undefined;
  const stop = (why: 'cancelled' | 'timeout'): void => {
    if (ending) return;
    ending = why;
    child.kill('SIGTERM');
    forceKill = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  };
  const onAbort = (): void => stop('cancelled');
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = job.timeoutMs !== undefined ? longTimeout(() => stop('timeout'), job.timeoutMs) : undefined;
  let exit: SpawnExit;
  try {
    exit = await child.exit;
  } finally {
    signal.removeEventListener('abort', onAbort);
    timer?.clear();
    clearTimeout(forceKill);
  }
  if (exit.kind === 'not-started') {
    return { failure: DISK_FULL.test(exit.message) ? { reason: 'disk-full', path: relative(job.cwd, job.logFile) } : { reason: 'spawn-failed', message: exit.message } };
  }
  const failure = helperFailure(exit, ending, job);
  return { ...(failure ? { failure } : {}), ...(exit.logError !== undefined ? { logError: exit.logError } : {}) };
}

function helperFailure(exit: Exclude<SpawnExit, { kind: 'not-started' }>, ending: 'cancelled' | 'timeout' | undefined, job: StageJob): ExecFailure | undefined {
  // Like execa: a stage that was being stopped counts as stopped, whatever it exited with.
  if (ending === 'cancelled') return { reason: 'cancelled' };
  if (ending === 'timeout') return { reason: 'timeout', timeoutMs: job.timeoutMs ?? 0 };
  if (exit.kind === 'signalled') return { reason: 'killed', signal: exit.signal };
  return exit.exitCode === 0 ? undefined : { reason: 'exit-non-zero', exitCode: exit.exitCode };
}

/** execa hands the child the log file itself, so here the log always exists (at least its header line). */
async function viaExeca(job: StageJob, file: string, args: string[], header: string, signal: AbortSignal): Promise<ExecFailure | undefined> {
  let log: number;
  try {
    log = openSync(job.logFile, 'a');
    writeSync(log, header);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOSPC') return { reason: 'disk-full', path: relative(job.cwd, job.logFile) };
    throw cause;
  }
  try {
    return await execaOutcome(job, file, args, log, signal);
  } finally {
    closeSync(log);
  }
}

async function execaOutcome(job: StageJob, file: string, args: string[], log: number, signal: AbortSignal): Promise<ExecFailure | undefined> {
  const { execa } = await import('execa');
  // The timeout is the runner's own timer, not execa's: execa's is one setTimeout, which Node fires at once
  // past 2^31-1 ms (~24.8 days), so `timeout: 600h` would kill the stage as it starts.
  const timeout = new AbortController();
  let timedOut = false;
  const timer = job.timeoutMs !== undefined ? longTimeout(() => ((timedOut = true), timeout.abort()), job.timeoutMs) : undefined;
  try {
    const failure = await execaRun(execa, job, file, args, log, AbortSignal.any([signal, timeout.signal]));
    if (timedOut && !signal.aborted) return { reason: 'timeout', timeoutMs: job.timeoutMs ?? 0 };
    return failure;
  } finally {
    timer?.clear();
  }
}

async function execaRun(execa: (typeof import('execa'))['execa'], job: StageJob, file: string, args: string[], log: number, signal: AbortSignal): Promise<ExecFailure | undefined> {
  const result = await execa(file, args, {
    cwd: job.cwd,
    env: job.env,
    extendEnv: false,
    stdin: 'ignore',
    // A raw fd: the child writes straight to the log file, with no pipe through the runner (execa's
    // types only list fds 3-9, its runtime takes any).
    stdout: log as 3,
    stderr: log as 3,
    reject: false,
    cancelSignal: signal,
    forceKillAfterDelay: KILL_GRACE_MS,
  });
  if (!result.failed) return undefined;
  if (result.isCanceled) return { reason: 'cancelled' };
  if (result.signal) return { reason: 'killed', signal: result.signal };
  if (typeof result.exitCode === 'number') return { reason: 'exit-non-zero', exitCode: result.exitCode };
  const cause = result.cause as NodeJS.ErrnoException | undefined;
  const message = cause?.code === 'ENOENT' ? `program not found: ${file}` : (cause?.message ?? result.shortMessage ?? 'unknown error');
  return { reason: 'spawn-failed', message };
}
