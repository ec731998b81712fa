// A pack: the small objects of one directory out, concatenated. On a remote it makes a pull of a folder of 30k
// small files one GET instead of 30k; in the local store it makes the restore read one file instead of opening
// 30k (store-packs.ts). It lives beside Bazel's layout, not in its protocol: the pack is an ordinary content-
// addressed object (`cas/<sha256 of the pack>` on a remote, an object of the store locally) and its index a
// small JSON object, `ac/<sha256("runner-pack/1\n" + manifest hash)>` on a remote (the prefix keeps it apart
// from every record's `ac/` name) and `packs/<manifest hash>.json` in the store. Servers, old clients and
// `runner gc --remote` see two more objects; the individual objects stay on the remote as well (the fallback,
// and what other directories share).
//
// The index names the manifest and the pack, and nothing else that a reader has to trust: which objects the
// pack holds, in what order and how long each is, follow from the manifest (the distinct objects of at most
// `objectMaxBytes`, in manifest order, first occurrence of each hash). A reader re-hashes every object on its
// own and the whole pack against its name (remote/transfer.ts, store-packs.ts).
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { sha256 } from './hash.js';
import type { ContentHash, ManifestEntry } from './types.js';

/** A directory out gets a pack from this many distinct small objects on (fewer: a few GETs cost less). */
export const PACK_MIN_OBJECTS = 64;
/** Objects up to this size go into a pack; larger ones stream on their own at the network's rate. */
export const PACK_OBJECT_MAX_BYTES = 1 << 20;
/** No pack larger than this is made (a server's body limit, S3's 5 GB for one PUT): such a folder goes object by object. */
export const PACK_MAX_BYTES = 1 << 30;
/** The largest `objectMaxBytes` an index may name: a reader holds one object of that size in memory. */
export const PACK_OBJECT_MAX_LIMIT = 64 << 20;

export const PACK_FORMAT = 'runner-pack';
export const PACK_VERSION = 1;

export interface PackIndex {
  format: typeof PACK_FORMAT;
  version: typeof PACK_VERSION;
  /** The directory's manifest hash (the out's hash). */
  manifest: ContentHash;
  /** sha256 of the pack's bytes: its name under cas/. */
  pack: ContentHash;
  /** The pack's length: the sum of its members' sizes. */
  size: number;
  /** The largest object the pack holds, and so which objects of the manifest are in it. */
  objectMaxBytes: number;
}

/** One object in a pack, in pack order. */
export interface PackMember {
  hash: ContentHash;
  size: number;
}

/** The index's name for a directory's manifest. */
export function packIndexKey(manifest: ContentHash): `ac/${string}` {
  return `ac/${sha256(`${PACK_FORMAT}/${PACK_VERSION}\n${manifest}`)}`;
}

/**
 * Visits the entry at which each member of a pack of this manifest first occurs (its distinct objects of at
 * most `objectMaxBytes`), in pack order; stops when `visit` returns true.
 */
export function forEachMember(entries: readonly ManifestEntry[], objectMaxBytes: number, visit: (entry: ManifestEntry) => boolean | void): void {
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry.size > objectMaxBytes || seen.has(entry.hash)) continue;
    seen.add(entry.hash);
    if (visit(entry) === true) return;
  }
}

/** What a pack of this manifest holds: its distinct objects of at most `objectMaxBytes`, first occurrence order. */
export function packMembers(entries: readonly ManifestEntry[], objectMaxBytes: number): PackMember[] {
  const members: PackMember[] = [];
  forEachMember(entries, objectMaxBytes, (entry) => {
    members.push({ hash: entry.hash, size: entry.size });
  });
  return members;
}

export function packSize(members: readonly PackMember[]): number {
  let size = 0;
  for (const member of members) size += member.size;
  return size;
}

/**
 * Writes the pack of these members (their bytes, checked, from `read`) to `file`, hashing it on the way.
 * Throws when an object is not its recorded size.
 */
export function writePack(members: readonly PackMember[], read: (hash: ContentHash) => Buffer, file: string): { hash: ContentHash; size: number } {
  const digest = createHash('sha256');
  const fd = openSync(file, 'wx', 0o444);
  let size = 0;
  try {
    for (const member of members) {
      const bytes = read(member.hash);
      if (bytes.length !== member.size) throw new Error(`the local object ${member.hash} has ${bytes.length} bytes, not ${member.size}`);
      digest.update(bytes);
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
      size += bytes.length;
    }
  } finally {
    closeSync(fd);
  }
  return { hash: digest.digest('hex') as ContentHash, size };
}

/** Why a pack ended before all of its members arrived (the stream's own error, or an early end). */
export class PackCut extends Error {
  override readonly name = 'PackCut';
}

/**
 * Splits a pack's byte stream into its members: calls `onMember` with each member's bytes as soon as they are
 * all in (a view into the chunk where it fits in one, else a copy). Returns sha256 of every byte read. Throws
 * PackCut when the stream fails or ends early, or holds more than the members; what `onMember` throws passes
 * through.
 */
export async function splitPack(
  body: AsyncIterable<Buffer>,
  members: readonly PackMember[],
  onMember: (member: PackMember, bytes: Buffer) => void,
): Promise<ContentHash> {
  const digest = createHash('sha256');
  let index = 0;
  let parts: Buffer[] = [];
  let have = 0;
  const iterator = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await iterator.next();
    } catch (error) {
      throw new PackCut(`the pack stream broke after member ${index} of ${members.length} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (next.done) break;
    let chunk = next.value;
    digest.update(chunk);
    while (chunk.length > 0) {
      const member = members[index];
      if (!member) {
        await iterator.return?.();
        throw new PackCut(`the pack is longer than its ${members.length} members`);
      }
      const want = member.size - have;
      if (want > chunk.length) {
        parts.push(chunk);
        have += chunk.length;
        break;
      }
      const tail = chunk.subarray(0, want);
      const bytes = parts.length === 0 ? tail : Buffer.concat([...parts, tail], member.size);
      parts = [];
      have = 0;
      chunk = chunk.subarray(want);
      index++;
      onMember(member, bytes);
    }
  }
  // A member of size zero at the end has all its bytes once the stream ends.
  while (have === 0 && members[index]?.size === 0) onMember(members[index++]!, Buffer.alloc(0));
  if (index < members.length) throw new PackCut(`the pack ended after ${index} of its ${members.length} members`);
  return digest.digest('hex') as ContentHash;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * A pack index (downloaded, or read back from the store) (pack.ts) checked against the manifest it claims to serve: the shape exactly, the
 * manifest's hash, and a size equal to the sum of the members the manifest and `objectMaxBytes` give. The
 * members in pack order, or why the index can't be used.
 */
export function validatePackIndex(value: unknown, manifest: ContentHash, entries: readonly ManifestEntry[]): { index: PackIndex; members: PackMember[] } | string {
  const v = value as PackIndex;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const keys = Object.keys(v).sort().join(',');
  if (keys !== 'format,manifest,objectMaxBytes,pack,size,version') return `its fields are ${keys || 'none'}, not format, version, manifest, pack, size and objectMaxBytes`;
  if (v.format !== PACK_FORMAT || v.version !== PACK_VERSION) return `not a ${PACK_FORMAT} version ${PACK_VERSION} index`;
  if (typeof v.manifest !== 'string' || !HEX64.test(v.manifest) || typeof v.pack !== 'string' || !HEX64.test(v.pack)) return 'its manifest or pack is not a sha256 hash';
  if (v.manifest !== manifest) return 'it is for another manifest';
  if (!Number.isSafeInteger(v.objectMaxBytes) || v.objectMaxBytes < 1 || v.objectMaxBytes > PACK_OBJECT_MAX_LIMIT) return `its objectMaxBytes is not a whole number from 1 to ${PACK_OBJECT_MAX_LIMIT}`;
  const members = packMembers(entries, v.objectMaxBytes);
  const size = packSize(members);
  if (v.size !== size) return `its size ${JSON.stringify(v.size)} is not the ${size} bytes of the manifest's objects up to ${v.objectMaxBytes} bytes`;
  return { index: v, members };
}
