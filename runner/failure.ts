// Failures are values: a union tagged with a kebab-case `reason`. Printers switch on it and end in
// unreachable(), so a new kind of failure doesn't compile until every printer can explain it.
import { durationText } from './duration-text.js';

export type Failure =
  | { reason: 'exit-non-zero'; exitCode: number }
  | { reason: 'killed'; signal: string }
  | { reason: 'timeout'; timeoutMs: number }
  | { reason: 'spawn-failed'; message: string }
  /** The disk filled up while the stage ran: its log (or another file the runner writes for it) is cut short. */
  | { reason: 'disk-full'; path: string }
  | { reason: 'cancelled' }
  /** A cluster scheduler ended the job (Slurm: TIMEOUT, OUT_OF_MEMORY, NODE_FAIL…); `detail` says why in words. */
  | { reason: 'job-killed'; scheduler: string; jobId: string; state: string; detail: string }
  | { reason: 'missing-output'; path: string }
  | { reason: 'missing-dependency'; path: string }
  | { reason: 'cache-error'; message: string }
  /** An out whose parent folders lead out of the workspace: refused before anything is deleted or written. */
  | { reason: 'unsafe-path'; message: string }
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
    case 'disk-full':
      return `the disk is full: cannot write ${failure.path}; free some space and run again`;
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
    case 'unsafe-path':
      return `refused: ${failure.message}`;
    case 'dependency-failed':
      return `not run: upstream stage ${failure.dependency} failed`;
    case 'not-started':
      return `not run: the run stopped after ${failure.after} failed (use --keep-going to run independent stages)`;
    default:
      return unreachable(failure);
  }
}

/** What to do about an error the operating system reported, by its code. */
const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'the disk is full; free some space and run again',
  EDQUOT: 'the disk quota is used up; free some space and run again',
  EACCES: 'permission denied; check the file\'s owner and mode',
  EPERM: 'operation not permitted; check the file\'s owner and mode',
  EROFS: 'the file system is read-only; run in a writable workspace',
  EMFILE: 'too many open files; raise the limit (ulimit -n) or run with fewer --jobs',
  ENFILE: 'too many open files on the system; close some programs or run with fewer --jobs',
  ENOENT: 'no such file or folder',
  EISDIR: 'a folder is where a file was expected',
  ENOTDIR: 'a file is where a folder was expected',
  EIO: 'an input/output error from the disk',
};

/**
 * One line for an error nothing else explained (the CLI's last resort): what failed, the file it concerns, and
 * what to do. An operating-system error is named by its code; anything else is a bug in the runner.
 */
export function describeUnexpected(cause: unknown): string {
  const error = cause instanceof Error ? (cause as NodeJS.ErrnoException) : undefined;
  const code = error?.code;
  if (code && SYSTEM_ERRORS[code]) {
    const where = error.path ? `${error.syscall ? `${error.syscall} ` : ''}${error.path}: ` : '';
    return `${where}${SYSTEM_ERRORS[code]} (${code})`;
  }
  const message = error ? `${error.name}: ${error.message.split('\n')[0]}` : String(cause);
  return `unexpected error: ${message}; this is a bug, please report it with the output of the same command run with RUNNER_DEBUG=1`;
}
