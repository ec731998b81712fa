// Nested JSON objects as flat dotted keys: `{score: 0.5, per_modality: {he: 0.3}}` -> `score`,
// `per_modality.he`. Used for metrics files, effective params and sweep-file overrides alike.

export type Flat = Record<string, unknown>;

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Leaves keep their value (arrays are leaves); an empty map is left out. */
export function flatten(value: unknown, prefix = '', into: Flat = {}): Flat {
  if (!isMap(value)) {
    if (prefix !== '') into[prefix] = value;
    return into;
  }
  for (const [key, child] of Object.entries(value)) flatten(child, prefix ? `${prefix}.${key}` : key, into);
  return into;
}
