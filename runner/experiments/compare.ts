// Experiments side by side: the params that differ between them, and every metric with its delta against the
// baseline and the best value marked. A pipeline's headline metrics (its `headline:`) come first and are the
// only ones ranked; without one, every metric is ranked by a goal guessed from its name. Pure data in, data
// out; compare-format.ts prints it.
import type { Goal, HeadlineMetric } from '../spec/headline.js';
import type { ExperimentRecord } from './record.js';

export interface MetricCell {
  value: unknown;
  /** value - baseline's value, for numbers present in both. */
  delta?: number;
  best?: boolean;
}

export interface ComparedExperiment {
  id: string;
  name: string;
  status: ExperimentRecord['status'];
  baseline: boolean;
  /** Only the params that differ between the compared experiments. */
  params: Record<string, unknown>;
  metrics: Record<string, MetricCell>;
}

export interface Comparison {
  baseline: string;
  params: string[];
  /** `goal` is absent for a metric that is shown but not ranked (not a headline where the pipeline has some). */
  metrics: { name: string; goal?: Goal; headline: boolean; best?: string[] }[];
  experiments: ComparedExperiment[];
}

/**
 * Lower is better for names that say so (loss, error, time…), higher for everything else (score, accuracy,
 * precision, IoU). Judged on the last part of the dotted name.
 */
export function metricGoal(name: string): Goal {
  const last = name.split('.').pop() ?? name;
  return /(loss|error|err|mae|mse|rmse|time|duration|seconds|_ms$|ms$|^fp$|^fn$|false_)/i.test(last) ? 'min' : 'max';
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export interface CompareOptions {
  /** Keep only metrics matching one of these patterns (`*` matches any run of characters). */
  metricPatterns?: readonly string[];
  /** Keep only metrics whose value is not the same in every experiment. */
  changedOnly?: boolean;
}

function patternRegExp(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

export function compareExperiments(records: readonly ExperimentRecord[], baselineId: string, options: CompareOptions = {}): Comparison {
  const paramKeys = [...new Set(records.flatMap((r) => Object.keys(r.params)))].sort();
  const differing = paramKeys.filter((key) => new Set(records.map((r) => JSON.stringify(r.params[key] ?? null))).size > 1);
  // Scalars only: a list (e.g. per-image details) does not fit a side-by-side cell.
  const isScalar = (v: unknown): boolean => v === null || typeof v !== 'object';
  let metricNames: string[] = [];
  for (const record of records) {
    for (const [name, value] of Object.entries(record.metrics)) if (isScalar(value) && !metricNames.includes(name)) metricNames.push(name);
  }
  if (options.metricPatterns?.length) {
    const patterns = options.metricPatterns.map(patternRegExp);
    metricNames = metricNames.filter((name) => patterns.some((p) => p.test(name)));
  }
  const baseline = records.find((r) => r.id === baselineId);
  const headline = headlineOf(records, baseline);
  const ranked = new Map(headline.map((h) => [h.name, h.goal]));
  if (options.changedOnly) {
    // A headline metric is shown even when it did not move: that is a result too.
    metricNames = metricNames.filter((name) => ranked.has(name) || new Set(records.map((r) => JSON.stringify(r.metrics[name] ?? null))).size > 1);
  }
  metricNames = [...headline.map((h) => h.name).filter((name) => metricNames.includes(name)), ...metricNames.filter((name) => !ranked.has(name))];
  const experiments: ComparedExperiment[] = records.map((r) => ({
    id: r.id,
    name: r.name,
    status: r.status,
    baseline: r.id === baselineId,
    params: Object.fromEntries(differing.map((key) => [key, r.params[key] ?? null])),
    metrics: {},
  }));
  const metrics: Comparison['metrics'] = [];
  for (const name of metricNames) {
    const goal = headline.length > 0 ? ranked.get(name) : metricGoal(name);
    const values = records.map((r) => r.metrics[name]);
    const numbers = values.filter(isNumber);
    const bestValue = numbers.length > 1 && goal !== undefined ? (goal === 'max' ? Math.max(...numbers) : Math.min(...numbers)) : undefined;
    const reference = baseline?.metrics[name];
    const best: string[] = [];
    records.forEach((record, i) => {
      const value = values[i];
      if (value === undefined) return;
      const cell: MetricCell = { value };
      if (isNumber(value) && isNumber(reference)) cell.delta = value - reference;
      // Best only when the values differ at all: a tie everywhere marks nothing.
      if (bestValue !== undefined && value === bestValue && new Set(numbers).size > 1) {
        cell.best = true;
        best.push(record.id);
      }
      experiments[i]!.metrics[name] = cell;
    });
    metrics.push({ name, ...(goal !== undefined ? { goal } : {}), headline: ranked.has(name), ...(best.length ? { best } : {}) });
  }
  return { baseline: baselineId, params: differing, metrics, experiments };
}

/** The baseline's headline metrics, else the newest record's that has some (records of one pipeline share them). */
function headlineOf(records: readonly ExperimentRecord[], baseline: ExperimentRecord | undefined): HeadlineMetric[] {
  if (baseline?.headline?.length) return baseline.headline;
  return [...records].reverse().find((r) => r.headline?.length)?.headline ?? [];
}

/** The default baseline among records: the newest one named "baseline", else the first. */
export function defaultBaseline(records: readonly ExperimentRecord[]): ExperimentRecord | undefined {
  const named = records.filter((r) => r.name === 'baseline');
  return named[named.length - 1] ?? records[0];
}
