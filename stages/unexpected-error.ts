// The stage programs' last resort for an error no stage explained: one line, no stack (RUNNER_DEBUG=1 adds it).
// An operating-system error (it has a code: ENOSPC, EACCES…) is the user's to fix and names its file; anything
// else is a bug in the stage. Stages keep their own copy of this rule: they reach the runner only through the
// stage contract, never by importing it.

export function describeUnexpected(cause: unknown): string {
  const error = cause instanceof Error ? (cause as NodeJS.ErrnoException) : undefined;
  if (error?.code && error.syscall) {
    const where = error.path ? `${error.path}: ` : '';
    return `${where}${error.message.split('\n')[0]} (what to do: ${advice(error.code)})`;
  }
  const message = error ? `${error.name}: ${error.message.split('\n')[0]}` : String(cause);
  return `unexpected error: ${message}; this is a bug, please report it with the output of the same command run with RUNNER_DEBUG=1`;
}

function advice(code: string): string {
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'free some disk space and run again';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'check the file\'s owner, mode and file system';
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return 'check the path';
  return 'check the file and the system, then run again';
}
