// The effective params: the pipeline's `params` (inline, or a file beside the pipeline), then a `--profile`
// overlay (deep merge), then `--set key=value` overrides (values parsed as YAML scalars: `1e-5` is a number).
import { dirname, resolve, relative } from 'node:path';
import { parseDocument, visit } from 'yaml';
import { didYouMean, fail } from './diagnostics.js';
import { leafPaths } from './interpolate.js';
import { loadYamlFile, locate, type SourceFile } from './load.js';

export type Params = Record<string, unknown>;

/** A YAML mapping (not null, not a list): what params, profiles and sweeps nest. */
export function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `over` merged into `base`: maps merge key by key, anything else replaces. Neither input is modified. */
export function deepMerge(base: Params, over: Params): Params {
  const merged: Params = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = merged[key];
    merged[key] = isMap(current) && isMap(value) ? deepMerge(current, value) : value;
  }
  return merged;
}

/** The value at a dotted path, or undefined when any segment is missing. */
export function getParam(params: Params, dotted: string): { found: boolean; value: unknown } {
  let value: unknown = params;
  for (const part of dotted.split('.')) {
    if (!isMap(value) || !Object.hasOwn(value, part)) return { found: false, value: undefined };
    value = value[part];
  }
  return { found: true, value };
}

/** Whether `dotted` lies below an open map of `declared`: a param the pipeline writes as an empty map `{}`. */
function isInOpenMap(declared: Params, dotted: string): boolean {
  let value: unknown = declared;
  for (const part of dotted.split('.')) {
    if (isMap(value) && Object.keys(value).length === 0 && value !== declared) return true;
    if (!isMap(value) || !Object.hasOwn(value, part)) return false;
    value = value[part];
  }
  return false;
}

/**
 * Whether a profile or --set may write `dotted`: it exists, or it lies below an open map — a param written as
 * an empty map `{}` in the pipeline (e.g. `model: {config: {}}`), whose keys the stage itself validates.
 */
export function isSettableParam(params: Params, dotted: string, declared: Params = params): boolean {
  return getParam(params, dotted).found || isInOpenMap(declared, dotted);
}

function setParam(params: Params, dotted: string, value: unknown): Params {
  const [head, ...rest] = dotted.split('.');
  const child = params[head!];
  return { ...params, [head!]: rest.length === 0 ? value : setParam(isMap(child) ? child : {}, rest.join('.'), value) };
}

/** The pipeline's own params: the inline map, or the file `params: file.yaml` names (relative to the pipeline). */
export function baseParams(pipeline: SourceFile, pipelinePath: string): Params {
  const declared = (pipeline.data as Params)['params'];
  if (declared === undefined) return {};
  if (typeof declared === 'string') {
    const absolute = resolve(dirname(pipelinePath), declared);
    const display = relative(process.cwd(), absolute) || absolute;
    let file: SourceFile;
    try {
      file = loadYamlFile(display, absolute, 'params');
    } catch (cause) {
      if ((cause as Error).message.startsWith('params file not found')) {
        fail(`params file not found: ${display}`, locate(pipeline, ['params']));
      }
      throw cause;
    }
    if (file.data === null || file.data === undefined) return {};
    if (!isMap(file.data)) fail(`params file ${display} must hold a map of params`, locate(file, []));
    return file.data;
  }
  return declared as Params;
}

export function applyProfile(pipeline: SourceFile, params: Params, profile: string | undefined): Params {
  if (profile === undefined) return params;
  const profiles = ((pipeline.data as Params)['profiles'] ?? {}) as Record<string, Params>;
  const names = Object.keys(profiles);
  if (!Object.hasOwn(profiles, profile)) {
    const known = names.length ? `; profiles: ${names.join(', ')}` : '; the pipeline defines no profiles';
    fail(`unknown profile "${profile}" in --profile${didYouMean(profile, names)}${known}`, names.length ? locate(pipeline, ['profiles'], 'key') : undefined);
  }
  const overlay = profiles[profile]!;
  for (const path of leafPaths(overlay)) {
    if (!isSettableParam(params, path)) {
      // A profile may only change params that exist: a typo would otherwise be silently ignored.
      fail(`profile "${profile}" sets unknown param "${path}"${didYouMean(path, leafPaths(params))}`, locate(pipeline, ['profiles', profile, ...path.split('.')], 'key'));
    }
  }
  return deepMerge(params, overlay);
}

/**
 * A param value given on the command line (`--set key=text`, `--grid key=a,b`), read as one YAML value. Text
 * that is not valid YAML (`[1,`) is an error rather than a string, so a typo can't silently turn a list into
 * text; so is an anchor or alias (`&a`, `*a`), which would otherwise read as null. Quoting gives the text as it
 * is: --set 'key="[1,"'. `where` names the flag as written, `flag` its name.
 */
export function commandLineValue(where: string, flag: string, key: string, text: string): unknown {
  if (text === '') return '';
  const quoteHint = `; to pass it as text, quote it: ${flag} '${key}="${text.replaceAll('"', '\\"')}"'`;
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false });
  const problem = doc.errors[0];
  if (problem) fail(`${where}: the value is not valid YAML (${problem.message.split('\n')[0]})${quoteHint}`);
  let anchored = false;
  visit(doc, {
    Node(_, node) {
      if ('anchor' in node && node.anchor) anchored = true;
    },
    Alias() {
      anchored = true;
    },
  });
  if (anchored) fail(`${where}: YAML anchors and aliases (&name, *name) are not allowed in a value${quoteHint}`);
  return doc.toJS();
}

function setValue(assignment: string, text: string): unknown {
  return commandLineValue(`--set ${assignment}`, '--set', assignment.slice(0, assignment.indexOf('=')).trim(), text);
}

/** Applies `--set key=value` overrides in order. */
export function applySets(params: Params, sets: readonly string[], declared: Params = params): Params {
  let result = params;
  for (const assignment of sets) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) fail(`--set ${assignment}: expected key=value (e.g. --set train.lr=1e-5)`);
    const key = assignment.slice(0, eq).trim();
    const text = assignment.slice(eq + 1);
    if (!isSettableParam(result, key, declared)) fail(`--set ${assignment}: no param "${key}"${didYouMean(key, leafPaths(result))}`);
    result = setParam(result, key, setValue(assignment, text));
  }
  return result;
}
