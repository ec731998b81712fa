// The stage key: sha256 of explicit, fixed-order data (wireit's FingerprintData). Anything that can change a
// stage's outputs is a field here; nothing else is (a stage's name, say, or the time it ran).
import { createHash } from 'node:crypto';
import type { CodeDeps, FingerprintData, PathHash, StageKey } from './types.js';

export type { FingerprintData } from './types.js';

/** Bump when the meaning of a key changes (field added, hashing changed), so old cache entries stop matching. */
export const CONTRACT_VERSION = 1;

/**
 * JSON with object keys sorted at every depth, so equal data gives equal text whatever the key insertion
 * order. Refuses values JSON would silently change (undefined, NaN, functions) and names where they are.
 */
export function canonicalJson(value: unknown, where = 'value'): string {
  // Each value's location is not built on the way (a no-op status of 1000 stages computes 1000 keys, and
  // those strings were most of the cost): a value with no JSON form is rare, so only then is the data walked
  // again to name where it is.
  const sorted = canonicalize(value);
  if (sorted === UNSERIALIZABLE) locateUnserializable(value, where);
  return JSON.stringify(sorted);
}

const UNSERIALIZABLE = Symbol('unserializable');

/** A copy with object keys sorted at every depth, or UNSERIALIZABLE when something has no JSON form. */
function canonicalize(value: unknown): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : UNSERIALIZABLE;
  if (typeof value !== 'object') return UNSERIALIZABLE;
  if (Array.isArray(value)) {
    const items = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) if ((items[i] = canonicalize(value[i])) === UNSERIALIZABLE) return UNSERIALIZABLE;
    return items;
  }
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue; // like JSON.stringify: an absent optional field
    if ((sorted[key] = canonicalize(item)) === UNSERIALIZABLE) return UNSERIALIZABLE;
  }
  return sorted;
}

/** Throws a TypeError naming the first value below `where` that has no JSON form. */
function locateUnserializable(value: unknown, where: string): void {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`${where} is ${value}, which has no JSON form`);
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return;
  if (typeof value !== 'object') throw new TypeError(`${where} is a ${typeof value}, which has no JSON form`);
  if (Array.isArray(value)) value.forEach((item, i) => locateUnserializable(item, `${where}[${i}]`));
  else for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) locateUnserializable(item, `${where}.${key}`);
  }
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
    // canonicalJson sorts the closure's records; only its lists need sorting here.
    ...(data.code ? { code: { ...data.code, builtins: [...data.code.builtins].sort(), unresolved: [...data.code.unresolved].sort() } } : {}),
  };
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A closure with its fields in a fixed order and every collection sorted (the key and the lock file use it). */
export function normalizeCodeDeps(code: CodeDeps): CodeDeps {
  return {
    files: sortedRecord(code.files),
    packages: sortedRecord(code.packages),
    builtins: [...new Set(code.builtins)].sort(),
    node: code.node,
    unresolved: [...new Set(code.unresolved)].sort(),
  };
}

/** sha256 of the canonical JSON of the normalised data. */
export function stageKey(data: FingerprintData): StageKey {
  const text = canonicalJson(normalizeFingerprint(data), 'fingerprint');
  return createHash('sha256').update(text).digest('hex') as StageKey;
}
