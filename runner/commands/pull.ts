// `runner pull <pipeline>`: downloads what the lock file references (each stage's run record into the local
// run-cache, its outs' objects into the store, every object re-hashed) and restores the workspace's outs that
// are missing or differ. Exit 1 when some out could not be restored.
import { hashPath, MissingPathError } from '../../cache/hash.js';
import type { LockEntry, PathHash } from '../../cache/types.js';
import type { Values } from './values.js';
import { fail } from '../spec/diagnostics.js';
import { loadPipeline } from '../spec/pipeline.js';
import { lockWorkspace } from '../workspace-lock.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';
import { openTransfer, remoteSettings } from './remote.js';
import { RemoteOutsRestore } from '../../cache/remote/restore-outs.js';

export async function pullCommand(file: string, values: Values): Promise<number> {
  const pipeline = await loadPipeline(file, loadOptions(values));
  const settings = remoteSettings(values, pipeline);
  if (!settings) fail('runner pull needs a remote: --remote URL, RUNNER_REMOTE or the pipeline\'s cache.remote.url');
  const release = await lockWorkspace(pipeline.workspace);
  try {
    const ctx = await openContext(pipeline);
    const transfer = await openTransfer(settings, ctx);
    if (!transfer) return 1;
    let restored = 0;
    let current = 0;
    const unavailable: string[] = [];
    const upToDate = async (out: PathHash): Promise<boolean> => {
      try {
        return (await hashPath(pipeline.workspace, out.path, ctx.statCache)).hash === out.hash;
      } catch (error) {
        if (error instanceof MissingPathError) return false;
        throw error;
      }
    };
    const pullStage = async (stage: string, entry: LockEntry): Promise<void> => {
      const outOf = (out: PathHash): string => `${out.path}\0${out.hash}`;
      const stale = new Set<string>();
      for (const out of entry.outs) {
        if (await upToDate(out)) current++;
        else stale.add(outOf(out));
      }
      // A directory out that arrives in a pack is built while it downloads (cache/remote/restore-outs.ts).
      const restore = new RemoteOutsRestore(ctx.store, pipeline.workspace, ctx.statCache, (out) => stale.has(outOf(out)));
      try {
        let fetched = false;
        if (!ctx.runCache.get(entry.key)) {
          const record = await transfer.fetchRecord(entry.key, entry.outs.map((o) => o.path), restore);
          if (record) ctx.runCache.put(record);
          // The record's outs are in the store now: asking again would re-check every object of each.
          fetched = record !== undefined && entry.outs.every((out) => record.outs.some((o) => o.path === out.path && o.hash === out.hash));
        }
        if (!fetched && !(await transfer.fetchOuts(entry.outs, restore))) {
          unavailable.push(stage);
          return;
        }
        const outs = await restore.restore(entry.outs);
        restored += outs;
      } finally {
        await restore.discard();
      }
    };
    await Promise.all(Object.entries(ctx.lock).map(([stage, entry]) =>
      pullStage(stage, entry).catch((error: Error) => {
        process.stderr.write(`warning: ${stage}: ${error.message}\n`);
        unavailable.push(stage);
      })));
    ctx.statCache.save();
    ctx.runCache.close();
    transfer.close();
    const missing = unavailable.length ? `; not available: ${unavailable.sort().join(', ')}` : '';
    process.stdout.write(`restored ${restored} outs, ${current} already up to date${missing}\n${transfer.summary()}\n`);
    return unavailable.length ? 1 : 0;
  } finally {
    await release();
  }
}
