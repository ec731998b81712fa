// The sweep file: a repeatable study in YAML, beside the pipeline it sweeps.
//
//   pipeline: dsb2018.yaml          # relative to this file
//   profile: cpu                    # optional (--profile wins)
//   set: {train.epochs: 2}          # optional: overrides every experiment shares, the baseline included
//   baseline: true                  # optional (default true): also run the pipeline's own params as "baseline"
//   experiments:                    # named variants, each a map of dotted param -> value (one-factor ablations)
//     no-tta: {predict.tta: false}
//   grid:                           # optional: every combination of these values, named "k=v,k2=v2"
//     postprocess.threshold: [0.35, 0.5]
//
// Every mistake is a located diagnostic in this file (an unknown param points at its key).
import { dirname, resolve } from 'node:path';
import { didYouMean, DiagnosticError, error, fail, type Diagnostic, type SourceLocation } from '../spec/diagnostics.js';
import { loadYamlFile, locate, type SourceFile } from '../spec/load.js';
import { isMap } from '../spec/params.js';
import { displayPath } from '../spec/pipeline.js';
import { flatten } from './flatten.js';
import type { GridAxis, Overrides } from './grid.js';

export interface Variant {
  name: string;
  overrides: Overrides;
}

export interface SweepFile {
  source: SourceFile;
  /** Absolute path of the pipeline it sweeps. */
  pipeline: string;
  profile?: string;
  shared: Overrides;
  baseline: boolean;
  experiments: Variant[];
  grid: GridAxis[];
}

const KEYS = ['pipeline', 'profile', 'set', 'baseline', 'experiments', 'grid'];

/** True when a YAML document looks like a sweep file (a `pipeline:` key and no `stages:`). */
export function isSweepDocument(data: unknown): boolean {
  return isMap(data) && 'pipeline' in data && !('stages' in data);
}

export function loadSweepFile(path: string): SweepFile {
  const source = loadYamlFile(displayPath(path), path, 'sweep');
  const data = source.data;
  if (!isMap(data)) fail('a sweep file must be a map with a "pipeline" key', locate(source, []));
  const problems: Diagnostic[] = [];
  for (const key of Object.keys(data)) {
    if (!KEYS.includes(key)) problems.push(error(`unknown key "${key}" in the sweep file${didYouMean(key, KEYS)}; keys: ${KEYS.join(', ')}`, locate(source, [key], 'key')));
  }
  if (typeof data['pipeline'] !== 'string' || data['pipeline'] === '') problems.push(error('"pipeline" must name the pipeline file (relative to the sweep file)', locate(source, data['pipeline'] === undefined ? [] : ['pipeline'])));
  if (data['profile'] !== undefined && typeof data['profile'] !== 'string') problems.push(error('"profile" must be a profile name', locate(source, ['profile'])));
  if (data['baseline'] !== undefined && typeof data['baseline'] !== 'boolean') problems.push(error('"baseline" must be true or false', locate(source, ['baseline'])));
  if (data['set'] !== undefined && !isMap(data['set'])) problems.push(error('"set" must be a map of param -> value', locate(source, ['set'])));
  const experiments: Variant[] = [];
  if (data['experiments'] !== undefined) {
    if (!isMap(data['experiments'])) problems.push(error('"experiments" must be a map of name -> {param: value}', locate(source, ['experiments'])));
    else {
      for (const [name, overrides] of Object.entries(data['experiments'])) {
        if (!/^[A-Za-z0-9_][A-Za-z0-9_.=,+-]*$/.test(name)) problems.push(error(`experiment name "${name}": use letters, digits and _ . = , + -`, locate(source, ['experiments', name], 'key')));
        if (!isMap(overrides)) problems.push(error(`experiment "${name}" must be a map of param -> value`, locate(source, ['experiments', name])));
        else experiments.push({ name, overrides: flatten(overrides) }); // {predict: {tta: false}} == {predict.tta: false}
      }
    }
  }
  const grid: GridAxis[] = [];
  if (data['grid'] !== undefined) {
    if (!isMap(data['grid'])) problems.push(error('"grid" must be a map of param -> [values]', locate(source, ['grid'])));
    else {
      for (const [key, values] of Object.entries(data['grid'])) {
        if (!Array.isArray(values) || values.length === 0) problems.push(error(`grid param "${key}" must list at least one value, e.g. [0.35, 0.5]`, locate(source, ['grid', key])));
        else grid.push({ key, values });
      }
    }
  }
  if (problems.length) throw new DiagnosticError(problems);
  const sweep: SweepFile = {
    source,
    pipeline: resolve(dirname(path), data['pipeline'] as string),
    shared: flatten(data['set'] ?? {}),
    baseline: data['baseline'] !== false,
    experiments,
    grid,
  };
  if (typeof data['profile'] === 'string') sweep.profile = data['profile'];
  return sweep;
}

/** Where in the sweep file a param key was written (for "unknown param" errors). */
export function locateParamKey(sweep: SweepFile, key: string): SourceLocation | undefined {
  // Written either dotted (`predict.tta: false`) or nested (`predict: {tta: false}`).
  const at = (prefix: (string | number)[]): SourceLocation => {
    const dotted = locate(sweep.source, [...prefix, key], 'key');
    const written = sweep.source.text.split('\n')[dotted.line - 1]?.slice(dotted.col - 1, dotted.endCol - 1);
    return written === key ? dotted : locate(sweep.source, [...prefix, ...key.split('.')], 'key');
  };
  for (const variant of sweep.experiments) if (Object.hasOwn(variant.overrides, key)) return at(['experiments', variant.name]);
  if (sweep.grid.some((axis) => axis.key === key)) return at(['grid']);
  if (Object.hasOwn(sweep.shared, key)) return at(['set']);
  return undefined;
}
