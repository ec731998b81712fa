// Prints a Comparison as an aligned text table (terminal) or a Markdown table (RESULTS.md). One column per
// experiment, one row per differing param and per metric: `0.512 (+0.012) *`, `*` marking the best value.
import type { Goal } from '../spec/headline.js';
import type { Comparison, ComparedExperiment } from './compare.js';

/** Numbers at 4 significant digits, without trailing zeros; anything else as JSON (strings bare). */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return String(value);
    return String(Number(value.toPrecision(4)));
  }
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return JSON.stringify(value);
}

export function formatDelta(delta: number): string {
  if (delta === 0) return '±0';
  return (delta > 0 ? '+' : '') + formatValue(delta);
}

function metricCell(experiment: ComparedExperiment, name: string): string {
  const cell = experiment.metrics[name];
  if (!cell) return '-';
  let text = formatValue(cell.value);
  if (cell.delta !== undefined && !experiment.baseline) text += ` (${formatDelta(cell.delta)})`;
  if (cell.best) text += ' *';
  return text;
}

/** ` (higher is better)`, or nothing for a metric shown unranked. */
export function goalText(goal: Goal | undefined): string {
  return goal === undefined ? '' : ` (${goal === 'max' ? 'higher' : 'lower'} is better)`;
}

/** Header rows, then body rows; the first column names the row. */
function tableRows(comparison: Comparison): { header: string[][]; params: string[][]; metrics: string[][] } {
  const exps = comparison.experiments;
  const header = [
    ['experiment', ...exps.map((e) => e.name + (e.baseline ? ' (baseline)' : ''))],
    ['id', ...exps.map((e) => e.id + (e.status === 'failed' ? ' FAILED' : ''))],
  ];
  const params = comparison.params.map((key) => [key, ...exps.map((e) => formatValue(e.params[key]))]);
  const metrics = comparison.metrics.map((m) => [`${m.name}${goalText(m.goal)}`, ...exps.map((e) => metricCell(e, m.name))]);
  return { header, params, metrics };
}

function legend(comparison: Comparison): string {
  const baseline = comparison.experiments.find((e) => e.baseline);
  const unranked = comparison.metrics.some((m) => m.goal === undefined) ? '; the headline metrics come first, the others are not ranked' : '';
  return `deltas against ${baseline ? `${baseline.name} (${baseline.id})` : comparison.baseline}; * marks the best value${unranked}`;
}

export function formatTable(comparison: Comparison): string {
  const { header, params, metrics } = tableRows(comparison);
  const all = [...header, ...params, ...metrics];
  const widths = all[0]!.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  const line = (row: string[]): string => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [...header.map(line), rule];
  if (params.length) out.push(...params.map(line), rule);
  out.push(...(metrics.length ? metrics.map(line) : ['(no metrics recorded: declare `metrics:` files on stages)']));
  out.push('', legend(comparison));
  return out.join('\n');
}

export function formatMarkdown(comparison: Comparison): string {
  const { header, params, metrics } = tableRows(comparison);
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  const row = (cells: string[]): string => `| ${cells.map(escape).join(' | ')} |`;
  const out = [row(header[0]!), row(header[0]!.map(() => '---')), row(header[1]!)];
  for (const r of params) out.push(row(r.map((cell, i) => (i === 0 ? `param \`${cell}\`` : cell))));
  for (const r of metrics) out.push(row(r.map((cell, i) => (i === 0 ? `**${cell}**` : cell))));
  out.push('', legend(comparison) + '.');
  return out.join('\n');
}
