// Content hashes of files and directories.
//
//   file       sha256 of its bytes, streamed through one reused 128 KiB buffer (no per-chunk allocation)
//   symlink    sha256 of its target text (inside a directory; a dep that is itself a symlink is followed)
//   directory  sha256 of its manifest text: JSON of the entries sorted by path, each [path, hash, size]
//              (a symlink [path, hash, size, "symlink"]); empty directories are ignored
//
// The fs calls are synchronous on purpose: a warm status is ~30k lstat calls, and the per-call promise
// overhead of fs/promises would double its cost. Many files to hash go to worker threads (hash-pool.ts).
// With `runner watch` running, a directory the watch daemon vouches for is not walked at all (askMonitor,
// cache/fs-monitor.ts, docs/fsmonitor.md).
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { openSync, readSync, closeSync, readdirSync, lstatSync, realpathSync, statSync, readlinkSync, type Stats, type Dirent } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix, resolve, sep } from 'node:path';
import type { ContentHash, ManifestEntry, PathHash } from './types.js';
import type { StatCache, TreeHit } from './stat-cache.js';
import { debugLine } from './fs-monitor.js';
import { hashFilesInParallel, PARALLEL_MIN_FILES } from './hash-pool.js';
import { treeStats, treeStatsKnown, treeStatsParallel } from './tree-stats.js';
import { rawFs, type RawFs } from './raw-fs.js';
import type { WrittenTree } from './streamed-restore.js';

/** A declared dep or out that does not exist. */
export class MissingPathError extends Error {
  override readonly name = 'MissingPathError';
  constructor(readonly path: string) {
    super(`missing path: ${path}`);
  }
}

/**
 * Small enough to stay in the CPU's cache between the read that fills it and the hash that reads it: 128 KiB
 * chunks hash a page-cached file at ~1.5 GB/s here, 8 MiB ones at ~1.3 (each byte then crosses memory twice).
 */
const CHUNK_BYTES = 128 << 10;
/**
 * crypto.hash (Node 20.12 on): one call, no Hash object; half the cost of createHash for a small buffer,
 * which counts when a pull checks 30k objects one by one.
 */
const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : undefined;

/** The two buffers of the overlapped large-file hash: bigger, to amortise a thread-pool round trip each. */
const LARGE_CHUNK_BYTES = 1 << 20;
let sharedChunk: Buffer | undefined;

export function sha256(data: string | Uint8Array): ContentHash {
  return (oneShotHash ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex')) as ContentHash;
}

/** sha256 of a file's bytes, read in 128 KiB chunks into one reused buffer. */
export function hashFileSync(abs: string): ContentHash {
  const chunk = (sharedChunk ??= Buffer.allocUnsafe(CHUNK_BYTES));
  const hash = createHash('sha256');
  const fd = openSync(abs, 'r');
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      hash.update(n === CHUNK_BYTES ? chunk : chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex') as ContentHash;
}

/** Files from this size up are read on the thread pool while the previous chunk is hashed. */
const OVERLAP_MIN_BYTES = 64 << 20;

/**
 * sha256 of a large file with reading and hashing overlapped: while the main thread hashes chunk k, a pool
 * thread reads chunk k+1 into the other of two 1 MiB buffers (two cores: reading ~ memcpy, hashing ~ SHA-NI).
 * ~1.7 GB/s on a page-cached file here, above what one thread hashing one in-memory buffer reaches.
 */
export async function hashLargeFile(abs: string): Promise<ContentHash> {
  const CHUNK_BYTES = LARGE_CHUNK_BYTES;
  const buffers = [Buffer.allocUnsafe(CHUNK_BYTES), Buffer.allocUnsafe(CHUNK_BYTES)] as const;
  const hash = createHash('sha256');
  const handle = await open(abs, 'r');
  try {
    let which = 0;
    let pending = handle.read(buffers[0], 0, CHUNK_BYTES, null);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = buffers[which]!;
      which ^= 1;
      pending = handle.read(buffers[which]!, 0, CHUNK_BYTES, null);
      hash.update(bytesRead === CHUNK_BYTES ? current : current.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex') as ContentHash;
}

/** A '.' or '..' segment, '//', a leading or trailing '/', or a backslash: needs path.normalize. */
const NOT_PLAIN = /(^|\/)\.\.?(\/|$)|\/\/|^\/|\/$|\\/;

/** Workspace-relative, '/'-separated, no './' or trailing '/'; refuses paths that leave the workspace. */
export function normalizeRelPath(relPath: string): string {
  // Most paths are already normal ('a/b.txt'): skip path.normalize for them (status calls this per dep).
  if (relPath !== '' && !NOT_PLAIN.test(relPath)) return relPath;
  const normalized = posix.normalize(relPath.split(sep).join('/')).replace(/\/+$/, '');
  if (normalized === '..' || normalized.startsWith('../') || posix.isAbsolute(normalized)) {
    throw new Error(`path "${relPath}" is outside the workspace`);
  }
  return normalized === '' ? '.' : normalized;
}

/** The text a directory hash is taken over; entries must be sorted by path (dirManifest returns them so). */
export function manifestText(entries: readonly ManifestEntry[]): string {
  return JSON.stringify(entries.map((e) => (e.symlink ? [e.path, e.hash, e.size, 'symlink'] : [e.path, e.hash, e.size])));
}

/** One file or symlink found below a directory, in manifest order. */
interface ScannedFile {
  path: string;
  dirAbs: string;
  name: string;
  stat?: Stats;
  symlinkTarget?: string;
}

interface TreeScan {
  files: ScannedFile[];
}

function byKey(a: [string, Dirent], b: [string, Dirent]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * readdir + lstat of everything below `root`, in manifest order. Siblings are sorted by name, with '/'
 * appended to directory names, which makes the depth-first order equal to sorting the full paths (so no
 * 30k-path sort afterwards).
 */
function scanTree(root: string, known?: Map<string, Stats>): TreeScan {
  const files: ScannedFile[] = [];
  const walk = (dirAbs: string, prefix: string): void => {
    const children = readdirSync(dirAbs, { withFileTypes: true }).map((d): [string, Dirent] => [d.isDirectory() ? d.name + '/' : d.name, d]);
    children.sort(byKey);
    for (const [key, dirent] of children) {
      const name = dirent.name;
      const abs = dirAbs + '/' + name;
      if (dirent.isDirectory()) walk(abs, prefix + key);
      else if (dirent.isSymbolicLink()) files.push({ path: prefix + name, dirAbs, name, symlinkTarget: readlinkSync(abs) });
      else if (dirent.isFile()) files.push({ path: prefix + name, dirAbs, name, stat: known?.get(abs) ?? lstatSync(abs) });
      // Sockets, fifos and devices are not content: ignored, like empty directories.
    }
  };
  walk(root, '');
  return { files };
}

/** The manifest of a scanned tree: hashes from the stat cache, the rest read (in parallel when many). */
async function manifestOf(scan: TreeScan, statCache: StatCache | undefined): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  const pending: { entry: ManifestEntry; file: ScannedFile; stat: Stats }[] = [];
  let lastDir = '';
  let records: ReturnType<StatCache['directory']>;
  for (const file of scan.files) {
    if (file.symlinkTarget !== undefined) {
      const target = file.symlinkTarget;
      entries.push({ path: file.path, hash: sha256(target), size: Buffer.byteLength(target), symlink: true });
      continue;
    }
    const stat = file.stat!;
    if (statCache && file.dirAbs !== lastDir) {
      lastDir = file.dirAbs;
      records = statCache.directory(lastDir);
    }
    const known = statCache?.lookupIn(records, file.name, stat);
    const entry: ManifestEntry = { path: file.path, hash: (known ?? '') as ContentHash, size: stat.size };
    entries.push(entry);
    if (known === undefined) pending.push({ entry, file, stat });
  }
  if (pending.length > 0) {
    const abs = pending.map((p) => p.file.dirAbs + '/' + p.file.name);
    const hashes = pending.length >= PARALLEL_MIN_FILES ? await hashFilesInParallel(abs) : abs.map(hashFileSync);
    const now = Date.now();
    pending.forEach((p, i) => {
      p.entry.hash = hashes[i]!;
      statCache?.rememberIn(p.file.dirAbs, p.file.name, p.stat, p.entry.hash, now);
    });
  }
  return entries;
}

/**
 * Every file below `relPath` (a directory), sorted by path, hashed or taken from the stat cache.
 * Cost when warm: one readdir per directory and one lstat per entry.
 */
export async function dirManifest(workspace: string, relPath: string, statCache?: StatCache): Promise<ManifestEntry[]> {
  return manifestOf(scanTree(resolve(workspace, normalizeRelPath(relPath))), statCache);
}

/** Directories with fewer files than this are walked without asking the watch daemon (RUNNER_FSMONITOR_MIN_FILES). */
function monitorMinFiles(): number {
  const value = Number(process.env['RUNNER_FSMONITOR_MIN_FILES']);
  return Number.isInteger(value) && value >= 0 ? value : 256;
}

/**
 * Asks the watch daemon (cache/fs-monitor.ts), when the command opened one, whether anything below `abs`
 * changed since the token its record was made under: `hit` when nothing did (no walk at all), else the
 * token to remember with the walk about to be made (taken before it, so any later change is after it).
 */
async function askMonitor(abs: string, statCache: StatCache): Promise<{ hit?: TreeHit; token?: string }> {
  const monitor = statCache.monitor;
  if (!monitor) return {};
  const record = statCache.treeRecord(abs);
  // A question costs ~0.5 ms (the daemon's cookie sync); walking a few hundred files costs about as much.
  if (record && record.hit.nfiles < monitorMinFiles()) return {};
  const answer = await monitor.query(abs, record?.token);
  if (!answer) return {};
  if (record && answer.unchanged) {
    debugLine(`${abs}: unchanged since ${record.token}: remembered hash, no walk`);
    return { hit: record.hit };
  }
  debugLine(`${abs}: ${record ? answer.why : 'no record yet'}: walking`);
  return answer.token === undefined ? {} : { token: answer.token };
}

/** Hash, size and file count of a directory; warm, only readdir + lstat (the tree record in the stat cache). */
async function hashDirectory(abs: string, statCache: StatCache | undefined): Promise<TreeHit> {
  const watched = statCache ? await askMonitor(abs, statCache) : {};
  if (watched.hit) return watched.hit;
  // The stats are taken before the manifest, so if the tree changes in between, the remembered digest is of
  // a state that can't come back (ctimes only move forward) and the record is never wrongly hit.
  // A directory never hashed before is sure to miss: keep the walk's Stats rather than lstat everything twice.
  const keep = statCache && !statCache.hasTree(abs) ? new Map<string, Stats>() : undefined;
  const stats = !statCache ? undefined : keep ? treeStats(abs, keep) : await treeStatsParallel(abs);
  const known = stats && statCache?.lookupTree(abs, stats.statDigest);
  if (known) {
    // The same tree as remembered: it is now vouched for from this token on.
    if (watched.token !== undefined) statCache!.rememberTree(abs, stats.statDigest, known, stats.youngestMtimeMs, Date.now(), watched.token);
    return known;
  }
  const entries = await manifestOf(scanTree(abs, keep), statCache);
  let size = 0;
  for (const e of entries) size += e.size;
  const result = { hash: sha256(manifestText(entries)), size, nfiles: entries.length };
  if (stats) statCache?.rememberTree(abs, stats.statDigest, result, stats.youngestMtimeMs, Date.now(), watched.token);
  return result;
}

function statOrMissing(abs: string, relPath: string): Stats {
  const stat = statSync(abs, { throwIfNoEntry: false });
  if (!stat) throw new MissingPathError(relPath);
  return stat;
}

/** Hashes a file or directory dep/out. A dep that is a symlink is followed; a missing path throws MissingPathError. */
export async function hashPath(workspace: string, relPath: string, statCache?: StatCache): Promise<PathHash> {
  const path = normalizeRelPath(relPath);
  const abs = resolve(workspace, path);
  const stat = statOrMissing(abs, path);
  if (stat.isDirectory()) {
    // Walked by its real path: a data folder linked into the workspace would otherwise have its link
    // resolved again by each of the ~30k readdir/lstat calls (~25% of a warm check of stage1_train).
    const { hash, size, nfiles } = await hashDirectory(realpathSync.native(abs), statCache);
    return { path, hash, size, nfiles, isDir: true };
  }
  let hash = statCache?.lookup(abs, stat);
  if (hash === undefined) {
    hash = stat.size >= OVERLAP_MIN_BYTES ? await hashLargeFile(abs) : hashFileSync(abs);
    statCache?.remember(abs, stat, hash);
  }
  return { path, hash, size: stat.size, isDir: false };
}

/**
 * Records a directory just restored from verified objects (store.ts) in the stat cache, from one walk: each
 * file's hash (from the manifest) under the stats it now has, and the tree's record (`hit`, the restored
 * entry), so the next status reads no file and hashes no manifest. A file the manifest does not name, or one
 * it names that the walk does not find (the tree changed meanwhile), leaves the tree unrecorded: the next
 * status walks and hashes it as usual. `written`: what the restore knows of the tree (streamed-restore.ts),
 * used instead of an lstat of each file and a readdir of each folder (a tree changed since then no longer
 * matches its records, so it is hashed again: slower, never wrong).
 */
export function rememberRestoredTree(abs: string, entries: readonly ManifestEntry[], hit: TreeHit, statCache: StatCache, written?: WrittenTree): void {
  const root = realpathSync.native(abs);
  if (written?.folders) {
    // Every folder listed by the writer, each name with its manifest index: no lookup by path at all.
    const folders = written.folders;
    const now = Date.now();
    let files = 0;
    for (const entry of entries) if (!entry.symlink) files++;
    let found = 0;
    let unknown = false;
    const stats = treeStatsKnown(root, (rel) => folders.get(rel), written.stats, (dirAbs, name, i, stat) => {
      const entry = i < 0 ? undefined : entries[i];
      if (!entry || entry.symlink) {
        unknown = true;
        return;
      }
      found++;
      statCache.rememberIn(dirAbs, name, stat, entry.hash, now);
    });
    if (!unknown && found === files) statCache.rememberTree(root, stats.statDigest, hit, stats.youngestMtimeMs, now);
    return;
  }
  const indexOf = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) if (!entries[i]!.symlink) indexOf.set(`${root}/${entries[i]!.path}`, i);
  const now = Date.now();
  let found = 0;
  let unknown = false;
  const fs = rawFs();
  const known = written?.stats;
  const walkFs: RawFs = !written ? fs : {
    readdir: (dir) => fs.readdir(dir),
    lstat(path, into) {
      const i = indexOf.get(path);
      if (i === undefined || known === undefined || Number.isNaN(known[i * 4]!)) return fs.lstat(path, into);
      into.size = known[i * 4]!;
      into.mtimeMs = known[i * 4 + 1]!;
      into.ctimeMs = known[i * 4 + 2]!;
      into.ino = known[i * 4 + 3]!;
    },
  };
  const stats = treeStats(root, undefined, (dirAbs, name, stat) => {
    const i = indexOf.get(`${dirAbs}/${name}`);
    if (i === undefined) {
      unknown = true;
      return;
    }
    found++;
    statCache.rememberIn(dirAbs, name, stat, entries[i]!.hash, now);
  }, walkFs);
  if (!unknown && found === indexOf.size) statCache.rememberTree(root, stats.statDigest, hit, stats.youngestMtimeMs, now);
}
