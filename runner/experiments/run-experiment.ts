// Runs one experiment: the pipeline with some params overridden, in its own workspace (see workspace.ts),
// through the ordinary `runner run` in a child process with the main workspace's cache. The child's JSON
// summary, the experiment's lock file, the run-cache and the metrics files become the experiment record.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RunCache } from '../../cache/run-cache.js';
import type { LockEntry } from '../../cache/types.js';
import type { RunSummary } from '../report-json.js';
import { fail } from '../spec/diagnostics.js';
import type { Pipeline } from '../spec/pipeline.js';
import { flatten } from './flatten.js';
import { overridesAsSets, type Overrides } from './grid.js';
import { expsDir, readRecord, writeRecord, type ExperimentRecord, type StageOutcome } from './record.js';
import { mirrorWorkspace, ownedPaths, seedStatCache } from './workspace.js';

export interface ExperimentPlan {
  id: string;
  name: string;
  /** The pipeline as loaded in the main workspace with this experiment's params. */
  pipeline: Pipeline;
  profile?: string;
  overrides: Overrides;
  digest: string;
}

/** argv that starts this runner's CLI: the compiled one, or the source through tsx when running from source. */
function runnerArgv(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return [process.execPath, '--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../cli.ts', import.meta.url))];
  return [process.execPath, fileURLToPath(new URL('../cli.js', import.meta.url))];
}

function posixRelative(from: string, to: string): string {
  return relative(from, to).split('\\').join('/');
}

function readLockEntries(file: string): Record<string, LockEntry> {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { stages?: Record<string, LockEntry> }).stages ?? {};
  } catch {
    return {};
  }
}

/** `<stage>.<dotted key>` for every metrics file of every stage (a file that is missing or not JSON is skipped). */
export function collectMetrics(workspace: string, pipeline: Pipeline): Record<string, unknown> {
  const metrics: Record<string, unknown> = {};
  for (const stage of pipeline.stages) {
    for (const file of stage.metrics) {
      let data: unknown;
      try {
        data = JSON.parse(readFileSync(join(workspace, file), 'utf8'));
      } catch {
        continue;
      }
      Object.assign(metrics, flatten(data, stage.name));
    }
  }
  return metrics;
}

export interface RunOptions {
  jobs?: number;
  keepGoing: boolean;
  /** Where the child's progress lines go (the terminal, or a test's buffer). */
  stderr: 'inherit' | 'pipe';
}

export async function runExperiment(main: string, plan: ExperimentPlan, options: RunOptions): Promise<ExperimentRecord> {
  const { pipeline } = plan;
  const target = join(expsDir(main), plan.id);
  mirrorWorkspace(main, target, ownedPaths(pipeline));
  seedStatCache(main, target);
  const pipelineRel = posixRelative(main, pipeline.path);
  const args = ['run', join(target, pipelineRel), '--workspace', target, '--json'];
  if (plan.profile !== undefined) args.push('--profile', plan.profile);
  for (const set of overridesAsSets(plan.overrides)) args.push('--set', set);
  if (options.jobs !== undefined) args.push('-j', String(options.jobs));
  if (options.keepGoing) args.push('--keep-going');
  const [program, ...prefix] = runnerArgv();
  const started = new Date();
  const child = await execa(program!, [...prefix, ...args], {
    cwd: main,
    reject: false,
    stdin: 'ignore',
    stderr: options.stderr,
    env: { RUNNER_CACHE_DIR: pipeline.cacheDir },
  });
  let summary: RunSummary;
  try {
    summary = JSON.parse(child.stdout) as RunSummary;
  } catch {
    const stderr = typeof child.stderr === 'string' && child.stderr ? `\n${child.stderr.trim()}` : '';
    fail(`experiment "${plan.name}" (${plan.id}): \`runner run\` exited with code ${child.exitCode ?? child.signal} and no summary${stderr}`);
  }
  const previous = readRecord(main, plan.id);
  const lock = readLockEntries(join(target, posixRelative(main, pipeline.lockFile)));
  const runCache = new RunCache(pipeline.cacheDir);
  const stages: Record<string, StageOutcome> = {};
  for (const stage of pipeline.stages) {
    const result = summary.stages[stage.name];
    const outcome: StageOutcome = { status: result?.status ?? 'not-run', durationMs: result?.durationMs ?? 0, upstream: pipeline.upstream[stage.name] ?? [] };
    const key = lock[stage.name]?.key;
    const computed = key ? runCache.get(key)?.durationMs : undefined;
    // An earlier attempt of this experiment that did not finish the stage spent time on it too: a stage resumed
    // from its checkpoints cost all its runs, not only the last.
    const before = previous?.stages[stage.name];
    const earlier = before?.status === 'failed' ? (before.runsMs ?? [before.durationMs]) : [];
    if (result?.status === 'ran' || result?.status === 'failed') outcome.runsMs = [...earlier, result.durationMs];
    if (computed !== undefined) outcome.computeMs = computed + (result?.status === 'ran' ? earlier.reduce((sum, ms) => sum + ms, 0) : 0);
    if (result?.failure) outcome.failure = result.failure.message;
    stages[stage.name] = outcome;
  }
  const record: ExperimentRecord = {
    schema: 1,
    id: plan.id,
    name: plan.name,
    pipeline: pipelineRel,
    profile: plan.profile ?? null,
    overrides: plan.overrides,
    params: flatten(pipeline.params),
    paramsDigest: plan.digest,
    workspace: posixRelative(main, target),
    status: summary.ok ? 'ok' : 'failed',
    createdAt: previous?.createdAt ?? started.toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: summary.durationMs,
    stages,
    metrics: collectMetrics(target, pipeline),
    plots: pipeline.stages.flatMap((s) => (s.plots ?? []).map((path) => ({ stage: s.name, path }))),
    images: pipeline.stages.flatMap((s) => (s.images ?? []).map((path) => ({ stage: s.name, path }))),
    ...(pipeline.headline ? { headline: pipeline.headline } : {}),
  };
  writeRecord(main, record);
  return record;
}
