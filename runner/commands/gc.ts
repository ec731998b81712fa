// `runner gc`: drops cache objects that no lock file and no run-cache entry references. The pipelines are
// found by their lock files (runner/pipeline-files.ts); each cache directory they use (`cache: {dir}`, or
// RUNNER_CACHE_DIR, or .runner/cache) is collected once, keeping what any lock file references. Also removes
// the restore temps of runners that were killed (cache/restore-temps.ts).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { readLock } from '../../cache/lockfile.js';
import { sweepRestoreTemps } from '../../cache/restore-temps.js';
import { RunCache } from '../../cache/run-cache.js';
import { Store } from '../../cache/store.js';
import type { ContentHash } from '../../cache/types.js';
import type { Values } from './values.js';
import { pipelinesWithLocks } from '../pipeline-files.js';
import { processAlive } from '../process-alive.js';
import { displayPath } from '../spec/pipeline.js';
import { cacheDirFor, findWorkspace, runnerDirs } from '../workspace.js';

/** A pipeline's `cache: {dir}`, read leniently: a pipeline that does not parse uses the default. */
function configuredCacheDir(pipeline: string): string | undefined {
  try {
    const dir = (parse(readFileSync(pipeline, 'utf8')) as { cache?: { dir?: unknown } } | null)?.cache?.dir;
    return typeof dir === 'string' ? dir : undefined;
  } catch {
    return undefined;
  }
}

export async function gcCommand(values: Values): Promise<number> {
  if (typeof values['remote'] === 'string') return (await import('./gc-remote.js')).gcRemoteCommand(values['remote'], values);
  const workspace = typeof values['workspace'] === 'string' ? resolve(values['workspace']) : findWorkspace(join(process.cwd(), 'x'));
  const pipelines = pipelinesWithLocks(workspace);
  // Every lock file's outs are kept in every cache directory: an object two pipelines share is never lost.
  const keep: ContentHash[] = [];
  for (const { lock } of pipelines) for (const entry of Object.values(readLock(lock))) keep.push(...entry.outs.map((o) => o.hash));
  const cacheDirs = new Set(pipelines.length > 0 ? pipelines.map(({ pipeline }) => cacheDirFor(workspace, configuredCacheDir(pipeline))) : [cacheDirFor(workspace)]);
  const locks = pipelines.map(({ lock }) => lock);
  for (const cacheDir of cacheDirs) {
    const kept = [...keep];
    let runs = 0;
    const runCache = new RunCache(cacheDir);
    // The journals of finished runs become one file per record here, not during runs (see cache/run-journal.ts).
    if (!values['dry-run']) runCache.compact();
    for (const record of runCache.all()) {
      runs++;
      kept.push(...record.outs.map((o) => o.hash));
    }
    if (values['dry-run']) {
      process.stdout.write(`would keep the objects of ${locks.length} lock files and ${runs} run-cache entries in ${displayPath(cacheDir)}\n`);
      continue;
    }
    const { removedObjects, freedBytes } = await new Store(cacheDir).gc(kept);
    if (values['json']) {
      process.stdout.write(JSON.stringify({ cacheDir, lockFiles: locks.map(displayPath), runs, removedObjects, freedBytes }) + '\n');
    } else {
      process.stdout.write(`removed ${removedObjects} objects (${(freedBytes / 1e6).toFixed(1)} MB) from ${displayPath(cacheDir)}; kept those of ${locks.length} lock files and ${runs} run-cache entries\n`);
    }
  }
  if (!values['dry-run']) sweepRestoreTemps(workspace, runnerDirs(workspace).restoreLedgers, processAlive);
  return 0;
}
