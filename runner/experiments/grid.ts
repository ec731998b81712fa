// `--grid key=v1,v2` flags and the cartesian product of their values. Values are parsed as YAML like `--set`
// values (`1e-5` is a number, `true` a boolean); commas inside [..], {..} or quotes don't split, so
// `--grid crop=[256,256],[512,512]` gives two lists.
import { fail } from '../spec/diagnostics.js';
import { commandLineValue } from '../spec/params.js';

/** One param and the values it takes in a sweep. */
export interface GridAxis {
  key: string;
  values: unknown[];
}

/** An experiment's param overrides: dotted param name -> value, in the order they were given. */
export type Overrides = Record<string, unknown>;

/** `a,[1,2],'x,y'` -> ['a', '[1,2]', "'x,y'"]: splits at commas outside brackets and quotes. */
export function splitTopLevel(text: string): string[] | undefined {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      if (--depth < 0) return undefined;
    } else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quote || depth !== 0) return undefined;
  parts.push(text.slice(start));
  return parts;
}

/** Whether a string value passes through a command line as it is (it reads back as the same string). */
function readsBackAsItself(text: string): boolean {
  try {
    return commandLineValue('', '', '', text) === text;
  } catch {
    return false;
  }
}

/** Parses one `--grid` flag; a malformed one is an error naming the flag as written. */
export function parseGridFlag(flag: string): GridAxis {
  const eq = flag.indexOf('=');
  const key = eq > 0 ? flag.slice(0, eq).trim() : '';
  const where = `--grid ${flag}`;
  if (eq <= 0 || key === '') fail(`${where}: expected KEY=V1,V2,... (e.g. --grid postprocess.threshold=0.35,0.5)`);
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(key)) fail(`${where}: "${key}" is not a param name (dotted words, e.g. train.lr)`);
  const parts = splitTopLevel(flag.slice(eq + 1));
  if (!parts) fail(`${where}: unbalanced brackets or quotes in the values`);
  const empty = parts.findIndex((p) => p.trim() === '');
  if (empty >= 0) fail(`${where}: value ${empty + 1} is empty (two commas in a row, or a trailing comma?)`);
  const values = parts.map((p) => commandLineValue(where, '--grid', key, p.trim()));
  const seen = new Set<string>();
  for (const value of values) {
    const id = JSON.stringify(value);
    if (seen.has(id)) fail(`${where}: the value ${id} is listed twice`);
    seen.add(id);
  }
  return { key, values };
}

/** Every combination of the axes' values (the first axis varies slowest); one empty combination for no axes. */
export function cartesian(axes: readonly GridAxis[]): Overrides[] {
  let combos: Overrides[] = [{}];
  for (const axis of axes) combos = combos.flatMap((combo) => axis.values.map((value) => ({ ...combo, [axis.key]: value })));
  return combos;
}

/** Checks no param appears on two axes (a repeated --grid key would silently multiply nothing). */
export function checkDistinctAxes(axes: readonly GridAxis[], describe: (key: string) => string): void {
  const seen = new Set<string>();
  for (const axis of axes) {
    if (seen.has(axis.key)) fail(`${describe(axis.key)}: param "${axis.key}" is swept twice`);
    seen.add(axis.key);
  }
}

/** `{a: 1, b: 'x'}` -> `a=1,b=x` (an experiment's default name). */
export function overridesName(overrides: Overrides): string {
  const parts = Object.entries(overrides).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return parts.length ? parts.join(',') : 'baseline';
}

/** Overrides as `--set` flags for the runner (values as YAML flow text, so they parse back to themselves). */
export function overridesAsSets(overrides: Overrides): string[] {
  return Object.entries(overrides).map(([key, value]) => `${key}=${typeof value === 'string' && readsBackAsItself(value) ? value : JSON.stringify(value)}`);
}
