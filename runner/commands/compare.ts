// `runner compare [ids…] [--baseline id] [--json | --markdown]`: the params that differ and every metric, with
// deltas against the baseline and the best value marked.
import type { Values } from './values.js';
import { fail } from '../spec/diagnostics.js';
import { compareExperiments, defaultBaseline, type Comparison } from '../experiments/compare.js';
import { formatMarkdown, formatTable } from '../experiments/compare-format.js';
import { listRecords, resolveRecord, type ExperimentRecord } from '../experiments/record.js';
import { experimentsWorkspace } from './exp.js';

/** The experiments named (all when none), the baseline first among them when it is not named. */
export function chooseExperiments(workspace: string, refs: readonly string[], baselineRef: string | undefined, command: string): { records: ExperimentRecord[]; baseline: ExperimentRecord } {
  const all = listRecords(workspace);
  if (all.length === 0) fail(`no experiments recorded in ${workspace} yet: run \`runner sweep\` first`);
  const named = refs.map((ref) => resolveRecord(all, ref, command));
  let records = named.length ? [...new Map(named.map((r) => [r.id, r])).values()] : all;
  const baseline = baselineRef !== undefined ? resolveRecord(all, baselineRef, '--baseline') : (named.length ? records.find((r) => r.name === 'baseline') ?? records[0] : defaultBaseline(all))!;
  if (!records.some((r) => r.id === baseline.id)) records = [baseline, ...records];
  return { records, baseline };
}

export function comparisonOf(values: Values, refs: readonly string[], command: string): Comparison {
  const workspace = experimentsWorkspace(values);
  const { records, baseline } = chooseExperiments(workspace, refs, typeof values['baseline'] === 'string' ? values['baseline'] : undefined, command);
  const patterns = values['metric'];
  return compareExperiments(records, baseline.id, {
    ...(Array.isArray(patterns) ? { metricPatterns: patterns as string[] } : {}),
    changedOnly: values['changed'] === true,
  });
}

export async function compareCommand(refs: string[], values: Values): Promise<number> {
  const comparison = comparisonOf(values, refs, 'compare');
  if (values['json'] === true) process.stdout.write(JSON.stringify(comparison, null, 2) + '\n');
  else if (values['markdown'] === true) process.stdout.write(formatMarkdown(comparison) + '\n');
  else process.stdout.write(formatTable(comparison) + '\n');
  return 0;
}
