// The stage key: sha256 of explicit, fixed-order data (wireit's FingerprintData). Anything that can change a
// stage's outputs is a field here; nothing else is (a stage's name, say, or the time it ran).
import { createHash } from 'node:crypto';
import type { FingerprintData, PathHash, StageKey } from './types.js';

export type { FingerprintData } from './types.js';

/** Bump when the meaning of a key changes (field added, hashing changed), so old cache entries stop matching. */
export const CONTRACT_VERSION = 1;

/**
 * JSON with object keys sorted at every depth, so equal data gives equal text whatever the key insertion
 * order. Refuses values JSON would silently change (undefined, NaN, functions) and names where they are.
 */
export function canonicalJson(value: unknown, where = 'value'): string {
  return JSON.stringify(canonicalize(value, where));
}

function canonicalize(value: unknown, where: string): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${where} is ${value}, which has no JSON form`);
    return value;
  }
  if (Array.isArray(value)) return value.map((item, i) => canonicalize(item, `${where}[${i}]`));
  if (typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined) continue; // like JSON.stringify: an absent optional field
      sorted[key] = canonicalize(item, `${where}.${key}`);
    }
    return sorted;
  }
  throw new TypeError(`${where} is a ${typeof value}, which has no JSON form`);
}

function sortedByPath(items: readonly PathHash[]): PathHash[] {
  return [...items].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The data in its fixed field order, with every collection sorted. */
export function normalizeFingerprint(data: FingerprintData): FingerprintData {
  return {
    contractVersion: data.contractVersion,
    platform: data.platform,
    argv: [...data.argv],
    shell: data.shell,
    params: data.params,
    // Only what identifies content: a dep's recorded size or file count can't differ for the same hash.
    deps: sortedByPath(data.deps).map((d) => ({ path: d.path, hash: d.hash, isDir: d.isDir }) as PathHash),
    env: Object.fromEntries(Object.entries(data.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    outs: [...data.outs].sort(),
  };
}

/** sha256 of the canonical JSON of the normalised data. */
export function stageKey(data: FingerprintData): StageKey {
  const text = canonicalJson(normalizeFingerprint(data), 'fingerprint');
  return createHash('sha256').update(text).digest('hex') as StageKey;
}
