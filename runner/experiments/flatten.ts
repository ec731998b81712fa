// Nested JSON objects as flat dotted keys: `{score: 0.5, per_modality: {he: 0.3}}` -> `score`,
// `per_modality.he`. Used for metrics files, effective params and sweep-file overrides alike.
import { isMap } from '../spec/params.js';

export type Flat = Record<string, unknown>;

/** Leaves keep their value (arrays are leaves); an empty map is left out. */
export function flatten(value: unknown, prefix = '', into: Flat = {}): Flat {
  if (!isMap(value)) {
    if (prefix !== '') into[prefix] = value;
    return into;
  }
  for (const [key, child] of Object.entries(value)) flatten(child, prefix ? `${prefix}.${key}` : key, into);
  return into;
}
