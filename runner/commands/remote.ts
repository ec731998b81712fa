// Which remote cache a command uses, and the remote's part in a run. Precedence, strongest first:
// --no-remote, --remote URL, RUNNER_REMOTE, the pipeline's `cache: {remote: {url}}`; pushing: --push,
// RUNNER_REMOTE_PUSH (1/true/yes or 0/false/no), the pipeline's `push` (default false: a run is read-only).
import { openBackend, redactUrl, remoteUrlProblem, RemoteError } from '../../cache/remote/backend.js';
import { RemoteOutsRestore } from '../../cache/remote/restore-outs.js';
import { RemoteTransfer } from '../../cache/remote/transfer.js';
import type { StageRunHooks } from '../stage-run.js';
import type { Values } from './values.js';
import type { PlanContext } from '../plan.js';
import { fail } from '../spec/diagnostics.js';
import type { Pipeline } from '../spec/pipeline.js';

export interface RemoteSettings {
  url: string;
  push: boolean;
}

function flag(name: string, text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off|)$/i.test(text)) return false;
  fail(`${name} expects 1/true/yes or 0/false/no, got "${text}"`);
}

export function remoteSettings(values: Values, pipeline: Pick<Pipeline, 'remote'> | undefined, env: NodeJS.ProcessEnv = process.env): RemoteSettings | undefined {
  if (values['no-remote'] === true) return undefined;
  const url = (typeof values['remote'] === 'string' ? values['remote'] : undefined) ?? (env['RUNNER_REMOTE'] || undefined) ?? pipeline?.remote?.url;
  if (url === undefined) {
    if (values['push'] === true) fail('--push needs a remote: --remote URL, RUNNER_REMOTE or the pipeline\'s cache.remote.url');
    return undefined;
  }
  const problem = remoteUrlProblem(url);
  if (problem) fail(`remote cache: ${problem}`);
  const envPush = env['RUNNER_REMOTE_PUSH'];
  const push = values['push'] === true || (envPush !== undefined ? flag('RUNNER_REMOTE_PUSH', envPush) : pipeline?.remote?.push ?? false);
  return { url, push };
}

/** Opens the remote; a remote that can't be opened (no credentials, say) is a warning and no remote. */
export async function openTransfer(settings: RemoteSettings, ctx: Pick<PlanContext, 'store'>): Promise<RemoteTransfer | undefined> {
  try {
    const backend = await openBackend(settings.url, {
      timeoutMs: Number(process.env['RUNNER_REMOTE_TIMEOUT_MS']) || 30_000,
      connections: 16,
      env: process.env,
    });
    return new RemoteTransfer(backend, ctx.store);
  } catch (error) {
    const message = error instanceof RemoteError ? error.message : redactUrl((error as Error).message);
    process.stderr.write(`warning: remote cache not used: ${message}\n`);
    return undefined;
  }
}

/** StageRun's remote hooks: ask the remote on a local miss; push what ran or was restored when pushing. */
export function remoteStageHooks(transfer: RemoteTransfer, ctx: PlanContext, push: boolean): NonNullable<StageRunHooks['remote']> {
  return {
    async restorable(key, outs) {
      // A directory out that arrives in a pack is built while it downloads, as `runner pull` builds it.
      const restore = new RemoteOutsRestore(ctx.store, ctx.pipeline.workspace, ctx.statCache);
      try {
        const record = await transfer.fetchRecord(key, outs, restore);
        if (!record) {
          await restore.discard();
          return undefined;
        }
        ctx.runCache.put(record);
        return { record, restore: () => restore.restore(record.outs) };
      } catch (error) {
        await restore.discard();
        // A local problem (a full disk, say) while storing what came down: the stage runs, as on a miss.
        process.stderr.write(`warning: remote ${transfer.backend.display}: ${(error as Error).message}; the stage will run\n`);
        return undefined;
      }
    },
    saved(record) {
      if (push) transfer.schedulePush(record);
    },
  };
}
