// `runner run --json`: one JSON document on stdout summarising the run.
import type { Failure } from './failure.js';
import { describeFailure } from './failure.js';
import type { StageResult, StageStatus } from './stage-run.js';

export interface RunSummary {
  pipeline: string;
  ok: boolean;
  durationMs: number;
  counts: Record<StageStatus, number>;
  stages: Record<string, { status: StageStatus; durationMs: number; reasons?: string[]; failure?: Failure & { message: string } }>;
}

export function runSummary(pipeline: string, order: readonly string[], results: Map<string, StageResult>, durationMs: number): RunSummary {
  const counts: Record<StageStatus, number> = { ran: 0, restored: 0, fresh: 0, failed: 0, skipped: 0 };
  const stages: RunSummary['stages'] = {};
  for (const name of order) {
    const result = results.get(name);
    if (!result) continue;
    counts[result.status]++;
    const entry: RunSummary['stages'][string] = { status: result.status, durationMs: Math.round(result.durationMs) };
    if (result.reasons?.length) entry.reasons = result.reasons;
    if (result.failure) entry.failure = { ...result.failure, message: describeFailure(result.failure) };
    stages[name] = entry;
  }
  return { pipeline, ok: counts.failed === 0 && counts.skipped === 0, durationMs: Math.round(durationMs), counts, stages };
}
