// Removing a job array's directory (.runner/tmp/slurm/<pid>-<time>-<n>/) without ever failing the run.
// After a scancel the job script outlives its stage by a moment and still writes its exit code (and slurmstepd
// its "CANCELLED" line) into the directory, so a removal right after the cancel can meet ENOTEMPTY: it is
// retried once the job has had time to end, and what still cannot go is swept by the workspace's next Slurm
// run (one runner per workspace: a directory whose runner pid is gone belongs to nobody).
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../process-alive.js';

/** How long a cancelled job gets to stop writing before the second try. */
export const RETRY_MS = 2000;

function tryRemove(dir: string): boolean {
  try {
    rmSync(dir, { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}

/** Removes `dir` now or, failing that, once more after `retryMs` (a timer that does not hold the process open). */
export function removeBatchDir(dir: string, retryMs = RETRY_MS, remove: (dir: string) => boolean = tryRemove): void {
  if (remove(dir)) return;
  setTimeout(() => remove(dir), retryMs).unref();
}

/** Removes the batch directories of runners that have ended (named `<pid>-…`); returns how many went. */
export function sweepBatchDirs(root: string): number {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !processAlive(pid) && tryRemove(join(root, name))) removed++;
  }
  return removed;
}
