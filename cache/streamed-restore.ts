// Restoring a directory out while its pack streams in (cache/remote/transfer.ts): each member, once its bytes
// hash to its name, is written at once to every file of the manifest with that content, inside the restore's
// temp sibling (restore-temps.ts); the store's own restore (store.ts) fills what the stream did not deliver and
// renames the tree into place. A pull of a folder of 30k files then reads and hashes the pack once, not twice
// (once on the way in, once more out of the store), and creates the files while the download goes on.
//
// Nothing here decides what is trusted: the caller hands over bytes it has checked against their name, and
// nothing is renamed into the workspace here. A tree whose stream went wrong is discarded whole.
//
// For a large folder the files are written by a worker thread, while this one reads and hashes the stream and
// writes the pack's copy; this one writes files only when the worker is far behind (WORKER_BACKLOG_MAX): two
// threads creating files in one tree contend in the kernel and are no faster than one, and a share written here
// is time this thread's own work waits. The worker is, as in pack-restore-worker.ts, an inline CommonJS script of node
// builtins, so it runs the same from source and from dist/. Each file gets mode 0644 and the time `timeMs`
// (the pack's: store.ts restores the same files from the store with the same time), and its stats are taken
// as it is closed, for the stat cache (WrittenTree). The folders' listings the stat cache needs too are taken by
// this thread while the worker writes its last batches: each folder once all its files are written (a
// counter per folder, shared), so that only the last few are listed after the worker is done.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { closeSync, fchmodSync, fstatSync, futimesSync, openSync, writeSync } from 'node:fs';
import type { RestoreSite } from './restore-temps.js';
import type { ManifestEntry } from './types.js';
import type { KnownFolder } from './tree-stats.js';
import { restoreWriterAddon } from './restore-writer-addon.js';
import { rawFs } from './raw-fs.js';

/**
 * Whether files created with mode 0644 keep it (no fchmod needed). Read once, when this module loads: reading
 * the umask sets it for a moment, which a thread creating files at that moment would see.
 */
const UMASK_KEEPS_644 = (process.umask() & 0o644) === 0;

/** From this many files on, a worker thread writes them (below it, its start costs more than it saves). */
export const STREAMED_WORKER_MIN_FILES = 512;
/** Bytes of files handed to the worker in one message. */
const BATCH_BYTES = 1 << 20;
/** Files handed to the worker in one message at most. */
const BATCH_FILES = 256;
/**
 * Batches the worker may have waiting before this thread writes files itself (into folders the worker has
 * made): a bound on the memory the batches hold (up to BATCH_BYTES each), not a share of the work. With a share
 * of 2 (this thread writing whenever the worker had two batches waiting, a third of stage1_train's files) a
 * pull took 1.29-1.37 s against 1.20-1.32 s for the worker alone (five pairs alternated, quiet disk).
 */
const WORKER_BACKLOG_MAX = 32;

// The worker is started idle (it may be started before the manifest is even downloaded: takeWriter) and its
// first message is its tree: the temp root, its folders to make (in order), every manifest path and the number
// of its folder, the time, whether the umask already gives 0644, and shared counters: the batches it has done
// (notified after each), how many of the folders it has made, and the files written into each folder (by
// either thread). A batch: manifest indexes with their ranges in one buffer. It answers once, at the end:
// each written file's [size, mtimeMs, ctimeMs, ino] (fstat'ed after its last change) by index.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { mkdirSync, openSync, fchmodSync, writeSync, futimesSync, fstatSync, closeSync } = require('node:fs');
const { errno } = require('node:os').constants;
let w, time, progress, written, stats, native;
let failed = false;
function fail(error) {
  failed = true;
  parentPort.postMessage({ error: (error && (error.code || error.message)) || String(error) });
}
function begin(tree) {
  w = tree;
  time = new Date(w.timeMs);
  progress = new Int32Array(w.progress);
  written = new Int32Array(w.written);
  stats = new Float64Array(w.paths.length * 4).fill(NaN);
  try {
    native = w.addon === undefined ? undefined : require(w.addon);
  } catch {
    native = undefined; // not loadable here: the loop below writes
  }
  try {
    // Parents first; the count is shared at once: the other thread writes files into the folders made so far.
    for (let k = 0; k < w.folders.length; k++) {
      mkdirSync(w.folders[k]);
      Atomics.store(progress, 1, k + 1);
    }
  } catch (error) {
    fail(error);
  }
}
parentPort.on('message', (m) => {
  if (m.tree) {
    begin(m.tree);
    return;
  }
  if (m.end) {
    if (!failed) parentPort.postMessage({ done: true, stats, native: native !== undefined }, [stats.buffer]);
    parentPort.close();
    return;
  }
  if (failed) return;
  const bytes = Buffer.from(m.buffer);
  try {
    if (native) writeNatively(m, bytes);
    else for (let k = 0; k < m.indexes.length; k++) {
      const i = m.indexes[k];
      const out = openSync(w.root + '/' + w.paths[i], 'wx', 0o644);
      try {
        if (!w.umaskKeeps644) fchmodSync(out, 0o644);
        const end = m.offsets[k] + m.sizes[k];
        for (let at = m.offsets[k]; at < end; ) at += writeSync(out, bytes, at, end - at);
        futimesSync(out, time, time);
        const s = fstatSync(out);
        stats[i * 4] = s.size; stats[i * 4 + 1] = s.mtimeMs; stats[i * 4 + 2] = s.ctimeMs; stats[i * 4 + 3] = s.ino;
      } finally {
        closeSync(out);
      }
      Atomics.add(written, w.folderOf[i], 1);
    }
  } catch (error) {
    fail(error);
  }
  Atomics.add(progress, 0, 1);
  Atomics.notify(progress, 0);
});
// The same files and stats through the C loop (restore-writer-addon.ts); times in ms as Node computes them.
function writeNatively(m, bytes) {
  let paths = '';
  for (let k = 0; k < m.indexes.length; k++) paths += w.paths[m.indexes[k]] + '\\0';
  const out = new Float64Array(m.indexes.length * 6);
  const done = native.writeFiles(w.root + '/', paths, bytes, m.offsets, m.sizes, time.getTime() / 1000, !w.umaskKeeps644, out);
  for (let k = 0; k < Math.max(done, 0) && k < m.indexes.length; k++) {
    const i = m.indexes[k], o = k * 6;
    stats[i * 4] = out[o]; stats[i * 4 + 1] = out[o + 1] * 1e3 + out[o + 2] / 1e6;
    stats[i * 4 + 2] = out[o + 3] * 1e3 + out[o + 4] / 1e6; stats[i * 4 + 3] = out[o + 5];
    Atomics.add(written, w.folderOf[i], 1);
  }
  if (done < 0) {
    const code = Object.keys(errno).find((name) => errno[name] === -done);
    throw Object.assign(new Error('errno ' + -done), { code });
  }
}
`;

/** Settles once `array[index]` is no longer `value`, or after a few milliseconds (a missed wake-up costs no more). */
function waitForChange(array: Int32Array, index: number, value: number): Promise<unknown> {
  // Atomics.waitAsync is in Node 20 (V8), not yet in TypeScript's ES2023 library.
  const waitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, ms: number) => { async: boolean; value: Promise<unknown> } }).waitAsync;
  return new Promise((resolve) => {
    // A timer as well: a pending waitAsync does not keep the process's event loop alive.
    const timer = setTimeout(resolve, 5);
    const waited = waitAsync?.(array, index, value, 5);
    if (waited) void (waited.async ? waited.value : Promise.resolve()).then(() => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

/** A writer started before its tree is known (warmRestoreWriter); `dead` once it failed or exited unused. */
interface SpareWriter {
  worker: Worker;
  dead: boolean;
}

let spare: SpareWriter | undefined;

function startWriter(): SpareWriter {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const started: SpareWriter = { worker, dead: false };
  // Until a tree takes it nothing waits on it: a failure only makes it unusable (a tree then starts its own).
  const dead = (): void => {
    started.dead = true;
  };
  worker.once('error', dead);
  worker.once('exit', dead);
  // An idle spare does not keep the process alive.
  worker.unref();
  return started;
}

/**
 * Starts a writer thread ahead of the tree it will write, when a large folder may be about to stream in (a
 * pull calls it before the folder's manifest is downloaded): a worker takes 40-70 ms to start on a 2-core VM,
 * time the download of the manifest hides. At most one waits; one nobody takes costs a thread's start.
 */
export function warmRestoreWriter(): void {
  if ((spare && !spare.dead) || availableParallelism() < 2) return;
  spare = startWriter();
}

/** The waiting writer, or a new one. */
function takeWriter(): Worker {
  const taken = spare && !spare.dead ? spare : startWriter();
  spare = undefined;
  taken.worker.ref();
  return taken.worker;
}

/**
 * What a restore knows of the tree it wrote, so that the stat cache (hash.ts, rememberRestoredTree) needs no
 * walk of its own: the files' stats, and each folder's entries in readdir order.
 */
export interface WrittenTree {
  /** [size, mtimeMs, ctimeMs, ino] by manifest index (NaN: not known). */
  stats: Float64Array;
  /** Every folder's listing, each file with its manifest index, by path relative to the tree's top ('' the top); absent: not known. */
  folders?: Map<string, KnownFolder>;
  /** Whether a writer thread wrote files with the C loop (restore-writer-addon.ts). */
  native?: boolean;
}

export interface StreamedTreeOptions {
  /** WORKER_BACKLOG_MAX; a test sets 0 to have this thread write every file whose folder is made. */
  backlogMax?: number;
  /** Whether the writer thread uses the C loop when the build compiled it (restore-writer-addon.ts); default true. */
  nativeWriter?: boolean;
}

interface WorkerDone {
  stats: Float64Array;
  native: boolean;
}

interface Batch {
  indexes: Int32Array;
  offsets: Int32Array;
  sizes: Int32Array;
  files: number;
  buffer: Buffer;
  used: number;
}

export class StreamedTree {
  /** Per manifest entry: whether its file is written (or handed to the worker to write). */
  private readonly placed: Uint8Array;
  /** Regular-file entries by content hash (a symlink's object is its target: the store restores those). */
  private readonly byHash = new Map<string, number[]>();
  private readonly worker: Worker | undefined;
  private readonly outcome: Promise<WorkerDone> | undefined;
  /** The worker's folders, in the order it makes them, and each manifest entry's folder (its number there). */
  private readonly folders: string[] = [];
  private readonly folderOf: Int32Array | undefined;
  private batch: Batch | undefined;
  /** What stopped this thread's writing (finish throws it). */
  private failure: unknown;
  private readonly time: Date;
  /** [size, mtimeMs, ctimeMs, ino] of each file this thread wrote, by manifest index (NaN: not written here). */
  private readonly stats: Float64Array;
  private readonly umaskKeeps644 = UMASK_KEEPS_644;
  /** Batches sent to the worker; shared with it: how many it has done, and how many folders it has made. */
  private sent = 0;
  /** Whether the stream is over (seal), and whether it delivered every file (then finish lists the folders). */
  private sealed = false;
  private listed = false;
  private readonly progress = new Int32Array(new SharedArrayBuffer(8));
  /** Per folder (worker's numbering): the regular files of the manifest in it, and those written so far (shared). */
  private readonly filesIn: Int32Array | undefined;
  private readonly writtenIn: Int32Array | undefined;
  private readonly backlogMax: number;

  constructor(
    readonly site: RestoreSite,
    readonly manifest: readonly ManifestEntry[],
    readonly timeMs: number,
    options: StreamedTreeOptions = {},
  ) {
    this.backlogMax = options.backlogMax ?? WORKER_BACKLOG_MAX;
    this.placed = new Uint8Array(manifest.length);
    this.time = new Date(timeMs);
    this.stats = new Float64Array(manifest.length * 4).fill(Number.NaN);
    if (manifest.length < STREAMED_WORKER_MIN_FILES || availableParallelism() < 2) {
      site.makeFolders(manifest);
      this.indexByHash();
      return;
    }
    // The worker makes the folders, started first: this thread writes into those made while it goes on.
    this.folders = site.folders(manifest);
    const folderOf = this.numberFolders();
    this.folderOf = folderOf;
    this.filesIn = new Int32Array(this.folders.length);
    for (let i = 0; i < manifest.length; i++) if (!manifest[i]!.symlink) this.filesIn[folderOf[i]!]!++;
    this.writtenIn = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, this.folders.length)));
    const worker = takeWriter();
    worker.postMessage({ tree: { root: site.tmp, folders: this.folders, paths: manifest.map((e) => e.path), folderOf, timeMs, umaskKeeps644: this.umaskKeeps644, progress: this.progress.buffer, written: this.writtenIn.buffer, addon: options.nativeWriter === false ? undefined : restoreWriterAddon() } });
    this.worker = worker;
    this.outcome = new Promise<WorkerDone>((resolve, reject) => {
      let done: WorkerDone | undefined;
      worker.on('message', (message: Partial<WorkerDone> & { error?: string }) => {
        if (message.error !== undefined) reject(new Error(`writing the restored files: ${message.error}`));
        else done = message as WorkerDone;
      });
      worker.on('error', reject);
      worker.on('exit', (code) => (done ? resolve(done) : reject(new Error(`the restore writer exited with code ${code} before it finished`))));
    });
    // Seen by finish/discard; no unhandled rejection while the stream is still running.
    this.outcome.catch(() => undefined);
    this.indexByHash();
  }

  private indexByHash(): void {
    for (let i = 0; i < this.manifest.length; i++) {
      const entry = this.manifest[i]!;
      if (entry.symlink) continue;
      const same = this.byHash.get(entry.hash);
      if (same) same.push(i);
      else this.byHash.set(entry.hash, [i]);
    }
  }

  /** Each manifest entry's folder: its number in `folders`. */
  private numberFolders(): Int32Array {
    const number = new Map<string, number>();
    const top = this.site.tmp.length + 1;
    for (let k = 0; k < this.folders.length; k++) number.set(this.folders[k]!.slice(top), k);
    const of = new Int32Array(this.manifest.length);
    let last = '';
    let k = 0;
    for (let i = 0; i < this.manifest.length; i++) {
      const path = this.manifest[i]!.path;
      const dir = path.slice(0, Math.max(0, path.lastIndexOf('/')));
      if (dir !== last) k = number.get((last = dir))!;
      of[i] = k;
    }
    return of;
  }

  /** Writes the files with this content, whose `bytes` the caller has checked against `hash`. */
  place(hash: string, bytes: Buffer): void {
    const entries = this.byHash.get(hash);
    if (!entries || this.failure !== undefined || this.sealed) return;
    try {
      const made = this.worker ? Atomics.load(this.progress, 1) : Number.POSITIVE_INFINITY;
      const here = !this.worker || this.sent - Atomics.load(this.progress, 0) >= this.backlogMax;
      let batch: Batch | undefined;
      for (const i of entries) {
        if (this.placed[i]) continue;
        this.placed[i] = 1;
        if (here && (!this.folderOf || this.folderOf[i]! < made)) this.write(i, bytes);
        else {
          // The bytes copied once into the batch; every file with them points at the same range.
          if (!batch) {
            batch = this.batchFor(bytes.length);
            bytes.copy(batch.buffer, batch.used);
          }
          batch.indexes[batch.files] = i;
          batch.offsets[batch.files] = batch.used;
          batch.sizes[batch.files++] = bytes.length;
          if (batch.files === BATCH_FILES) {
            batch.used += bytes.length;
            this.send();
            batch = undefined;
          }
        }
      }
      if (batch) batch.used += bytes.length;
    } catch (error) {
      // Reported by finish: the download goes on whatever happens to the workspace.
      this.failure = error;
    }
  }

  /** One file written by this thread, as the worker writes them. */
  private write(i: number, bytes: Buffer): void {
    const out = openSync(`${this.site.tmp}/${this.manifest[i]!.path}`, 'wx', 0o644);
    try {
      if (!this.umaskKeeps644) fchmodSync(out, 0o644);
      for (let at = 0; at < bytes.length; ) at += writeSync(out, bytes, at, bytes.length - at);
      futimesSync(out, this.time, this.time);
      const s = fstatSync(out);
      this.stats.set([s.size, s.mtimeMs, s.ctimeMs, s.ino], i * 4);
    } finally {
      closeSync(out);
    }
    if (this.writtenIn) Atomics.add(this.writtenIn, this.folderOf![i]!, 1);
  }

  /** How many of the tree's folders are made (by the worker; all of them when there is none). */
  get foldersMade(): number {
    return this.worker ? Atomics.load(this.progress, 1) : this.folders.length;
  }

  /** Whether the stream delivered this entry's file. */
  isPlaced(index: number): boolean {
    return this.placed[index] === 1;
  }

  /** The stream is over: nothing more will be placed. The worker gets its last files. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    if (!this.worker) return;
    this.send();
    this.listed = this.placed.every((p) => p === 1);
    this.worker.postMessage({ end: true });
  }

  /**
   * Waits until every placed file is written (sealing the tree); throws what stopped the writing (a full
   * disk, say). Returns what it knows of the tree for the stat cache: the files' stats and, when the stream
   * delivered every file (else the store writes the rest afterwards), each folder's listing, taken here
   * while the worker writes its last batches (each folder as soon as all its files are written).
   */
  async finish(): Promise<WrittenTree> {
    this.seal();
    if (this.failure !== undefined) throw this.failure;
    if (!this.worker) return { stats: this.stats };
    const listings = this.listed ? await this.listWhileWriting() : undefined;
    const theirs = await this.outcome!;
    for (let i = 0; i < theirs.stats.length; i += 4) if (!Number.isNaN(theirs.stats[i]!)) this.stats.set(theirs.stats.subarray(i, i + 4), i);
    if (!listings) return { stats: this.stats, native: theirs.native };
    const folders = new Map<string, KnownFolder>();
    const top = this.site.tmp.length + 1;
    for (let k = 0; k < this.folders.length; k++) folders.set(this.folders[k]!.slice(top), listings[k] ?? this.list(k));
    return { stats: this.stats, folders, native: theirs.native };
  }

  /**
   * Lists each folder once every folder is made and every file of it is written, waking at each batch the worker finishes, until all
   * are listed or the worker is done (finish lists what is left then); the worker's failure ends it too.
   */
  private async listWhileWriting(): Promise<(KnownFolder | undefined)[]> {
    const listings: (KnownFolder | undefined)[] = new Array<KnownFolder | undefined>(this.folders.length);
    let over = false;
    void this.outcome!.then(() => (over = true), () => (over = true));
    let open = 0; // folders before this one are listed
    while (open < this.folders.length && !over) {
      const batches = Atomics.load(this.progress, 0);
      // Not before every folder is made: a folder's listing holds its subfolders.
      const made = Atomics.load(this.progress, 1) === this.folders.length ? this.folders.length : 0;
      for (let k = open; k < made; k++) {
        if (listings[k] === undefined && Atomics.load(this.writtenIn!, k) === this.filesIn![k]) listings[k] = this.list(k);
        if (k === open && listings[k] !== undefined) open++;
      }
      if (open < this.folders.length) await waitForChange(this.progress, 0, batches);
    }
    return listings;
  }

  /** Names by folder, each with its manifest index: the listings' indexes (made on first use). */
  private namesIn: Map<string, number>[] | undefined;

  /** Folder k's entries in readdir order, each file with its manifest index (-1: not the manifest's). */
  private list(k: number): KnownFolder {
    if (!this.namesIn) {
      this.namesIn = this.folders.map(() => new Map<string, number>());
      for (let i = 0; i < this.manifest.length; i++) {
        const path = this.manifest[i]!.path;
        this.namesIn[this.folderOf![i]!]!.set(path.slice(path.lastIndexOf('/') + 1), i);
      }
    }
    const listing = rawFs().readdir(this.folders[k]!);
    const byName = this.namesIn[k]!;
    const indexes = new Int32Array(listing.names.length);
    for (let j = 0; j < indexes.length; j++) indexes[j] = listing.types[j] === 'file' ? byName.get(listing.names[j]!) ?? -1 : -1;
    return { names: listing.names, types: listing.types, indexes };
  }

  /** Stops the writer and removes the temp tree; nothing of it reaches the workspace. */
  async discard(): Promise<void> {
    if (this.worker) {
      this.batch = undefined;
      if (!this.sealed) this.worker.postMessage({ end: true });
      this.sealed = true;
      await this.outcome?.catch(() => undefined);
    }
    this.site.discard();
  }

  /** The batch to add `size` bytes of files to: the current one, or a new one when they would not fit. */
  private batchFor(size: number): Batch {
    if (this.batch && this.batch.used + size > this.batch.buffer.length) this.send();
    return (this.batch ??= {
      indexes: new Int32Array(BATCH_FILES), offsets: new Int32Array(BATCH_FILES), sizes: new Int32Array(BATCH_FILES), files: 0,
      buffer: Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, size)), used: 0,
    });
  }

  private send(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (!batch || batch.files === 0) return;
    const n = batch.files;
    // Its own ArrayBuffer (allocUnsafeSlow), handed over without a copy.
    const buffer = batch.buffer.buffer as ArrayBuffer;
    const message = { indexes: batch.indexes.subarray(0, n), offsets: batch.offsets.subarray(0, n), sizes: batch.sizes.subarray(0, n), buffer };
    this.worker!.postMessage(message, [buffer]);
    this.sent++;
  }
}
