// Failures are values: a union tagged with a kebab-case `reason`. Printers switch on it and end in
// unreachable(), so a new kind of failure doesn't compile until every printer can explain it.
import { durationText } from './duration-text.js';

export type Failure =
  | { reason: 'exit-non-zero'; exitCode: number }
  | { reason: 'killed'; signal: string }
  | { reason: 'timeout'; timeoutMs: number }
  | { reason: 'spawn-failed'; message: string }
  | { reason: 'cancelled' }
  /** A cluster scheduler ended the job (Slurm: TIMEOUT, OUT_OF_MEMORY, NODE_FAIL…); `detail` says why in words. */
  | { reason: 'job-killed'; scheduler: string; jobId: string; state: string; detail: string }
  | { reason: 'missing-output'; path: string }
  | { reason: 'missing-dependency'; path: string }
  | { reason: 'cache-error'; message: string }
  | { reason: 'dependency-failed'; dependency: string }
  | { reason: 'not-started'; after: string };

export function unreachable(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}

/** What an exit code usually means, for the codes people meet. */
export function explainExitCode(code: number): string {
  if (code === 137) return 'killed by SIGKILL, probably out of memory';
  if (code === 143) return 'terminated by SIGTERM';
  if (code === 130) return 'interrupted (SIGINT)';
  if (code === 139) return 'segmentation fault';
  if (code === 134) return 'aborted (SIGABRT)';
  if (code === 127) return 'command not found';
  if (code === 126) return 'command not executable';
  return '';
}

const SIGNALS: Record<string, string> = {
  SIGKILL: 'probably out of memory, or killed by hand',
  SIGTERM: 'terminated',
  SIGINT: 'interrupted',
  SIGSEGV: 'segmentation fault',
  SIGABRT: 'aborted',
};

/** One line for a person. */
export function describeFailure(failure: Failure): string {
  switch (failure.reason) {
    case 'exit-non-zero': {
      const meaning = explainExitCode(failure.exitCode);
      return `exited with code ${failure.exitCode}${meaning ? ` (${meaning})` : ''}`;
    }
    case 'killed':
      return `killed by ${failure.signal}${SIGNALS[failure.signal] ? ` (${SIGNALS[failure.signal]})` : ''}`;
    case 'timeout':
      return `timed out after ${durationText(failure.timeoutMs)}`;
    case 'spawn-failed':
      return `could not start: ${failure.message}`;
    case 'cancelled':
      return 'cancelled';
    case 'job-killed':
      return `${failure.scheduler} job ${failure.jobId} ended ${failure.state}: ${failure.detail}`;
    case 'missing-output':
      return `exited 0 but did not write its declared out "${failure.path}"`;
    case 'missing-dependency':
      return `dep "${failure.path}" does not exist and no stage writes it`;
    case 'cache-error':
      return `cache error: ${failure.message}`;
    case 'dependency-failed':
      return `not run: upstream stage ${failure.dependency} failed`;
    case 'not-started':
      return `not run: the run stopped after ${failure.after} failed (use --keep-going to run independent stages)`;
    default:
      return unreachable(failure);
  }
}
