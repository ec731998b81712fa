// Garbage collection of a remote that can be listed (file://, s3://): drops run records that name objects
// the remote lacks, and objects that no record names. Anything younger than the grace period is left alone,
// so a push in progress (blobs uploaded, record not yet) loses nothing. HTTP caches evict on their own side
// (docs/remote-cache.md).
import { sha256 } from '../hash.js';
import { parseManifest } from '../manifest.js';
import type { RunRecord, StageKey } from '../types.js';
import { RemoteError, type ListedObject, type ObjectKey, type RemoteBackend } from './backend.js';
import { validateRemoteRecord } from './validate.js';

export const GC_GRACE_MS = 60 * 60 * 1000;

export interface RemoteGcResult {
  records: number;
  /** Records removed (or, dry run, to remove): unreadable, or naming an object the remote lacks. */
  brokenRecords: ObjectKey[];
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

/** The objects a record needs, or why it is broken. */
async function needs(backend: RemoteBackend, bytes: Buffer, name: ObjectKey, present: Map<string, ListedObject>): Promise<ObjectKey[] | string> {
  let record: RunRecord;
  try {
    record = JSON.parse(bytes.toString('utf8')) as RunRecord;
  } catch {
    return 'not JSON';
  }
  const problem = validateRemoteRecord(record, record?.key, (record?.outs ?? []).map((o) => o?.path));
  if (problem) return problem;
  if (`ac/${sha256(record.key as StageKey)}` !== name) return 'its key does not match its name';
  const keys: ObjectKey[] = [];
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
  }
  return keys;
}

export async function collectRemote(backend: RemoteBackend, options: { dryRun: boolean; now?: number; graceMs?: number }): Promise<RemoteGcResult> {
  if (!backend.list || !backend.remove) {
    throw new RemoteError(`${backend.display} can't be listed: gc --remote works on file:// and s3:// remotes; an HTTP cache evicts on the server (see docs/remote-cache.md)`, false);
  }
  const oldBefore = (options.now ?? Date.now()) - (options.graceMs ?? GC_GRACE_MS);
  const present = new Map<string, ListedObject>();
  for await (const object of backend.list('cas/')) present.set(object.key, object);
  const live = new Set<string>();
  const result: RemoteGcResult = { records: 0, brokenRecords: [], orphans: [], orphanBytes: 0 };
  for await (const listed of backend.list('ac/')) {
    result.records++;
    const bytes = await read(backend, listed.key);
    const needed = bytes ? await needs(backend, bytes, listed.key, present) : 'vanished';
    if (typeof needed !== 'string') {
      for (const key of needed) live.add(key);
    } else if (listed.mtimeMs < oldBefore) {
      result.brokenRecords.push(listed.key);
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
