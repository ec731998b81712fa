// Opens what plan/run/status need around a loaded pipeline: the store, run-cache, stat cache and lock entries.
import { readLock, LockFileError } from '../../cache/lockfile.js';
import { RunCache } from '../../cache/run-cache.js';
import { StatCache } from '../../cache/stat-cache.js';
import { Store } from '../../cache/store.js';
import { fail } from '../spec/diagnostics.js';
import { displayPath, type Pipeline } from '../spec/pipeline.js';
import type { PlanContext } from '../plan.js';
import { runnerDirs } from '../workspace.js';

export function openContext(pipeline: Pipeline): PlanContext {
  let lock;
  try {
    lock = readLock(pipeline.lockFile);
  } catch (cause) {
    if (cause instanceof LockFileError) fail(`${cause.message.replace(pipeline.lockFile, displayPath(pipeline.lockFile))}`);
    throw cause;
  }
  return {
    pipeline,
    store: new Store(pipeline.cacheDir, { link: pipeline.linkMode }),
    runCache: new RunCache(pipeline.cacheDir),
    statCache: StatCache.load(runnerDirs(pipeline.workspace).statCache),
    lock,
  };
}
