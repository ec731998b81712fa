// Runs a stage as a child process of the runner, with execa: argv as given (no shell unless the stage asked
// for one), output appended to the stage's log file, a timeout, and cancellation that escalates from SIGTERM
// to SIGKILL.
import { closeSync, openSync, writeSync } from 'node:fs';
import { execa } from 'execa';
import type { Executor, StageJob, StageOutcome } from './executor.js';

/** How long a cancelled or timed-out stage gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 5000;

export class LocalExecutor implements Executor {
  readonly name = 'local';

  async run(job: StageJob, signal: AbortSignal): Promise<StageOutcome> {
    const log = openSync(job.logFile, 'a');
    const started = performance.now();
    try {
      writeSync(log, `$ ${job.shell ? `/bin/sh -c ${JSON.stringify(job.argv[0])}` : job.argv.map((a) => JSON.stringify(a)).join(' ')}\n`);
      const [file, args] = job.shell ? ['/bin/sh', ['-c', job.argv[0] ?? '']] : [job.argv[0] ?? '', job.argv.slice(1)];
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
        ...(job.timeoutMs !== undefined ? { timeout: job.timeoutMs } : {}),
      });
      const durationMs = performance.now() - started;
      if (!result.failed) return { ok: true, durationMs };
      if (result.isCanceled) return { ok: false, durationMs, failure: { reason: 'cancelled' } };
      if (result.timedOut) return { ok: false, durationMs, failure: { reason: 'timeout', timeoutMs: job.timeoutMs ?? 0 } };
      if (result.signal) return { ok: false, durationMs, failure: { reason: 'killed', signal: result.signal } };
      if (typeof result.exitCode === 'number') return { ok: false, durationMs, failure: { reason: 'exit-non-zero', exitCode: result.exitCode } };
      const cause = result.cause as NodeJS.ErrnoException | undefined;
      const message = cause?.code === 'ENOENT' ? `program not found: ${file}` : (cause?.message ?? result.shortMessage ?? 'unknown error');
      return { ok: false, durationMs, failure: { reason: 'spawn-failed', message } };
    } finally {
      closeSync(log);
    }
  }
}
