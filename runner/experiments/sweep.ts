// A sweep: the variants to run (baseline, named experiments, grid combinations), each checked against the
// pipeline's params and loaded with its overrides, then run one after the other. One at a time on purpose:
// the first experiment computes the shared upstream stages and every later one restores them from the
// run-cache (run side by side, two experiments would both train). `-j` parallelises stages inside each one.
import { relative } from 'node:path';
import type { SourceLocation } from '../spec/diagnostics.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import { leafPaths } from '../spec/interpolate.js';
import { getParam } from '../spec/params.js';
import { loadPipeline, type LoadOptions } from '../spec/pipeline.js';
import { cartesian, checkDistinctAxes, overridesAsSets, overridesName, type GridAxis, type Overrides } from './grid.js';
import { experimentId, paramsDigest } from './record.js';
import type { ExperimentPlan } from './run-experiment.js';
import type { Variant } from './sweep-file.js';

export interface SweepRequest {
  pipelineFile: string;
  workspace?: string;
  profile?: string;
  /** Overrides every experiment shares (sweep file `set:` and `--set`). */
  shared: Overrides;
  baseline: boolean;
  experiments: Variant[];
  grid: GridAxis[];
  /** Where a param key was written, for located errors; and how to name its origin otherwise. */
  locateKey: (key: string) => SourceLocation | undefined;
  describeKey: (key: string) => string;
}

export interface SweepPlan {
  workspace: string;
  experiments: ExperimentPlan[];
  /** Variants whose effective params equal an earlier one's: not run twice. */
  duplicates: { name: string; sameAs: string }[];
}

export async function planSweep(request: SweepRequest): Promise<SweepPlan> {
  const baseOptions: LoadOptions = {};
  if (request.profile !== undefined) baseOptions.profile = request.profile;
  if (request.workspace !== undefined) baseOptions.workspace = request.workspace;
  const base = await loadPipeline(request.pipelineFile, baseOptions);
  const workspace = base.workspace;
  const rel = relative(workspace, base.path);
  if (rel.startsWith('..')) fail(`the pipeline ${base.file} lies outside the workspace ${workspace}: experiments mirror the workspace, so it must be inside (or pass --workspace)`);

  checkDistinctAxes(request.grid, request.describeKey);
  const variants: Variant[] = [];
  if (request.baseline) variants.push({ name: 'baseline', overrides: {} });
  variants.push(...request.experiments);
  for (const combo of request.grid.length ? cartesian(request.grid) : []) variants.push({ name: overridesName(combo), overrides: combo });
  if (variants.length === 0) fail('nothing to sweep: give --grid KEY=V1,V2, or experiments/grid in a sweep file');

  const known = leafPaths(base.params);
  const keys = new Set([...Object.keys(request.shared), ...variants.flatMap((v) => Object.keys(v.overrides))]);
  for (const key of keys) {
    if (!getParam(base.params, key).found) {
      fail(`${request.describeKey(key)}: no param "${key}" in ${base.file}${didYouMean(key, known)}`, request.locateKey(key));
    }
  }

  const experiments: ExperimentPlan[] = [];
  const duplicates: SweepPlan['duplicates'] = [];
  const byId = new Map<string, string>();
  for (const variant of variants) {
    const overrides = { ...request.shared, ...variant.overrides };
    const options: LoadOptions = { ...baseOptions, workspace, sets: overridesAsSets(overrides) };
    const pipeline = await loadPipeline(request.pipelineFile, options);
    const digest = paramsDigest(pipeline.params);
    const id = experimentId(rel.split('\\').join('/'), digest);
    const earlier = byId.get(id);
    if (earlier !== undefined) {
      duplicates.push({ name: variant.name, sameAs: earlier });
      continue;
    }
    byId.set(id, variant.name);
    const plan: ExperimentPlan = { id, name: variant.name, pipeline, overrides, digest };
    if (request.profile !== undefined) plan.profile = request.profile;
    experiments.push(plan);
  }
  return { workspace, experiments, duplicates };
}
