// `runner gc`: drops cache objects that no lock file and no run-cache entry references. The lock files are
// found beside the workspace's pipeline files (`x.yaml` -> `x.lock`), skipping node_modules, .git and .runner.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readLock } from '../../cache/lockfile.js';
import { RunCache } from '../../cache/run-cache.js';
import { Store } from '../../cache/store.js';
import type { ContentHash } from '../../cache/types.js';
import type { Values } from '../cli.js';
import { displayPath } from '../spec/pipeline.js';
import { findWorkspace, runnerDirs } from '../workspace.js';

const SKIP = new Set(['node_modules', '.git', '.runner', 'dist']);

function lockFiles(dir: string, depth: number, found: string[]): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && !SKIP.has(entry.name) && depth > 0) lockFiles(join(dir, entry.name), depth - 1, found);
    else if (entry.isFile() && entry.name.endsWith('.lock')) {
      const base = join(dir, entry.name.slice(0, -'.lock'.length));
      if (existsSync(base + '.yaml') || existsSync(base + '.yml')) found.push(join(dir, entry.name));
    }
  }
  return found;
}

export async function gcCommand(values: Values): Promise<number> {
  if (typeof values['remote'] === 'string') return (await import('./gc-remote.js')).gcRemoteCommand(values['remote'], values);
  const workspace = typeof values['workspace'] === 'string' ? resolve(values['workspace']) : findWorkspace(join(process.cwd(), 'x'));
  const cacheDir = process.env['RUNNER_CACHE_DIR'] ? resolve(process.env['RUNNER_CACHE_DIR']) : runnerDirs(workspace).defaultCache;
  const keep: ContentHash[] = [];
  const locks = lockFiles(workspace, 4, []);
  for (const file of locks) for (const entry of Object.values(readLock(file))) keep.push(...entry.outs.map((o) => o.hash));
  let runs = 0;
  const runCache = new RunCache(cacheDir);
  // The journals of finished runs become one file per record here, not during runs (see cache/run-journal.ts).
  if (!values['dry-run']) runCache.compact();
  for (const record of runCache.all()) {
    runs++;
    keep.push(...record.outs.map((o) => o.hash));
  }
  const store = new Store(cacheDir);
  if (values['dry-run']) {
    process.stdout.write(`would keep the objects of ${locks.length} lock files and ${runs} run-cache entries in ${displayPath(cacheDir)}\n`);
    return 0;
  }
  const { removedObjects, freedBytes } = await store.gc(keep);
  if (values['json']) {
    process.stdout.write(JSON.stringify({ cacheDir, lockFiles: locks.map(displayPath), runs, removedObjects, freedBytes }) + '\n');
  } else {
    process.stdout.write(`removed ${removedObjects} objects (${(freedBytes / 1e6).toFixed(1)} MB) from ${displayPath(cacheDir)}; kept those of ${locks.length} lock files and ${runs} run-cache entries\n`);
  }
  return 0;
}
