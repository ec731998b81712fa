// `runner status`: per stage fresh, or stale with reasons, and whether the run-cache can restore it.
// Also the engine of `runner run --dry-run`. The verdict is plan.ts's; the lines are stale-reason.ts's.
import type { Values } from './values.js';
import { formatWarning, type CodeWarning } from '../code-deps/warning.js';
import { assess, readMetrics, type PlanContext } from '../plan.js';
import { loadPipeline } from '../spec/pipeline.js';
import { describeReasons, type StaleReason, type Verdict } from '../stale-reason.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';

export type { Verdict } from '../stale-reason.js';

export interface StageStatusReport {
  verdict: Verdict;
  reasons: StaleReason[];
  restorable: boolean;
  metrics?: Record<string, unknown>;
  warnings: CodeWarning[];
}

/** Assesses `names` in graph order; a stage below one that will run or restore lists it as a reason. */
export async function assessAll(ctx: PlanContext, names: readonly string[], forced: ReadonlySet<string> = new Set()): Promise<Map<string, StageStatusReport>> {
  ctx.hashMemo ??= new Map(); // nothing changes files during this pass
  const byName = new Map(ctx.pipeline.stages.map((s) => [s.name, s]));
  const reports = new Map<string, StageStatusReport>();
  for (const name of names) {
    const stage = byName.get(name)!;
    const upstreamStale = (ctx.pipeline.upstream[name] ?? []).filter((u) => reports.has(u) && reports.get(u)!.verdict !== 'fresh');
    const assessment = await assess(ctx, stage, { upstreamStale, forced: forced.has(name) });
    const report: StageStatusReport = { verdict: assessment.verdict, reasons: assessment.reasons, restorable: assessment.restorable !== undefined, warnings: assessment.warnings };
    if (assessment.verdict === 'fresh') {
      const metrics = readMetrics(ctx.pipeline.workspace, stage);
      if (metrics && Object.keys(metrics).length) report.metrics = metrics;
    }
    reports.set(name, report);
  }
  return reports;
}

/** Each warning once, however many stages' closures reach the file. */
export function distinctWarnings(reports: Iterable<StageStatusReport>): string[] {
  const lines = new Set<string>();
  for (const report of reports) for (const warning of report.warnings) lines.add(formatWarning(warning));
  return [...lines];
}

export async function statusCommand(file: string, values: Values): Promise<number> {
  const pipeline = await loadPipeline(file, loadOptions(values));
  const ctx = await openContext(pipeline);
  const reports = await assessAll(ctx, pipeline.stages.map((s) => s.name));
  ctx.statCache.save();
  const warnings = distinctWarnings(reports.values());
  if (values['json']) {
    const stages = Object.fromEntries(
      [...reports].map(([name, r]) => [name, { status: r.verdict === 'fresh' ? 'fresh' : 'stale', reasons: describeReasons(r.reasons), restorable: r.restorable, ...(r.metrics ? { metrics: r.metrics } : {}) }]),
    );
    process.stdout.write(JSON.stringify({ pipeline: pipeline.file, stages, ...(warnings.length ? { warnings } : {}) }, null, 2) + '\n');
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
    for (const reason of describeReasons(report.reasons)) lines.push(`    ${reason}`);
    if (report.restorable) lines.push('    restorable from run-cache');
  }
  lines.push(stale ? `${stale} of ${reports.size} stages stale` : `all ${reports.size} stages fresh`);
  for (const warning of warnings) lines.push(`warning: ${warning}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
