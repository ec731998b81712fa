// `runner run`: skip what is fresh, restore what the run-cache has, run what is stale, in graph order.
import type { Values } from './values.js';
import type { Executor } from '../executors/executor.js';
import { executorFor } from '../executors/executor-for.js';
import { warmUpLocalExecutor } from '../executors/local.js';
import { LockWriter } from '../lock-writer.js';
import { createReporter, type Reporter } from '../progress.js';
import { runSummary } from '../report-json.js';
import { machineCapacity, schedule } from '../scheduler.js';
import { fail } from '../spec/diagnostics.js';
import { loadPipeline, type Pipeline, type SlurmSettings } from '../spec/pipeline.js';
import { parseDuration } from '../spec/units.js';
import { StageRun } from '../stage-run.js';
import { lockWorkspace } from '../workspace-lock.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';
import { openTransfer, remoteSettings, remoteStageHooks } from './remote.js';
import { resolveNames, selectStages } from './select.js';
import { describeReasons } from '../stale-reason.js';
import { assessAll } from './status.js';

/** Stages on a cluster neither use this machine's tokens nor count against its cpus by default. */
const CLUSTER_JOBS = 1000;
const NO_RESOURCES = { cpus: 0, gpus: 0, memoryBytes: 0 };

function jobsOf(values: Values, pipeline: Pipeline): number {
  const text = values['jobs'];
  if (text === undefined) return pipeline.stages.some((s) => s.executor !== 'local') ? CLUSTER_JOBS : machineCapacity().cpus;
  const jobs = Number(text);
  if (!Number.isInteger(jobs) || jobs < 1) fail(`-j/--jobs expects a positive whole number, got "${String(text)}"`);
  return jobs;
}

async function dryRun(pipeline: Pipeline, selected: string[], forced: Set<string>, json: boolean): Promise<number> {
  const ctx = await openContext(pipeline);
  const reports = await assessAll(ctx, selected, forced);
  if (json) {
    const stages = Object.fromEntries([...reports].map(([name, r]) => [name, { plan: r.verdict, reasons: describeReasons(r.reasons) }]));
    process.stdout.write(JSON.stringify({ pipeline: pipeline.file, dryRun: true, stages }, null, 2) + '\n');
    return 0;
  }
  const label = { fresh: 'fresh  ', restore: 'restore', run: 'run    ' } as const;
  for (const [name, report] of reports) {
    process.stdout.write(`${label[report.verdict]} ${name}${report.reasons.length ? `  (${describeReasons(report.reasons).join('; ')})` : ''}\n`);
  }
  return 0;
}

function slurmFlags(values: Values): SlurmSettings {
  const flags: SlurmSettings = {};
  if (typeof values['slurm-partition'] === 'string') flags.partition = values['slurm-partition'];
  if (typeof values['slurm-account'] === 'string') flags.account = values['slurm-account'];
  if (typeof values['slurm-time'] === 'string') {
    if (parseDuration(values['slurm-time']) === undefined) fail(`--slurm-time expects a duration like 90s, 30m or 2h, got "${values['slurm-time']}"`);
    flags.time = values['slurm-time'];
  }
  if (Array.isArray(values['slurm-arg'])) flags.args = values['slurm-arg'];
  return flags;
}

export async function runCommand(file: string, values: Values): Promise<number> {
  const pipeline = await loadPipeline(file, loadOptions(values));
  const selected = selectStages(pipeline, (values['only'] as string[] | undefined) ?? [], (values['until'] as string[] | undefined) ?? []);
  const forced = new Set(resolveNames(pipeline, (values['force'] as string[] | undefined) ?? [], '--force'));
  const jobs = jobsOf(values, pipeline);
  const slurm = slurmFlags(values);
  const json = values['json'] === true;
  const remote = remoteSettings(values, pipeline);
  if (values['dry-run']) return dryRun(pipeline, selected, forced, json);

  const release = await lockWorkspace(pipeline.workspace);
  const controller = new AbortController();
  const interrupt = (): void => controller.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let reporter: Reporter | undefined;
  try {
    const ctx = await openContext(pipeline);
    const writer = new LockWriter(pipeline.lockFile, ctx.lock);
    reporter = await createReporter(pipeline.workspace);
    const transfer = remote && (await openTransfer(remote, ctx));
    const hooks = {
      starting: reporter.starting.bind(reporter),
      event: reporter.event.bind(reporter),
      record: (stage: string, entry: Parameters<LockWriter['set']>[1]) => writer.set(stage, entry),
      ...(transfer && remote ? { remote: remoteStageHooks(transfer, ctx, remote.push) } : {}),
    };
    const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
    if (selected.some((name) => byName.get(name)!.executor === 'local')) warmUpLocalExecutor(pipeline.workspace);
    // Promises, not executors: stages starting together must share one executor (Slurm batches their jobs).
    const executors = new Map<string, Promise<Executor>>();
    const started = performance.now();
    let results;
    try {
      results = await schedule(
        selected,
        pipeline.upstream,
        (name) => (byName.get(name)!.executor === 'local' ? byName.get(name)!.resources : NO_RESOURCES),
        async (name, release) => {
          const stage = byName.get(name)!;
          let executor = executors.get(stage.executor);
          if (!executor) executors.set(stage.executor, (executor = executorFor(stage.executor, pipeline, slurm)));
          return new StageRun(ctx, stage, await executor, controller.signal, hooks, forced.has(name)).execute(release);
        },
        { jobs, keepGoing: values['keep-going'] === true, capacity: machineCapacity(), signal: controller.signal },
        (event) => reporter!.finished(event.stage, event.result),
      );
    } finally {
      if (selected.length === pipeline.stages.length) writer.retain(selected);
      writer.flush();
      ctx.statCache.save();
      reporter.close();
      if (transfer) {
        await transfer.settle();
        transfer.close();
        process.stderr.write(transfer.summary() + '\n');
      }
    }
    const summary = runSummary(pipeline.file, selected, results, performance.now() - started);
    if (json) {
      process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    } else {
      const parts = Object.entries(summary.counts).filter(([, n]) => n > 0).map(([status, n]) => `${n} ${status}`);
      process.stdout.write(`${parts.join(', ') || 'nothing to do'} in ${(summary.durationMs / 1000).toFixed(1)} s\n`);
    }
    if (controller.signal.aborted) return 130;
    return summary.counts.failed > 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await release();
  }
}
