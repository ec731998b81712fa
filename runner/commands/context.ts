// Opens what plan/run/status need around a loaded pipeline: the store, run-cache, stat cache and lock entries.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { FsMonitorClient } from '../../cache/fs-monitor.js';
import { RunCache } from '../../cache/run-cache.js';
import { StatCache } from '../../cache/stat-cache.js';
import { Store } from '../../cache/store.js';
import type { LockEntry } from '../../cache/types.js';
import { fail } from '../spec/diagnostics.js';
import { displayPath, type Pipeline } from '../spec/pipeline.js';
import type { PlanContext } from '../plan.js';
import { runnerDirs } from '../workspace.js';

/**
 * The lock file's entries. Parsing a 1000-stage YAML lock costs more than the rest of a no-op status, so the
 * parsed entries are kept in `.runner/tmp/locks/` beside the sha256 of the text they came from; the YAML
 * parser is loaded only when the lock file changed.
 */
async function readLockCached(pipeline: Pipeline): Promise<Record<string, LockEntry>> {
  let text: Buffer;
  try {
    text = readFileSync(pipeline.lockFile);
  } catch {
    return {};
  }
  const digest = createHash('sha256').update(text).digest('hex');
  const dir = join(runnerDirs(pipeline.workspace).tmp, 'locks');
  const sidecar = join(dir, createHash('sha256').update(pipeline.lockFile).digest('hex').slice(0, 32) + '.json');
  try {
    const cached = JSON.parse(readFileSync(sidecar, 'utf8')) as { sha256: string; entries: Record<string, LockEntry> };
    if (cached.sha256 === digest) return cached.entries;
  } catch {
    // no sidecar yet, or an unreadable one: parse the lock file
  }
  const { readLock, LockFileError } = await import('../../cache/lockfile.js');
  let entries: Record<string, LockEntry>;
  try {
    entries = readLock(pipeline.lockFile);
  } catch (cause) {
    if (cause instanceof LockFileError) fail(cause.message.replace(pipeline.lockFile, displayPath(pipeline.lockFile)));
    throw cause;
  }
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic.sync(sidecar, JSON.stringify({ sha256: digest, entries }));
  } catch {
    // best effort: only speed is lost
  }
  return entries;
}

export async function openContext(pipeline: Pipeline): Promise<PlanContext> {
  const statCache = StatCache.load(runnerDirs(pipeline.workspace).statCache);
  // The watch daemon of `runner watch start`, if one runs: lets a warm check skip walking unchanged trees.
  statCache.monitor = new FsMonitorClient(pipeline.workspace);
  return {
    pipeline,
    store: new Store(pipeline.cacheDir, { link: pipeline.linkMode, ledgerDir: runnerDirs(pipeline.workspace).restoreLedgers }),
    runCache: new RunCache(pipeline.cacheDir),
    statCache,
    lock: await readLockCached(pipeline),
  };
}
