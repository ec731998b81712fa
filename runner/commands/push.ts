// `runner push <pipeline>`: uploads every output and run record the lock file references that the remote
// lacks (blobs first, each record last). Exit 1 when anything could not be sent (a run never fails for it).
import { RunCache } from '../../cache/run-cache.js';
import type { LockEntry, RunRecord } from '../../cache/types.js';
import type { Values } from './values.js';
import { fail } from '../spec/diagnostics.js';
import { loadPipeline } from '../spec/pipeline.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';
import { openTransfer, remoteSettings } from './remote.js';

/** The run-cache's record of the entry when it names the same outs, else one made from the lock entry. */
function recordFor(runCache: RunCache, entry: LockEntry): RunRecord {
  const cached = runCache.get(entry.key);
  const sameOuts = (a: LockEntry['outs'], b: LockEntry['outs']): boolean =>
    a.length === b.length && a.every((o) => b.some((p) => p.path === o.path && p.hash === o.hash));
  if (cached && sameOuts(cached.outs, entry.outs)) return cached;
  return { key: entry.key, cmd: entry.cmd, deps: entry.deps, params: entry.params, outs: entry.outs, durationMs: 0, createdAt: new Date().toISOString() };
}

export async function pushCommand(file: string, values: Values): Promise<number> {
  const pipeline = await loadPipeline(file, loadOptions(values));
  const settings = remoteSettings(values, pipeline);
  if (!settings) fail('runner push needs a remote: --remote URL, RUNNER_REMOTE or the pipeline\'s cache.remote.url');
  const ctx = await openContext(pipeline);
  const entries = Object.values(ctx.lock);
  if (entries.length === 0) fail(`${pipeline.file} has no lock file entries to push; run it first`);
  const transfer = await openTransfer(settings, ctx);
  if (!transfer) return 1;
  for (const entry of entries) transfer.schedulePush(recordFor(ctx.runCache, entry));
  const ok = await transfer.settle();
  transfer.close();
  process.stdout.write(`pushed ${entries.length} stage records\n${transfer.summary()}\n`);
  return ok && transfer.stats.errors === 0 ? 0 : 1;
}
