// Garbage collection of a remote that can be listed (file://, s3://): drops run records that name objects
// the remote lacks, and objects that no record names. A pack index (pack.ts, also under ac/) lives while a
// live record names its manifest, and its pack while a live index names it; an index that is malformed, not
// under its own name, or names a missing pack is garbage. Anything younger than the grace period is left
// alone, so a push in progress (blobs uploaded, record not yet) loses nothing. HTTP caches evict on their own
// side (docs/remote-cache.md).
import { sha256 } from '../hash.js';
import { isContentHash, parseManifest } from '../manifest.js';
import type { ManifestEntry, RunRecord, StageKey } from '../types.js';
import { RemoteError, type ListedObject, type ObjectKey, type RemoteBackend } from './backend.js';
import { PACK_FORMAT, packIndexKey, validatePackIndex } from '../pack.js';
import { validateRemoteRecord } from './validate.js';

export const GC_GRACE_MS = 60 * 60 * 1000;

export interface RemoteGcResult {
  records: number;
  /** Records removed (or, dry run, to remove): unreadable, or naming an object the remote lacks. */
  brokenRecords: ObjectKey[];
  packIndexes: number;
  /** Pack indexes removed (or to remove): malformed, or for a manifest no live record names. */
  deadPackIndexes: ObjectKey[];
  /** Objects removed (or to remove): named by no record. */
  orphans: ListedObject[];
  orphanBytes: number;
}

async function read(backend: RemoteBackend, key: ObjectKey): Promise<Buffer | undefined> {
  const got = await backend.get(key);
  if (!got) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of got.body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** An object under ac/ parsed: a pack index (told apart by its `format`), a record, or neither. */
function parseAc(bytes: Buffer): { index: unknown } | { record: unknown } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const format = typeof value === 'object' && value !== null ? (value as { format?: unknown }).format : undefined;
  return format === PACK_FORMAT ? { index: value } : { record: value };
}

/** The objects a record needs, or why it is broken; a live record's manifests (their entries) go to `manifests`. */
async function needs(backend: RemoteBackend, value: unknown, name: ObjectKey, present: Map<string, ListedObject>, manifests: Map<string, ManifestEntry[]>): Promise<ObjectKey[] | string> {
  if (value === undefined) return 'not JSON';
  const record = value as RunRecord;
  const problem = validateRemoteRecord(record, record?.key, (record?.outs ?? []).map((o) => o?.path));
  if (problem) return problem;
  if (`ac/${sha256(record.key as StageKey)}` !== name) return 'its key does not match its name';
  const keys: ObjectKey[] = [];
  const named = new Map<string, ManifestEntry[]>();
  for (const out of record.outs) {
    const key: ObjectKey = `cas/${out.hash}`;
    if (!present.has(key)) return `${key} is missing`;
    keys.push(key);
    if (!out.isDir) continue;
    const text = await read(backend, key);
    if (!text || sha256(text) !== out.hash) return `${key} is missing or corrupt`;
    let entries;
    try {
      entries = parseManifest(text.toString('utf8'));
    } catch (error) {
      return `${key}: ${(error as Error).message}`;
    }
    for (const entry of entries) {
      const file: ObjectKey = `cas/${entry.hash}`;
      if (!present.has(file)) return `${file} is missing`;
      keys.push(file);
    }
    named.set(out.hash, entries);
  }
  for (const [hash, entries] of named) manifests.set(hash, entries);
  return keys;
}

/** The pack a pack index keeps alive, or why the index is garbage. */
function packNeeds(value: unknown, name: ObjectKey, present: Map<string, ListedObject>, manifests: Map<string, ManifestEntry[]>): { pack: ObjectKey } | { problem: string } {
  const manifest = (value as { manifest?: unknown }).manifest;
  if (!isContentHash(manifest)) return { problem: 'its manifest is not a sha256 hash' };
  const entries = manifests.get(manifest);
  if (!entries) return { problem: 'no live record names its manifest' };
  if (packIndexKey(manifest) !== name) return { problem: 'it is not under its manifest\'s name' };
  const checked = validatePackIndex(value, manifest, entries);
  if (typeof checked === 'string') return { problem: checked };
  const pack: ObjectKey = `cas/${checked.index.pack}`;
  return present.has(pack) ? { pack } : { problem: `${pack} is missing` };
}

export async function collectRemote(backend: RemoteBackend, options: { dryRun: boolean; now?: number; graceMs?: number }): Promise<RemoteGcResult> {
  if (!backend.list || !backend.remove) {
    throw new RemoteError(`${backend.display} can't be listed: gc --remote works on file:// and s3:// remotes; an HTTP cache evicts on the server (see docs/remote-cache.md)`, false);
  }
  const oldBefore = (options.now ?? Date.now()) - (options.graceMs ?? GC_GRACE_MS);
  const present = new Map<string, ListedObject>();
  for await (const object of backend.list('cas/')) present.set(object.key, object);
  const live = new Set<string>();
  const result: RemoteGcResult = { records: 0, brokenRecords: [], packIndexes: 0, deadPackIndexes: [], orphans: [], orphanBytes: 0 };
  /** Manifests of live records, by hash: what a pack index may serve. */
  const manifests = new Map<string, ManifestEntry[]>();
  const indexes: { listed: ListedObject; value: unknown }[] = [];
  for await (const listed of backend.list('ac/')) {
    const bytes = await read(backend, listed.key);
    const parsed = bytes ? parseAc(bytes) : undefined;
    if (parsed && 'index' in parsed) {
      indexes.push({ listed, value: parsed.index });
      continue;
    }
    result.records++;
    const needed = bytes ? await needs(backend, parsed?.record, listed.key, present, manifests) : 'vanished';
    if (typeof needed !== 'string') {
      for (const key of needed) live.add(key);
    } else if (listed.mtimeMs < oldBefore) {
      result.brokenRecords.push(listed.key);
      if (!options.dryRun) await backend.remove(listed.key);
    }
  }
  // Indexes after every record: whether an index lives depends on the records, wherever it is listed.
  for (const { listed, value } of indexes) {
    result.packIndexes++;
    const needed = packNeeds(value, listed.key, present, manifests);
    if ('pack' in needed) live.add(needed.pack);
    else if (listed.mtimeMs < oldBefore) {
      result.deadPackIndexes.push(listed.key);
      if (!options.dryRun) await backend.remove(listed.key);
    }
  }
  for (const object of present.values()) {
    if (live.has(object.key) || object.mtimeMs >= oldBefore) continue;
    result.orphans.push(object);
    result.orphanBytes += object.size;
    if (!options.dryRun) await backend.remove(object.key);
  }
  return result;
}
