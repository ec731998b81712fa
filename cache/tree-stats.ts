// The warm path of a directory check: readdir + lstat of everything below a directory, folded into one
// digest that the stat cache compares with the one it remembered along with the directory's hash.
//
// In readdir order (no sorting) and with no per-file objects kept: a warm status of stage1_train is 30k
// lstat calls, and in Node 20 each builds a Stats object with four Dates through the public API, so the warm
// walk reads them through raw-fs.ts.
// A large tree is split between this thread and one worker (treeStatsParallel), which this thread never
// waits for: an earlier split that did (250 vs 200 ms) lost to the worker's start-up on a loaded machine.
//
// The names go into the digest with markers that keep the tree's shape unambiguous: a directory as
// "name/" ... "/" around its contents, a symlink as "name\0target". If readdir's order changes, the digest
// simply misses and the directory is hashed the slow way.
import { createHash } from 'node:crypto';
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { rawFs, type EntryType, type FileStat, type RawFs } from './raw-fs.js';

export interface TreeStats {
  /** sha256 over every entry's name and place in the tree, files' size, mtime, ctime and inode, symlinks' targets. */
  statDigest: string;
  youngestMtimeMs: number;
}

/** A stretch of the walk: names (with the shape markers) and [size, mtimeMs, ctimeMs, ino] per file. */
interface Part {
  names: string[];
  stats: Float64Array;
  n: number;
  youngest: number;
}

function newPart(): Part {
  return { names: [], stats: new Float64Array(1024), n: 0, youngest: -Infinity };
}

function pushStat(part: Part, stat: FileStat): void {
  if (part.n + 4 > part.stats.length) {
    const grown = new Float64Array(part.stats.length * 2);
    grown.set(part.stats);
    part.stats = grown;
  }
  part.stats[part.n++] = stat.size;
  part.stats[part.n++] = stat.mtimeMs;
  part.stats[part.n++] = stat.ctimeMs;
  part.stats[part.n++] = stat.ino;
  if (stat.mtimeMs > part.youngest) part.youngest = stat.mtimeMs;
}

/** Appends one directory entry (and, for a directory, everything below it) to `part`. */
/** Told each file's stats as the walk passes it (`stat` is reused: copy what you keep). */
export type OnFile = (dirAbs: string, name: string, stat: Readonly<FileStat>) => void;

function walkEntry(part: Part, fs: RawFs, dirAbs: string, name: string, type: string, stat: FileStat, keep?: Map<string, Stats>, onFile?: OnFile): void {
  const abs = dirAbs + '/' + name;
  if (type === 'dir') {
    part.names.push(name + '/');
    const entries = fs.readdir(abs);
    for (let i = 0; i < entries.names.length; i++) walkEntry(part, fs, abs, entries.names[i]!, entries.types[i]!, stat, keep, onFile);
    part.names.push('/');
  } else if (type === 'symlink') {
    part.names.push(name + '\0' + readlinkSync(abs));
  } else if (type === 'file') {
    if (keep) {
      const full = lstatSync(abs);
      keep.set(abs, full);
      Object.assign(stat, { size: full.size, mtimeMs: full.mtimeMs, ctimeMs: full.ctimeMs, ino: full.ino });
    } else {
      fs.lstat(abs, stat);
    }
    onFile?.(dirAbs, name, stat);
    part.names.push(name);
    pushStat(part, stat);
  }
  // Sockets, fifos and devices are not content: ignored.
}

/** The digest of parts that, in order, make up the whole walk (the same bytes as one part would give). */
function digestOf(parts: readonly Part[]): TreeStats {
  const names: string[] = [];
  let total = 0;
  let youngestMtimeMs = -Infinity;
  for (const part of parts) {
    for (const name of part.names) names.push(name);
    total += part.n;
    youngestMtimeMs = Math.max(youngestMtimeMs, part.youngest);
  }
  const stats = new Float64Array(total);
  let at = 0;
  for (const part of parts) {
    stats.set(part.stats.subarray(0, part.n), at);
    at += part.n;
  }
  const digest = createHash('sha256').update(names.join('\n')).update(new Uint8Array(stats.buffer, 0, total * 8));
  return { statDigest: digest.digest('hex'), youngestMtimeMs };
}

/**
 * The digest of the tree below `root`. With `keep`, every file's Stats is also kept by absolute path, so a
 * caller that goes on to hash the tree (a first hash, sure to miss) doesn't lstat every file again; without
 * it (the warm path) the walk uses raw-fs.ts, which builds no Stats or Dirent objects. `onFile` sees each
 * file's stats on the way; `fs` is where the walk reads them (a caller that has some already).
 */
export function treeStats(root: string, keep?: Map<string, Stats>, onFile?: OnFile, fs: RawFs = rawFs()): TreeStats {
  const part = newPart();
  const stat: FileStat = { size: 0, mtimeMs: 0, ctimeMs: 0, ino: 0 };
  const entries = fs.readdir(root);
  for (let i = 0; i < entries.names.length; i++) walkEntry(part, fs, root, entries.names[i]!, entries.types[i]!, stat, keep, onFile);
  return digestOf([part]);
}

/** A folder's entries as the restore that wrote them listed them: each file's index into its stats (-1: none). */
export interface KnownFolder {
  names: string[];
  types: EntryType[];
  indexes: Int32Array;
}

/**
 * The digest of a tree whose folders' listings and files' stats a restore already holds (streamed-restore.ts):
 * the same walk and bytes as treeStats, with no Map lookup by path per file. `folder(rel)`: a folder's listing
 * by path relative to `root` ('' the top), read from disk when it has none; `stats`: [size, mtimeMs, ctimeMs,
 * ino] by index (a file without an index, or NaN, is lstat'ed); `onFile` gets the file's index (-1: none).
 */
export function treeStatsKnown(root: string, folder: (rel: string) => KnownFolder | undefined, stats: Float64Array, onFile: (dirAbs: string, name: string, index: number, stat: Readonly<FileStat>) => void, fs: RawFs = rawFs()): TreeStats {
  const part = newPart();
  const stat: FileStat = { size: 0, mtimeMs: 0, ctimeMs: 0, ino: 0 };
  const walk = (dirAbs: string, rel: string): void => {
    let listing = folder(rel);
    if (!listing) {
      const read = fs.readdir(dirAbs);
      listing = { ...read, indexes: new Int32Array(read.names.length).fill(-1) };
    }
    for (let k = 0; k < listing.names.length; k++) {
      const name = listing.names[k]!;
      const type = listing.types[k]!;
      if (type === 'dir') {
        part.names.push(name + '/');
        walk(dirAbs + '/' + name, rel === '' ? name : rel + '/' + name);
        part.names.push('/');
      } else if (type === 'symlink') {
        part.names.push(name + '\0' + readlinkSync(dirAbs + '/' + name));
      } else if (type === 'file') {
        const i = listing.indexes[k]!;
        if (i >= 0 && !Number.isNaN(stats[i * 4]!)) {
          stat.size = stats[i * 4]!;
          stat.mtimeMs = stats[i * 4 + 1]!;
          stat.ctimeMs = stats[i * 4 + 2]!;
          stat.ino = stats[i * 4 + 3]!;
        } else {
          fs.lstat(dirAbs + '/' + name, stat);
        }
        onFile(dirAbs, name, i, stat);
        part.names.push(name);
        pushStat(part, stat);
      }
    }
  };
  walk(root, '');
  return digestOf([part]);
}

/** Below this many subfolders at the top, one thread walks the tree (a worker costs ~20-40 ms to start). */
export const PARALLEL_MIN_DIRS = 64;

// The helper thread's walk of one top-level folder, through the public API: the same numbers as raw-fs.ts
// gives (its self-check compares exactly these), so the digest does not depend on who walked what.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { readdirSync, lstatSync, readlinkSync } = require('node:fs');
const { root, dirs, counter } = workerData;
const done = [];
try {
  for (;;) {
    const index = Atomics.add(counter, 0, 1);
    if (index >= dirs.length) break;
    const names = [];
    let stats = new Float64Array(1024), n = 0, youngest = -Infinity;
    const walk = (dirAbs, name, dirent) => {
      const abs = dirAbs + '/' + name;
      if (dirent === null || dirent.isDirectory()) {
        names.push(name + '/');
        for (const child of readdirSync(abs, { withFileTypes: true })) walk(abs, child.name, child);
        names.push('/');
      } else if (dirent.isSymbolicLink()) {
        names.push(name + '\\0' + readlinkSync(abs));
      } else if (dirent.isFile()) {
        const s = lstatSync(abs);
        names.push(name);
        if (n + 4 > stats.length) { const grown = new Float64Array(stats.length * 2); grown.set(stats); stats = grown; }
        stats[n++] = s.size; stats[n++] = s.mtimeMs; stats[n++] = s.ctimeMs; stats[n++] = s.ino;
        if (s.mtimeMs > youngest) youngest = s.mtimeMs;
      }
    };
    walk(root, dirs[index], null);
    done.push({ index, names, stats: stats.slice(0, n), youngest });
  }
  parentPort.postMessage({ done });
} catch (error) {
  parentPort.postMessage({ error: String(error && error.message || error) });
}
`;

interface WorkerReply {
  done?: { index: number; names: string[]; stats: Float64Array; youngest: number }[];
  error?: string;
}

/**
 * Whether a second thread would get a core of its own. On a busy machine a starting worker takes its CPU from
 * this thread (measured here at load 5 on 2 cores: the walk 160-300 ms alone, 250-400 ms split), so it is
 * used only while the last minute's load average stays under the core count. The bound was `cores - 1`,
 * which a quiet machine running just the benchmark (load 1.1-1.5) did not pass: there, split 0.265/0.300 s
 * against 0.322/0.319 s alone (warm status of stage1_train, medians of 5). RUNNER_TREE_THREADS=1|2 overrides.
 */
function aCoreIsFree(): boolean {
  const forced = process.env['RUNNER_TREE_THREADS'];
  if (forced === '1' || forced === '2') return forced === '2';
  const cores = availableParallelism();
  return cores >= 2 && loadavg()[0]! < cores;
}

/**
 * treeStats without `keep`, with a second thread for a large tree: the top-level folders are handed out one
 * at a time (a shared counter) to this thread and a worker. This thread starts at once and never waits for
 * the worker to start: if it is done first, the worker is stopped unused. Same digest as treeStats.
 */
export async function treeStatsParallel(root: string): Promise<TreeStats> {
  const fs = rawFs();
  const top = fs.readdir(root);
  const dirs = top.names.filter((_, i) => top.types[i] === 'dir');
  if (dirs.length < PARALLEL_MIN_DIRS || !aCoreIsFree()) return treeStats(root);
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { root, dirs, counter } });
  const reply = new Promise<WorkerReply>((resolve) => {
    worker.once('message', resolve);
    worker.once('error', (error) => resolve({ error: error.message }));
  });
  const byDir: (Part | undefined)[] = new Array(dirs.length);
  let walkedHere = 0;
  const stat: FileStat = { size: 0, mtimeMs: 0, ctimeMs: 0, ino: 0 };
  try {
    for (;;) {
      const index = Atomics.add(counter, 0, 1);
      if (index >= dirs.length) break;
      const part = newPart();
      walkEntry(part, fs, root, dirs[index]!, 'dir', stat);
      byDir[index] = part;
      walkedHere++;
    }
    if (walkedHere < dirs.length) {
      const { done } = await reply;
      if (!done) return treeStats(root); // the worker failed (it reports why to no one): walk it all here
      for (const d of done) byDir[d.index] = { names: d.names, stats: d.stats, n: d.stats.length, youngest: d.youngest };
    }
  } finally {
    void worker.terminate();
  }
  // In readdir order, as treeStats walks: top-level files and links where they are, folders from byDir.
  const parts: Part[] = [];
  let loose = newPart();
  let next = 0;
  for (let i = 0; i < top.names.length; i++) {
    if (top.types[i] === 'dir') {
      parts.push(loose, byDir[next++]!);
      loose = newPart();
    } else {
      walkEntry(loose, fs, root, top.names[i]!, top.types[i]!, stat);
    }
  }
  parts.push(loose);
  return digestOf(parts);
}
