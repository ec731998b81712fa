// Remembers which content hash a file had at a given (size, mtime, ctime, inode), so a warm status costs one
// lstat per file instead of reading it; and, one level up, which hash a whole directory had for a given digest
// of all its files' stats, so a warm directory check needs neither the per-file records nor the manifest.
//
// On disk: `<file>` holds the directory ("tree") records and the records of files hashed on their own (a file
// dep or out): small, always loaded. `<file>.files` holds the records of files below directories, grouped by
// directory, parsed only when a tree record misses; each directory's records column by column (its names, its
// files' stats as one base64 array of doubles, its hashes as one string), which a pull writes and a changed
// tree reads: for stage1_train's 30k records (5.5 MB) JSON.stringify took 11 ms and loading 25-35 ms, against
// 25 and 82 ms with an array per record (5.9 MB; the 2-core VM, after a pull). Both files are plain JSON
// written by temp + rename.
//
// Correctness limits (the same as git's index and DVC's state db):
// - A rewrite that keeps size, mtime, ctime and inode is not seen. User code can set mtime (utimes) but not
//   ctime, and any write or utimes moves ctime, so only a write within one timestamp tick of the hashing can
//   hide — which is what the "racy" window guards against: a file whose mtime is younger than
//   `racyWindowMs` when it is hashed is not remembered (it is re-hashed next time, when it is older).
// - Filesystems with coarse timestamps (some network disks: 1-2 s) need a wider window.
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FsMonitor } from './fs-monitor.js';
import type { ContentHash, StatLike } from './types.js';
import writeFileAtomic from 'write-file-atomic';

const FORMAT_VERSION = 2;
/** The per-directory file's format (`<file>.files`): 3 is the column form. */
const FILES_FORMAT_VERSION = 3;
/** sha256 in hex: every stored hash has this length, so a directory's hashes are one string. */
const HASH_LENGTH = 64;

/** [size, mtimeMs, ctimeMs, ino, hash] — an array, not an object, to keep the file small and fast to parse. */
type StatRecord = [number, number, number, number, string];

/** One directory's file records, column by column; looked up by name through an index made on first use. */
class DirRecords {
  private constructor(
    private readonly names: string[],
    /** [size, mtimeMs, ctimeMs, ino] per record; grows by doubling. */
    private stats: Float64Array,
    private readonly hashes: string[],
  ) {}

  private index: Map<string, number> | undefined;

  static empty(): DirRecords {
    return new DirRecords([], new Float64Array(64), []);
  }

  /** From its saved form; undefined when it is not one (a damaged file: that directory is hashed again). */
  static fromSaved(saved: unknown): DirRecords | undefined {
    if (!Array.isArray(saved) || saved.length !== 3) return undefined;
    const [names, stats, hashes] = saved as unknown[];
    if (!Array.isArray(names) || typeof stats !== 'string' || typeof hashes !== 'string') return undefined;
    if (!names.every((n) => typeof n === 'string') || hashes.length !== names.length * HASH_LENGTH) return undefined;
    const bytes = Buffer.from(stats, 'base64');
    if (bytes.length !== names.length * 32) return undefined;
    // Copied into an array of its own: a decoded Buffer may sit unaligned in a shared pool.
    const values = new Float64Array(Math.max(64, names.length * 4));
    new Uint8Array(values.buffer).set(bytes);
    const split: string[] = new Array<string>(names.length);
    for (let i = 0; i < names.length; i++) split[i] = hashes.slice(i * HASH_LENGTH, (i + 1) * HASH_LENGTH);
    return new DirRecords(names as string[], values, split);
  }

  toJSON(): [string[], string, string] {
    const n = this.names.length;
    return [this.names, Buffer.from(this.stats.buffer, 0, n * 32).toString('base64'), this.hashes.join('')];
  }

  private find(name: string): number | undefined {
    if (!this.index) {
      this.index = new Map();
      for (let i = 0; i < this.names.length; i++) this.index.set(this.names[i]!, i);
    }
    return this.index.get(name);
  }

  /** The record of `name`, when it is there and its stats are `stat`'s. */
  matching(name: string, stat: StatLike): ContentHash | undefined {
    const i = this.find(name);
    if (i === undefined) return undefined;
    const s = this.stats;
    if (s[i * 4] !== stat.size || s[i * 4 + 1] !== stat.mtimeMs || s[i * 4 + 2] !== stat.ctimeMs || s[i * 4 + 3] !== stat.ino) return undefined;
    return this.hashes[i] as ContentHash;
  }

  /** Sets `name`'s record; false when it was that already. */
  set(name: string, stat: StatLike, hash: ContentHash): boolean {
    if (this.matching(name, stat) === hash) return false;
    // A hash of another length could not be saved in the column: such a record is simply not kept.
    if (hash.length !== HASH_LENGTH) return false;
    let i = this.find(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.hashes.push(hash);
      this.index!.set(name, i);
      if ((i + 1) * 4 > this.stats.length) {
        const grown = new Float64Array(this.stats.length * 2);
        grown.set(this.stats);
        this.stats = grown;
      }
    } else this.hashes[i] = hash;
    this.stats[i * 4] = stat.size;
    this.stats[i * 4 + 1] = stat.mtimeMs;
    this.stats[i * 4 + 2] = stat.ctimeMs;
    this.stats[i * 4 + 3] = stat.ino;
    return true;
  }
}
/**
 * [digest of every file's path and stats, hash, total size, file count, watch token?]. The token (see
 * fs-monitor.ts) is the watch daemon's, taken before the walk that made the record; an older runner reads
 * the first four fields and ignores it.
 */
type TreeRecord = [string, string, number, number] | [string, string, number, number, string];

/** A directory's remembered hash, valid while the digest of its files' stats is unchanged. */
export interface TreeHit {
  hash: ContentHash;
  size: number;
  nfiles: number;
}

export interface StatCacheOptions {
  /** Files modified less than this long before hashing are not remembered (see the header). Default 1000. */
  racyWindowMs?: number;
}

/** The record's hash when size, mtime, ctime and inode all match the stat. */
function matching(record: StatRecord | undefined, stat: StatLike): ContentHash | undefined {
  if (!record) return undefined;
  const [size, mtimeMs, ctimeMs, ino, hash] = record;
  if (size !== stat.size || mtimeMs !== stat.mtimeMs || ctimeMs !== stat.ctimeMs || ino !== stat.ino) return undefined;
  return hash as ContentHash;
}

function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function readJson(file: string | undefined, version = FORMAT_VERSION): Record<string, unknown> | undefined {
  if (file === undefined) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return parsed['version'] === version ? parsed : undefined;
  } catch {
    return undefined; // missing or corrupt: start empty; the next save() rewrites it
  }
}

function writeJsonAtomically(file: string, body: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  // Whole or not at all; no fsync: a stat cache lost in a crash only costs the next status a re-hash.
  writeFileAtomic.sync(file, JSON.stringify(body), { fsync: false });
}

export class StatCache {
  /** The watch daemon's client, when the command opened one (runner/commands/context.ts); hash.ts asks it. */
  monitor: FsMonitor | undefined;
  private readonly trees: Record<string, TreeRecord>;
  /** Records of files hashed on their own, by absolute path. */
  private readonly loose: Record<string, StatRecord>;
  private dirsLoaded: Record<string, DirRecords> | undefined;
  /** The small file (trees and loose files) needs writing. */
  private treesChanged = false;
  private filesChanged = false;
  /** How young an mtime must not be for a hash taken now to be remembered (see the header). */
  readonly racyWindowMs: number;

  private constructor(
    /** The tree records' file; the per-file records live in `${file}.files`. */
    readonly file: string | undefined,
    options: StatCacheOptions,
  ) {
    this.racyWindowMs = options.racyWindowMs ?? 1000;
    const parsed = readJson(file);
    this.trees = (parsed?.['trees'] as Record<string, TreeRecord> | undefined) ?? emptyRecord();
    this.loose = (parsed?.['files'] as Record<string, StatRecord> | undefined) ?? emptyRecord();
  }

  /** Loads the cache; a missing or unreadable file gives an empty cache (it is only an accelerator). */
  static load(file: string, options: StatCacheOptions = {}): StatCache {
    return new StatCache(file, options);
  }

  /** A cache that lives only in memory (tests, one-off hashing). */
  static inMemory(options: StatCacheOptions = {}): StatCache {
    return new StatCache(undefined, options);
  }

  private get filesFile(): string | undefined {
    return this.file === undefined ? undefined : `${this.file}.files`;
  }

  /** The per-file records, parsed on first use. */
  private get dirs(): Record<string, DirRecords> {
    if (!this.dirsLoaded) {
      const saved = readJson(this.filesFile, FILES_FORMAT_VERSION)?.['dirs'];
      const dirs = emptyRecord<DirRecords>();
      if (saved && typeof saved === 'object') {
        for (const [dir, records] of Object.entries(saved)) {
          const loaded = DirRecords.fromSaved(records);
          if (loaded) dirs[dir] = loaded;
        }
      }
      this.dirsLoaded = dirs;
    }
    return this.dirsLoaded;
  }

  /** Whether `mtimeMs` is too recent (relative to `now`) for a hash taken now to be trusted later. */
  isRacy(mtimeMs: number, now: number = Date.now()): boolean {
    return now - mtimeMs < this.racyWindowMs;
  }

  /** The remembered hash of a file hashed on its own, when every recorded stat field still matches. */
  lookup(abs: string, stat: StatLike): ContentHash | undefined {
    return matching(this.loose[abs], stat);
  }

  remember(abs: string, stat: StatLike, hash: ContentHash, now: number = Date.now()): void {
    if (this.isRacy(stat.mtimeMs, now) || matching(this.loose[abs], stat) === hash) return;
    this.loose[abs] = [stat.size, stat.mtimeMs, stat.ctimeMs, stat.ino, hash];
    this.treesChanged = true;
  }

  /** The records of one directory, for a walker that looks up many names in it (avoids re-splitting paths). */
  directory(dirAbs: string): DirRecords | undefined {
    return this.dirs[dirAbs];
  }

  /** Like lookup, for a file below a directory, given its directory's records (see directory()). */
  lookupIn(records: DirRecords | undefined, name: string, stat: StatLike): ContentHash | undefined {
    return records?.matching(name, stat);
  }

  rememberIn(dirAbs: string, name: string, stat: StatLike, hash: ContentHash, now: number = Date.now()): void {
    if (this.isRacy(stat.mtimeMs, now)) return;
    const dirs = this.dirs;
    let records = dirs[dirAbs];
    if (!records) {
      records = DirRecords.empty();
      dirs[dirAbs] = records;
    }
    if (records.set(name, stat, hash)) this.filesChanged = true;
  }

  /** Whether a directory has a record at all (whatever its digest). */
  hasTree(dirAbs: string): boolean {
    return this.trees[dirAbs] !== undefined;
  }

  /** A directory's hash, when the digest of its files' paths and stats is the one remembered. */
  lookupTree(dirAbs: string, statDigest: string): TreeHit | undefined {
    const record = this.trees[dirAbs];
    if (!record || record[0] !== statDigest) return undefined;
    return { hash: record[1] as ContentHash, size: record[2], nfiles: record[3] };
  }

  /** A directory's record whatever its digest, with the watch token it was made under (if any). */
  treeRecord(dirAbs: string): { hit: TreeHit; token: string | undefined } | undefined {
    const record = this.trees[dirAbs];
    if (!record) return undefined;
    return { hit: { hash: record[1] as ContentHash, size: record[2], nfiles: record[3] }, token: record[4] };
  }

  /**
   * Remembers a directory's hash; the caller passes the youngest mtime below it, checked like a file's, and
   * the watch token taken before its walk (none: the record can only be hit by its digest).
   */
  rememberTree(dirAbs: string, statDigest: string, hit: TreeHit, youngestMtimeMs: number, now: number = Date.now(), token?: string): void {
    if (this.isRacy(youngestMtimeMs, now)) return;
    const old = this.trees[dirAbs];
    if (old && old[0] === statDigest && old[1] === hit.hash && old[4] === token) return;
    this.trees[dirAbs] = token === undefined ? [statDigest, hit.hash, hit.size, hit.nfiles] : [statDigest, hit.hash, hit.size, hit.nfiles, token];
    this.treesChanged = true;
  }

  /** Writes what changed since load (temp + rename); does nothing on a warm no-op run. */
  save(): void {
    if (this.file === undefined) return;
    if (this.filesChanged && this.dirsLoaded) {
      writeJsonAtomically(this.filesFile!, { version: FILES_FORMAT_VERSION, dirs: this.dirsLoaded });
      this.filesChanged = false;
    }
    if (this.treesChanged) {
      writeJsonAtomically(this.file, { version: FORMAT_VERSION, trees: this.trees, files: this.loose });
      this.treesChanged = false;
    }
  }
}
