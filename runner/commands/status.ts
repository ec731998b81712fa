// `runner status`: per stage fresh, or stale with reasons, and whether the run-cache can restore it.
// Also the engine of `runner run --dry-run`.
import type { Values } from './values.js';
import { assess, readMetrics, type Assessment, type PlanContext } from '../plan.js';
import { loadPipeline } from '../spec/pipeline.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';

export type Verdict = 'fresh' | 'restore' | 'run';

export interface StageStatusReport {
  verdict: Verdict;
  reasons: string[];
  restorable: boolean;
  metrics?: Record<string, unknown>;
}

/** Assesses `names` in graph order; a stage below one that will run or restore lists it as a reason. */
export async function assessAll(ctx: PlanContext, names: readonly string[], forced: ReadonlySet<string> = new Set()): Promise<Map<string, StageStatusReport>> {
  ctx.hashMemo ??= new Map(); // nothing changes files during this pass
  const byName = new Map(ctx.pipeline.stages.map((s) => [s.name, s]));
  const reports = new Map<string, StageStatusReport>();
  for (const name of names) {
    const stage = byName.get(name)!;
    const staleUp = (ctx.pipeline.upstream[name] ?? []).filter((u) => reports.has(u) && reports.get(u)!.verdict !== 'fresh');
    const assessment: Assessment = await assess(ctx, stage, staleUp);
    const reasons = forced.has(name) ? ['forced', ...assessment.reasons] : assessment.reasons;
    const restorable = assessment.restorable !== undefined;
    const verdict: Verdict = reasons.length === 0 ? 'fresh' : restorable && !forced.has(name) && staleUp.length === 0 ? 'restore' : 'run';
    const report: StageStatusReport = { verdict, reasons, restorable };
    if (verdict === 'fresh') {
      const metrics = readMetrics(ctx.pipeline.workspace, stage);
      if (metrics && Object.keys(metrics).length) report.metrics = metrics;
    }
    reports.set(name, report);
  }
  return reports;
}

export async function statusCommand(file: string, values: Values): Promise<number> {
  const pipeline = await loadPipeline(file, loadOptions(values));
  const ctx = await openContext(pipeline);
  const reports = await assessAll(ctx, pipeline.stages.map((s) => s.name));
  ctx.statCache.save();
  if (values['json']) {
    const stages = Object.fromEntries(
      [...reports].map(([name, r]) => [name, { status: r.verdict === 'fresh' ? 'fresh' : 'stale', reasons: r.reasons, restorable: r.restorable, ...(r.metrics ? { metrics: r.metrics } : {}) }]),
    );
    process.stdout.write(JSON.stringify({ pipeline: pipeline.file, stages }, null, 2) + '\n');
    return 0;
  }
  const lines: string[] = [];
  let stale = 0;
  for (const [name, report] of reports) {
    if (report.verdict === 'fresh') {
      lines.push(`${name}: fresh${report.metrics ? `  ${JSON.stringify(report.metrics)}` : ''}`);
      continue;
    }
    stale++;
    lines.push(`${name}: stale`);
    for (const reason of report.reasons) lines.push(`    ${reason}`);
    if (report.restorable) lines.push('    restorable from run-cache');
  }
  lines.push(stale ? `${stale} of ${reports.size} stages stale` : `all ${reports.size} stages fresh`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
