// `runner sweep <pipeline | sweep file> [--grid k=v1,v2]… [--set k=v]… [--profile p] [-j N]`: every variant as an
// experiment in its own workspace, then the comparison table.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Values } from './values.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import { compareExperiments } from '../experiments/compare.js';
import { formatTable } from '../experiments/compare-format.js';
import { parseGridFlag, type GridAxis, type Overrides } from '../experiments/grid.js';
import { commandLineValue } from '../spec/params.js';
import type { ExperimentRecord } from '../experiments/record.js';
import { runExperiment } from '../experiments/run-experiment.js';
import { isSweepDocument, loadSweepFile, locateParamKey, type SweepFile } from '../experiments/sweep-file.js';
import { planSweep, type SweepRequest } from '../experiments/sweep.js';

function looksLikeSweepFile(path: string): boolean {
  try {
    return isSweepDocument(parseYaml(readFileSync(path, 'utf8')));
  } catch {
    return false; // unreadable or not YAML: the pipeline loader reports it, located
  }
}

function setFlags(values: Values): Overrides {
  const shared: Overrides = {};
  for (const assignment of (values['set'] as string[] | undefined) ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) fail(`--set ${assignment}: expected key=value (e.g. --set train.lr=1e-5)`);
    const key = assignment.slice(0, eq).trim();
    shared[key] = commandLineValue(`--set ${assignment}`, '--set', key, assignment.slice(eq + 1));
  }
  return shared;
}

/** The sweep file's experiments, narrowed to --only's names (each must exist: a typo is an error, not an empty run). */
function chosenExperiments<T extends { name: string }>(experiments: T[], values: Values, file: string): T[] {
  const only = ((values['only'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (only.length === 0) return experiments;
  const names = experiments.map((e) => e.name);
  for (const name of only) {
    if (!names.includes(name)) fail(`--only ${name}: ${file} has no experiment "${name}"${didYouMean(name, names)} (it has: ${names.join(', ') || 'none'})`);
  }
  return experiments.filter((e) => only.includes(e.name));
}

function jobsOf(values: Values): number | undefined {
  if (values['jobs'] === undefined) return undefined;
  const jobs = Number(values['jobs']);
  if (!Number.isInteger(jobs) || jobs < 1) fail(`-j/--jobs expects a positive whole number, got "${String(values['jobs'])}"`);
  return jobs;
}

export async function sweepCommand(file: string, values: Values): Promise<number> {
  const flagAxes: GridAxis[] = ((values['grid'] as string[] | undefined) ?? []).map(parseGridFlag);
  const flagShared = setFlags(values);
  const flagDescription = (key: string): string => {
    const grid = ((values['grid'] as string[] | undefined) ?? []).find((g) => g.split('=')[0]!.trim() === key);
    return grid !== undefined ? `--grid ${grid}` : `--set ${key}`;
  };
  let sweep: SweepFile | undefined;
  let request: SweepRequest;
  const profile = typeof values['profile'] === 'string' ? values['profile'] : undefined;
  if (looksLikeSweepFile(resolve(file))) {
    const loaded = loadSweepFile(resolve(file));
    sweep = loaded;
    request = {
      pipelineFile: loaded.pipeline,
      shared: { ...loaded.shared, ...flagShared },
      baseline: loaded.baseline && values['no-baseline'] !== true,
      experiments: chosenExperiments(loaded.experiments, values, file),
      grid: values['only'] !== undefined ? flagAxes : [...loaded.grid, ...flagAxes], // --only names experiments: the file's grid is left out
      locateKey: (key) => (key in flagShared || flagAxes.some((a) => a.key === key) ? undefined : locateParamKey(loaded, key)),
      describeKey: (key) => (key in flagShared || flagAxes.some((a) => a.key === key) ? flagDescription(key) : `${loaded.source.file}: param "${key}"`),
    };
    const chosen = profile ?? loaded.profile;
    if (chosen !== undefined) request.profile = chosen;
  } else {
    if (values['only'] !== undefined) fail(`--only picks named experiments of a sweep file; ${file} is a pipeline`);
    request = {
      pipelineFile: file,
      shared: flagShared,
      baseline: values['no-baseline'] !== true,
      experiments: [],
      grid: flagAxes,
      locateKey: () => undefined,
      describeKey: flagDescription,
    };
    if (profile !== undefined) request.profile = profile;
  }
  if (typeof values['workspace'] === 'string') request.workspace = values['workspace'];
  const plan = await planSweep(request);
  const json = values['json'] === true;
  const log = (text: string): void => void process.stderr.write(text + '\n');
  for (const dup of plan.duplicates) log(`sweep: "${dup.name}" has the same params as "${dup.sameAs}": run once`);

  const records: ExperimentRecord[] = [];
  const jobs = jobsOf(values);
  for (const [index, experiment] of plan.experiments.entries()) {
    log(`sweep: experiment ${index + 1}/${plan.experiments.length} "${experiment.name}" (${experiment.id})`);
    const options = { keepGoing: values['keep-going'] === true, stderr: 'inherit' as const, ...(jobs !== undefined ? { jobs } : {}) };
    const record = await runExperiment(plan.workspace, experiment, options);
    const counts = new Map<string, number>();
    for (const stage of Object.values(record.stages)) counts.set(stage.status, (counts.get(stage.status) ?? 0) + 1);
    log(`sweep: "${record.name}" ${record.status}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')} in ${(record.durationMs / 1000).toFixed(1)} s`);
    records.push(record);
  }
  const baseline = records.find((r) => r.name === 'baseline') ?? records[0]!;
  const comparison = compareExperiments(records, baseline.id);
  if (json) {
    process.stdout.write(JSON.stringify({ sweep: sweep?.source.file ?? null, experiments: records, comparison }, null, 2) + '\n');
  } else {
    process.stdout.write(formatTable(comparison) + '\n');
  }
  return records.every((r) => r.status === 'ok') ? 0 : 1;
}
