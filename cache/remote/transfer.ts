// Moving stage results between the local store/run-cache and a remote (backend.ts), with the guarantees that
// make a shared cache safe to use:
//
//   integrity   every object downloaded is re-hashed while it streams to a temp file in the store's tmp/ and
//               renamed into place only when its sha256 is its name, and only once its bytes are on disk
//               (object-batch.ts: durable in batches, not one fsync per object); a record or manifest is validated
//               (validate.ts) before it can shape a restore. Missing or corrupt objects are warnings that name
//               them; the stage is then a miss and runs.
//   order       push uploads a record's blobs, then its directory manifests, then their packs and pack
//               indexes, then the record (ac/) last, so a killed push leaves no record naming a missing object.
//   economy     objects the remote has are not re-sent (HEAD first, results remembered for the run); requests
//               run in parallel up to a bound, over keep-alive connections. A directory out of many small
//               objects also gets a pack (pack.ts): one GET instead of one per object, each object in it
//               re-hashed on its own, and the pack kept whole in the local store (store-packs.ts: one file to
//               write and flush, one to read back); whatever the pack does not deliver is fetched object by object.
//               A pull restores such a folder in the same pass (StreamRestore, ../streamed-restore.ts): each
//               object, once it hashes to its name, is written into the out's temp tree in the workspace,
//               which is renamed into place only after the whole pack verified and the out is stored.
//   failure     never fatal: transient errors (timeouts, resets, 5xx, truncated bodies) are retried with
//               backoff, every request here being idempotent; what still fails is a warning. After a run of
//               consecutive failures the remote is taken as down and skipped for the rest of the process.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, fdatasync, futimesSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import PQueue from 'p-queue';
import { sha256 } from '../hash.js';
import { parseManifest } from '../manifest.js';
import { readRange } from '../read-range.js';
import { DamagedObjectError, MissingObjectError, type Store } from '../store.js';
import { OutsideWorkspaceError } from '../safe-path.js';
import type { StatCache } from '../stat-cache.js';
import { warmRestoreWriter, type StreamedTree } from '../streamed-restore.js';
import type { EarlyWrite } from '../early-write.js';
import type { ContentHash, ManifestEntry, PathHash, RunRecord, StageKey } from '../types.js';
import { RemoteError, type ObjectKey, type RemoteBackend } from './backend.js';
import { ObjectBatch } from './object-batch.js';
import { PACK_FORMAT, PACK_MAX_BYTES, PACK_MIN_OBJECTS, PACK_OBJECT_MAX_BYTES, PACK_VERSION, PackCut, forEachMember, packIndexKey, packMembers, packSize, splitPack, validatePackIndex, writePack, type PackIndex, type PackMember } from '../pack.js';
import { validateRemoteRecord, validateRemoteSymlink } from './validate.js';

export interface TransferOptions {
  /** Parallel requests at most. */
  concurrency?: number;
  /** Tries of one request, the first included. */
  attempts?: number;
  /** The first retry's delay; each next one doubles it (plus jitter). */
  retryDelayMs?: number;
  /** Consecutive failed operations after which the remote is taken as down for the rest of the process. */
  downAfter?: number;
  warn?: (message: string) => void;
}

export interface RemoteStats {
  hits: number;
  misses: number;
  downloadedObjects: number;
  downloadedBytes: number;
  uploadedObjects: number;
  uploadedBytes: number;
  errors: number;
}

/** What tryRun returns for an operation that failed (and was warned about). */
const FAILED = Symbol('failed');

/** Records and manifests are read into memory; anything larger is refused rather than buffered. */
const MAX_METADATA_BYTES = 256 << 20;
/** Objects up to this size are read into memory and written in one call; larger ones are streamed. */
const SMALL_OBJECT_BYTES = 4 << 20;
/** Warnings printed at most; the summary line counts all of them. */
const MAX_WARNINGS = 20;

/** ac/<sha256 of the stage key>: Bazel's action-cache name for a stage's run record. */
export function acKey(key: StageKey): ObjectKey {
  return `ac/${sha256(key)}`;
}

function casKey(hash: string): ObjectKey {
  return `cas/${hash}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/** An object being downloaded: `staged` once its verified temp waits in the batch, `stored` once it has its name. */
interface Fetch {
  staged: Promise<boolean>;
  stored: Promise<boolean>;
}

const PRESENT: Fetch = { staged: Promise.resolve(true), stored: Promise.resolve(true) };

/** An object a pack is to deliver. */
interface PackWant {
  size: number;
  /** A file with this content (its path in the folder), for warnings. */
  path: string;
  /** A verified temp file of its own, salvaged from a pack that is not kept. */
  salvaged?: string;
}

/**
 * A pack about to be read: its validated index, its members in pack order, and what this pull wants of it.
 * Its wanted objects share one Fetch (a folder of 30k files is not 30k pairs of promises): `settle` gives it
 * the outcome of all of them together.
 */
interface PackPlan {
  indexName: ObjectKey;
  index: PackIndex;
  members: PackMember[];
  wanted: Map<string, PackWant>;
  settle: (staged: Promise<boolean>, stored: Promise<boolean>) => void;
}

/**
 * A workspace whose directory outs a pull restores straight from their packs' streams (cache/streamed-
 * restore.ts) instead of from the store once the download is done: one pass over the bytes, not two.
 */
export interface StreamRestore {
  workspace: string;
  statCache: StatCache;
  /** Whether this out is to be restored (it is missing or differs in the workspace). */
  wants(out: PathHash): boolean;
  /**
   * The out's tree, built from a pack that was all it claimed to be, once the store holds the out: the
   * caller finishes it (Store.finishStreamedRestore) or discards it.
   */
  arrived(out: PathHash, tree: StreamedTree): void;
}

/** A local object to upload: its name and where its bytes are (a file of its own, or a range of a pack). */
interface Blob {
  hash: string;
  file: string;
  offset: number;
  size: number;
}

export class RemoteTransfer {
  readonly stats: RemoteStats = { hits: 0, misses: 0, downloadedObjects: 0, downloadedBytes: 0, uploadedObjects: 0, uploadedBytes: 0, errors: 0 };
  private readonly queue: PQueue;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly downAfter: number;
  private readonly warnSink: (message: string) => void;
  private warnings = 0;
  /** Objects known to be on the remote (a HEAD said so, or this process put them). */
  private readonly present = new Set<string>();
  /** Objects found corrupt on the remote: a push sends them again whatever HEAD says. */
  private readonly corrupt = new Set<string>();
  private consecutiveFailures = 0;
  private down = false;
  private readonly pushes: Promise<boolean>[] = [];

  constructor(readonly backend: RemoteBackend, private readonly store: Store, options: TransferOptions = {}) {
    this.queue = new PQueue({ concurrency: options.concurrency ?? 16 });
    this.attempts = options.attempts ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.downAfter = options.downAfter ?? 8;
    this.warnSink = options.warn ?? ((message) => process.stderr.write(`warning: ${message}\n`));
    this.batch = new ObjectBatch(store.tmpDir, (final, error) => this.warn(`storing ${casKey(final.slice(final.lastIndexOf('/') + 1))}: ${error.message}`));
  }

  /** Downloaded objects waiting for one durable commit. */
  private readonly batch: ObjectBatch;

  private warn(message: string): void {
    this.stats.errors++;
    this.warnings++;
    if (this.warnings <= MAX_WARNINGS) this.warnSink(`remote ${this.backend.display}: ${message}`);
    else if (this.warnings === MAX_WARNINGS + 1) this.warnSink(`remote ${this.backend.display}: more problems; the summary line counts them`);
  }

  /** One operation, queued and retried; throws RemoteError when it finally fails. */
  private run<T>(operation: () => Promise<T>): Promise<T> {
    return this.queue.add(async () => {
      for (let attempt = 1; ; attempt++) {
        if (this.down) throw new RemoteError('the remote is down (see above)', false);
        try {
          const result = await operation();
          this.consecutiveFailures = 0;
          return result;
        } catch (error) {
          const remoteError = error instanceof RemoteError ? error : new RemoteError((error as Error).message, false);
          if (remoteError.transient && attempt < this.attempts) {
            await sleep(this.retryDelayMs * 2 ** (attempt - 1) * (1 + Math.random() / 2));
            continue;
          }
          if (++this.consecutiveFailures >= this.downAfter && !this.down) {
            this.down = true;
            this.warn(`${remoteError.message}; ${this.downAfter} operations in a row failed, going on without the remote`);
          }
          throw remoteError;
        }
      }
    }) as Promise<T>;
  }

  /** The operation's result, or FAILED after warning about its failure. */
  private async tryRun<T>(operation: () => Promise<T>): Promise<T | typeof FAILED> {
    try {
      return await this.run(operation);
    } catch (error) {
      if (!this.down || !(error as Error).message.startsWith('the remote is down')) this.warn((error as Error).message);
      return FAILED;
    }
  }

  // ---- download ------------------------------------------------------------------------------------------

  /**
   * The stage's run record from the remote, with every object it names now in the local store, or undefined
   * (a miss: absent, invalid, or an object missing or corrupt, each warned about).
   */
  async fetchRecord(key: StageKey, declaredOuts: readonly string[], restore?: StreamRestore): Promise<RunRecord | undefined> {
    if (this.down) return undefined;
    const name = acKey(key);
    const bytes = await this.fetchBytes(name);
    if (bytes === undefined || bytes === 'missing') {
      this.stats.misses++;
      return undefined;
    }
    let record: unknown;
    let problem: string | undefined;
    try {
      record = JSON.parse(bytes.toString('utf8'));
      problem = validateRemoteRecord(record, key, declaredOuts);
    } catch (error) {
      problem = `not JSON (${(error as Error).message})`;
    }
    if (problem) {
      this.corrupt.add(name);
      this.warn(`record ${name} is unusable: ${problem}; the stage will run`);
      this.stats.misses++;
      return undefined;
    }
    const ok = await this.fetchOuts((record as RunRecord).outs, restore);
    if (ok) this.stats.hits++;
    else {
      this.stats.misses++;
      // The record names what the remote lacks (evicted, damaged): a push from this process repairs it.
      this.corrupt.add(name);
    }
    return ok ? (record as RunRecord) : undefined;
  }

  /**
   * Makes the local store hold every object of these outs; false (after warnings) when it could not. With
   * `restore`, a directory out it wants that arrives in a pack is restored on the way (and reported there).
   */
  async fetchOuts(outs: readonly PathHash[], restore?: StreamRestore): Promise<boolean> {
    const results = await Promise.all(outs.map((out) => (this.store.has(out) ? true : out.isDir ? this.fetchDir(out, restore) : this.fetchFile(out))));
    return results.every(Boolean);
  }

  private async fetchFile(out: PathHash): Promise<boolean> {
    return this.storeAll([this.fetchObject(out.hash, out.size, out.path)]);
  }

  /** Waits for these downloads, commits the batch they are in, and says whether all of them are stored. */
  private async storeAll(all: readonly Fetch[]): Promise<boolean> {
    const fetches = [...new Set(all)]; // a pack's objects share one
    const staged = await Promise.all(fetches.map((f) => f.staged));
    await this.batch.commit();
    const stored = await Promise.all(fetches.map((f) => f.stored));
    return staged.every(Boolean) && stored.every(Boolean);
  }

  private async fetchDir(out: PathHash, restore?: StreamRestore): Promise<boolean> {
    const manifestFile = this.store.objectPath(out.hash, true);
    let text: Buffer;
    /** Whether `text` hashed to the manifest's name already (fetchBytes checks what it downloads). */
    let hashed = false;
    // The writer thread starts while the manifest downloads (a worker's start is tens of milliseconds).
    if (restore?.wants(out)) warmRestoreWriter();
    /** The pack's index, asked for beside a manifest the store lacks: its objects are then likely lacking too. */
    let indexAhead: Promise<Buffer | 'missing' | undefined> | undefined;
    if (existsSync(manifestFile)) text = readFileSync(manifestFile);
    else {
      indexAhead = this.fetchBytes(packIndexKey(out.hash));
      const bytes = await this.fetchBytes(casKey(out.hash), out.hash);
      if (bytes === undefined) return false;
      if (bytes === 'missing') {
        this.warn(`object ${casKey(out.hash)} (the manifest of ${out.path}) is missing`);
        return false;
      }
      text = bytes;
      hashed = true;
    }
    let entries: ManifestEntry[];
    let problem: string | undefined;
    try {
      // The store's own rules for untrusted manifests (cache/manifest.ts): hash, shape, safe paths.
      entries = parseManifest(text.toString('utf8'), hashed ? undefined : out.hash);
    } catch (error) {
      entries = [];
      problem = (error as Error).message;
    }
    if (problem) {
      this.corrupt.add(casKey(out.hash));
      this.warn(`manifest ${casKey(out.hash)} of ${out.path} is unusable: ${problem}`);
      return false;
    }
    const present = new Map<string, boolean>();
    const holds = this.store.objectsPresent();
    const isPresent = (hash: string): boolean => {
      let known = present.get(hash);
      if (known === undefined) present.set(hash, (known = holds(hash as ContentHash)));
      return known;
    };
    // The pack's time (set on its temp when it is complete) is the restored files' time too, as a restore
    // from the store gives them; set back by the stat cache's racy window, so that their hashes, checked
    // here, are remembered (a later write moves a file's mtime to now, which no record matches).
    const timeMs = restore ? Date.now() - restore.statCache.racyWindowMs : Date.now();
    // Begun before the plan: its folders are made while the pack's index comes. Without a pack, the store
    // fills it once the objects are in (Store.finishStreamedRestore), as its own restore would.
    const tree = restore?.wants(out) ? this.beginTree(out, entries, restore, timeMs) : undefined;
    let handed = false;
    // Made durable while the objects come; named last (putManifest). Not written: stored the usual way then.
    const manifestWrite = this.writeEarly(() => this.store.writeManifestEarly(out.hash, text));
    try {
      const plan = await this.planPack(out, entries, isPresent, indexAhead);
      const fetches = entries.map((e) => (isPresent(e.hash) ? PRESENT : this.fetchObject(e.hash, e.size, `${out.path}/${e.path}`)));
      // A tree is kept only when its pack (if any) was all it claimed to be; else the store restores the out.
      const packWhole = !plan || (await this.readPack(out, plan, timeMs, tree));
      // The stream is over: the tree's writer finishes while the download is stored.
      tree?.seal();
      const stored = await this.storeAll(fetches);
      if (!stored) return false;
      for (const entry of entries) {
        if (!entry.symlink) continue;
        let target: string;
        try {
          target = this.store.readObject(entry.hash, `${out.path}/${entry.path}`).toString('utf8');
        } catch (error) {
          if (!(error instanceof DamagedObjectError) && !(error instanceof MissingObjectError)) throw error;
          this.warn(error.message);
          return false;
        }
        const linkProblem = validateRemoteSymlink(entry.path, target);
        if (linkProblem) {
          this.warn(`manifest ${casKey(out.hash)} of ${out.path} is unusable: ${linkProblem}`);
          return false;
        }
      }
      // The manifest last: a present .dir promises all its files are present (store.ts).
      await this.store.putManifest(out.hash, text, entries, manifestWrite);
      if (tree && packWhole) {
        restore!.arrived(out, tree);
        handed = true;
      }
    } finally {
      manifestWrite?.discard();
      if (tree && !handed) await tree.discard();
    }
    return true;
  }

  /**
   * A file of the store written ahead (cache/early-write.ts); undefined when it could not be (no warning: it
   * is then stored the usual way).
   */
  private writeEarly(write: () => EarlyWrite | undefined): EarlyWrite | undefined {
    try {
      this.ensureTmpDir();
      return write();
    } catch {
      return undefined;
    }
  }

  /** A streamed restore of `out`, begun; undefined (warned) when its temp tree could not be made. */
  private beginTree(out: PathHash, entries: readonly ManifestEntry[], restore: StreamRestore, timeMs: number): StreamedTree | undefined {
    try {
      return this.store.beginStreamedRestore(restore.workspace, out, entries, timeMs);
    } catch (error) {
      if (error instanceof OutsideWorkspaceError) return undefined; // the restore afterwards reports it
      this.warnSink(`restoring ${out.path} while it downloads: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; restoring it afterwards`);
      return undefined;
    }
  }

  /** Objects being downloaded: files with the same content (in one directory or two outs) are fetched once. */
  private readonly fetching = new Map<string, Fetch>();

  private fetchObject(hash: ContentHash, size: number, forPath: string): Fetch {
    let pending = this.fetching.get(hash);
    if (!pending) {
      const staged: Promise<string | undefined> = this.downloadObject(hash, size, forPath);
      const stored = staged.then((got) => (got === undefined ? false : this.batch.stage(got, this.store.objectPath(hash))));
      pending = { staged: staged.then((got) => got !== undefined), stored };
      this.fetching.set(hash, pending);
      void stored.finally(() => this.fetching.delete(hash));
    }
    return pending;
  }

  /**
   * The pack of a directory out, when this pull lacks at least PACK_MIN_OBJECTS of its small objects and the
   * remote has a valid index for it; undefined otherwise (the objects are then fetched one by one). An index
   * the remote lacks is no warning (a remote written without packs); one that is unusable is. `indexAhead`:
   * the index's download, when it was started before the manifest was in.
   */
  private async planPack(out: PathHash, entries: readonly ManifestEntry[], isPresent: (hash: string) => boolean, indexAhead?: Promise<Buffer | 'missing' | undefined>): Promise<PackPlan | undefined> {
    if (!this.lacksEnough(entries, PACK_OBJECT_MAX_BYTES, isPresent)) return undefined;
    const indexName = packIndexKey(out.hash);
    const bytes = await (indexAhead ?? this.fetchBytes(indexName));
    if (bytes === undefined || bytes === 'missing') return undefined;
    let checked: ReturnType<typeof validatePackIndex>;
    try {
      checked = validatePackIndex(JSON.parse(bytes.toString('utf8')), out.hash, entries);
    } catch (error) {
      checked = `not JSON (${(error as Error).message})`;
    }
    if (typeof checked === 'string') {
      this.corrupt.add(indexName);
      this.warn(`pack index ${indexName} of ${out.path} is unusable: ${checked}; fetching its objects one by one`);
      return undefined;
    }
    // Another out with the same objects may have started fetching them while the index came.
    if (!this.lacksEnough(entries, checked.index.objectMaxBytes, isPresent)) return undefined;
    const wanted = new Map<string, PackWant>();
    let settleStaged!: (staged: Promise<boolean>) => void;
    let settleStored!: (stored: Promise<boolean>) => void;
    const shared: Fetch = { staged: new Promise((resolve) => (settleStaged = resolve)), stored: new Promise((resolve) => (settleStored = resolve)) };
    // Each member at its first entry, whose path names it in warnings.
    forEachMember(entries, checked.index.objectMaxBytes, (entry) => {
      if (isPresent(entry.hash) || this.fetching.has(entry.hash)) return;
      wanted.set(entry.hash, { size: entry.size, path: entry.path });
      // Registered now, with no await between the check above and this: a fetch of the same object for
      // another out waits for the pack's delivery instead of starting its own.
      this.fetching.set(entry.hash, shared);
    });
    void shared.stored.finally(() => {
      for (const hash of wanted.keys()) if (this.fetching.get(hash) === shared) this.fetching.delete(hash);
    });
    const settle = (staged: Promise<boolean>, stored: Promise<boolean>): void => {
      settleStaged(staged);
      settleStored(stored);
    };
    return { indexName, index: checked.index, members: checked.members, wanted, settle };
  }

  /**
   * Whether the store lacks, and no download is fetching, at least PACK_MIN_OBJECTS of the distinct objects of
   * at most `maxBytes` these entries name (a pack's members: pack.ts); stops counting once it knows.
   */
  private lacksEnough(entries: readonly ManifestEntry[], maxBytes: number, isPresent: (hash: string) => boolean): boolean {
    let lacking = 0;
    forEachMember(entries, maxBytes, (entry) => !isPresent(entry.hash) && !this.fetching.has(entry.hash) && ++lacking >= PACK_MIN_OBJECTS);
    return lacking >= PACK_MIN_OBJECTS;
  }

  /**
   * Streams a pack into one temp file of the store, splitting it by the sizes its manifest gives and hashing
   * every member against its name and the whole pack against its own. A pack that is all it claims to be
   * joins the store whole (store-packs.ts): one file made durable and renamed, then its index. A pack with a
   * wrong, missing or extra byte is not kept: the wanted members that did hash right become objects of their
   * own, and whatever it did not deliver is downloaded on its own, after one warning that names the pack.
   * `tree`: each member that hashed right is placed in it as it arrives; `timeMs`: the pack's time (and its
   * files'). True when the pack was all it claims.
   */
  private async readPack(out: PathHash, plan: PackPlan, timeMs: number, tree?: StreamedTree): Promise<boolean> {
    const name = casKey(plan.index.pack);
    let problem: string | undefined;
    let corrupt = false;
    const got = await this.tryRun(() => this.backend.get(name));
    if (got === FAILED) problem = 'it could not be read (see above)';
    else if (got === undefined) {
      problem = 'it is missing';
      this.corrupt.add(plan.indexName);
    } else if (got.size !== undefined && got.size !== plan.index.size) {
      got.body.destroy();
      problem = `it has ${got.size} bytes, not ${plan.index.size}`;
      corrupt = true;
    } else {
      const packTmp = this.tempPath();
      const wrong: string[] = [];
      /** Per member (pack order): its bytes hashed to its name. */
      const verified = new Uint8Array(plan.members.length);
      let fd: number | undefined;
      let writer: PackWriter | undefined;
      // Made durable while the pack streams in; named once the pack is (adoptPack).
      const indexWrite = this.writeEarly(() => this.store.writePackIndexEarly(plan.index));
      try {
        this.ensureTmpDir();
        fd = openSync(packTmp, 'wx', 0o444);
        writer = new PackWriter(fd);
        let k = 0;
        const digest = await splitPack(writer.pass(got.body as AsyncIterable<Buffer>), plan.members, (member, bytes) => {
          if (sha256(bytes) !== member.hash) {
            wrong.push(casKey(member.hash));
            k++;
            return;
          }
          verified[k++] = 1;
          tree?.place(member.hash, bytes);
        });
        this.stats.downloadedObjects++;
        this.stats.downloadedBytes += plan.index.size;
        if (wrong.length > 0) problem = `${wrong.length === 1 ? `object ${wrong[0]} in it does` : `${wrong.length} objects in it (${wrong[0]}, …) do`} not hash to ${wrong.length === 1 ? 'its name' : 'their names'}`;
        else if (digest !== plan.index.pack) problem = 'its bytes do not hash to its name';
        corrupt = problem !== undefined;
        if (problem === undefined) futimesSync(fd, timeMs / 1000, timeMs / 1000);
      } catch (error) {
        got.body.destroy();
        problem = error instanceof PackCut ? error.message : `storing it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      } finally {
        await writer?.idle();
        if (fd !== undefined) closeSync(fd);
      }
      if (problem === undefined) {
        // Every member hashed to its name: every wanted object is in the pack.
        const inPack = this.batch.stage(packTmp, this.store.objectPath(plan.index.pack)).then((stored) => {
          if (stored) return this.adoptPack(out, plan, indexWrite);
          indexWrite?.discard();
          return false;
        });
        plan.settle(Promise.resolve(true), inPack);
        return true;
      }
      indexWrite?.discard();
      let offset = 0;
      for (let k = 0; k < plan.members.length; k++) {
        const member = plan.members[k]!;
        const want = verified[k] ? plan.wanted.get(member.hash) : undefined;
        if (want) want.salvaged = this.salvage(packTmp, offset, member.size);
        offset += member.size;
      }
      await rm(packTmp, { force: true });
    }
    if (corrupt) {
      // A push from this process sends the pack and its index again, whatever HEAD says.
      this.corrupt.add(name);
      this.corrupt.add(plan.indexName);
    }
    // What the pack did not deliver is downloaded object by object; what it did was salvaged into temps.
    let fallbacks = 0;
    const staged: Promise<boolean>[] = [];
    const stored: Promise<boolean>[] = [];
    for (const [hash, want] of plan.wanted) {
      if (!want.salvaged) fallbacks++;
      const got = Promise.resolve(want.salvaged ?? this.downloadObject(hash as ContentHash, want.size, `${out.path}/${want.path}`));
      // Staged into the batch as soon as it is verified: before storeAll commits the batch.
      stored.push(got.then((tmp) => (typeof tmp === 'string' ? this.batch.stage(tmp, this.store.objectPath(hash as ContentHash)) : false)));
      staged.push(got.then((tmp) => tmp !== undefined));
    }
    plan.settle(Promise.all(staged).then((all) => all.every(Boolean)), Promise.all(stored).then((all) => all.every(Boolean)));
    this.warn(`pack ${name} of ${out.path} (index ${plan.indexName}): ${problem}; ${fallbacks} of its objects fetched one by one`);
    return false;
  }

  /** The pack is in the store under its name: its index makes its objects findable. False after a warning. */
  private async adoptPack(out: PathHash, plan: PackPlan, indexWrite?: EarlyWrite): Promise<boolean> {
    try {
      await this.store.adoptPack(plan.index, plan.members, indexWrite);
      return true;
    } catch (error) {
      this.warn(`storing the pack index of ${out.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      return false;
    }
  }

  /** A verified member of a pack that is not kept, copied out of the pack's temp into a temp of its own. */
  private salvage(packTmp: string, offset: number, size: number): string | undefined {
    const tmp = this.tempPath();
    try {
      const bytes = Buffer.allocUnsafe(size);
      const fd = openSync(packTmp, 'r');
      try {
        if (readRange(fd, bytes, offset) < size) return undefined;
      } finally {
        closeSync(fd);
      }
      writeFileSync(tmp, bytes, { mode: 0o444 });
      return tmp;
    } catch {
      return undefined; // fetched on its own instead
    }
  }

  /**
   * Downloads one object to a temp file of the store, re-hashed on the way: the temp's path once its bytes
   * hash to its name, undefined (warned) when missing or corrupt. The batch gives it its name.
   */
  private async downloadObject(hash: ContentHash, size: number, forPath: string): Promise<string | undefined> {
    const name = casKey(hash);
    const outcome = await this.tryRun(async () => {
      const got = await this.backend.get(name);
      if (!got) return 'missing' as const;
      const tmp = this.tempPath();
      try {
        const received = size <= SMALL_OBJECT_BYTES ? await this.receiveSmall(name, got, size, tmp) : await this.receiveLarge(name, got, size, tmp);
        if (received.digest !== hash) {
          await rm(tmp, { force: true });
          return 'corrupt' as const;
        }
        this.stats.downloadedObjects++;
        this.stats.downloadedBytes += received.bytes;
        return tmp;
      } catch (error) {
        await rm(tmp, { force: true });
        throw error instanceof RemoteError ? error : new RemoteError(`GET ${this.backend.display}/${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, true);
      }
    });
    if (outcome === 'missing') this.warn(`object ${name} (${forPath}) is missing`);
    else if (outcome === 'corrupt') {
      this.corrupt.add(name);
      this.warn(`object ${name} (${forPath}) is corrupt: its bytes do not hash to its name; not restored`);
    } else if (outcome !== FAILED) return outcome;
    return undefined;
  }

  /** A small body read into memory, checked, and written in one call (fewer round trips than a stream). */
  private async receiveSmall(name: ObjectKey, got: { body: Readable; size?: number }, size: number, tmp: string): Promise<{ digest: string; bytes: number }> {
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of got.body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > size) {
        got.body.destroy();
        return { digest: 'longer than its size', bytes: received };
      }
      chunks.push(chunk);
    }
    if (got.size !== undefined && received !== got.size) throw new RemoteError(`GET ${this.backend.display}/${name}: body ended after ${received} of ${got.size} bytes`, true);
    const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.ensureTmpDir();
    writeFileSync(tmp, bytes, { mode: 0o444 });
    return { digest: sha256(bytes), bytes: received };
  }

  /** A large body streamed to the temp file, hashed on the way. */
  private async receiveLarge(name: ObjectKey, got: { body: Readable; size?: number }, size: number, tmp: string): Promise<{ digest: string; bytes: number }> {
    const digest = createHash('sha256');
    let received = 0;
    this.ensureTmpDir();
    await pipeline(
      got.body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          received += chunk.length;
          // A body longer than the object can be is not read to its end.
          if (received > size) throw new RemoteError(`object ${name} is longer than its ${size} bytes`, false);
          digest.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(tmp, { mode: 0o444 }),
    );
    if (got.size !== undefined && received !== got.size) throw new RemoteError(`GET ${this.backend.display}/${name}: body ended after ${received} of ${got.size} bytes`, true);
    return { digest: digest.digest('hex'), bytes: received };
  }

  /** A small object read into memory: 'missing' on 404, undefined after a warned failure or a hash mismatch. */
  private async fetchBytes(name: ObjectKey, expectedHash?: string): Promise<Buffer | 'missing' | undefined> {
    const bytes = await this.tryRun(async () => {
      const got = await this.backend.get(name);
      if (!got) return 'missing' as const;
      const chunks: Buffer[] = [];
      let received = 0;
      try {
        for await (const chunk of got.body as AsyncIterable<Buffer>) {
          received += chunk.length;
          if (received > MAX_METADATA_BYTES) {
            got.body.destroy();
            throw new RemoteError(`object ${name} is larger than ${MAX_METADATA_BYTES} bytes`, false);
          }
          chunks.push(chunk);
        }
      } catch (error) {
        throw error instanceof RemoteError ? error : new RemoteError(`GET ${this.backend.display}/${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, true);
      }
      if (got.size !== undefined && received !== got.size) throw new RemoteError(`GET ${this.backend.display}/${name}: body ended after ${received} of ${got.size} bytes`, true);
      this.stats.downloadedObjects++;
      this.stats.downloadedBytes += received;
      return Buffer.concat(chunks);
    });
    if (bytes === FAILED) return undefined;
    if (bytes instanceof Buffer && expectedHash !== undefined && sha256(bytes) !== expectedHash) {
      this.corrupt.add(name);
      this.warn(`object ${name} is corrupt: its bytes do not hash to its name; not restored`);
      return undefined;
    }
    return bytes;
  }

  /** Unique per process by a counter after one random prefix (a random name per object costs a syscall). */
  private readonly tempPrefix = `remote-${process.pid}-${randomBytes(6).toString('hex')}-`;
  private temps = 0;
  private tempPath(): string {
    return join(this.store.tmpDir, `${this.tempPrefix}${++this.temps}`);
  }

  private tmpDirMade = false;
  private ensureTmpDir(): void {
    if (!this.tmpDirMade) mkdirSync(this.store.tmpDir, { recursive: true });
    this.tmpDirMade = true;
  }

  // ---- upload --------------------------------------------------------------------------------------------

  /** Starts pushing a record in the background; `settle` waits for every push started. */
  schedulePush(record: RunRecord): void {
    this.pushes.push(this.pushRecord(record).catch((error: Error) => {
      this.warn(`pushing the record of ${record.key}: ${error.message}`);
      return false;
    }));
  }

  /** Waits for the scheduled pushes; true when all succeeded. */
  async settle(): Promise<boolean> {
    const results = await Promise.all(this.pushes);
    this.pushes.length = 0;
    return results.every(Boolean);
  }

  /**
   * Uploads a record and every object it names that the remote lacks: blobs, then manifests, then the
   * record. False (after warnings) when anything failed; the record is then not sent.
   */
  async pushRecord(record: RunRecord): Promise<boolean> {
    if (this.down) return false;
    const name = acKey(record.key);
    if (!this.corrupt.has(name)) {
      const has = await this.tryRun(() => this.backend.has(name));
      if (has === FAILED) return false;
      if (has) return this.repairPacks(record);
    }
    const blobs = new Map<string, Blob>();
    const manifests: Blob[] = [];
    const dirs: { manifest: ContentHash; entries: ManifestEntry[] }[] = [];
    for (const out of record.outs) {
      if (!this.store.has(out)) return this.lacking(out);
      if (out.isDir) {
        const file = this.store.objectPath(out.hash, true);
        const entries = parseManifest(readFileSync(file, 'utf8'));
        for (const entry of entries) {
          const source = this.store.objectSource(entry.hash);
          if (!source) return this.lacking(out);
          blobs.set(entry.hash, { hash: entry.hash, ...source });
        }
        manifests.push({ hash: out.hash, file, offset: 0, size: statSync(file).size });
        dirs.push({ manifest: out.hash, entries });
      } else {
        const source = this.store.objectSource(out.hash);
        if (!source) return this.lacking(out);
        blobs.set(out.hash, { hash: out.hash, ...source });
      }
    }
    if (!(await this.uploadAll([...blobs.values()]))) return false;
    if (!(await this.uploadAll(manifests))) return false;
    // A pack only speeds up pulls: one that could not be sent is a warning, and the record still goes.
    for (const dir of dirs) await this.pushPack(dir.manifest, dir.entries);
    return this.putJson(name, record);
  }

  private lacking(out: PathHash): false {
    this.warn(`the local cache lacks objects of ${out.path}; the record of its stage is not pushed`);
    return false;
  }

  /** A record or pack index, as one line of JSON; false after a warning. */
  private async putJson(name: ObjectKey, value: unknown): Promise<boolean> {
    const bytes = Buffer.from(JSON.stringify(value) + '\n');
    const sent = await this.tryRun(() => this.backend.put(name, { bytes }, sha256(bytes)));
    if (sent === FAILED) return false;
    this.corrupt.delete(name);
    this.stats.uploadedObjects++;
    this.stats.uploadedBytes += bytes.length;
    return true;
  }

  /** For a record the remote has: sends again the packs of its outs this process found bad. */
  private async repairPacks(record: RunRecord): Promise<boolean> {
    let ok = true;
    for (const out of record.outs) {
      if (!out.isDir || !this.corrupt.has(packIndexKey(out.hash)) || !this.store.has(out)) continue;
      const entries = parseManifest(readFileSync(this.store.objectPath(out.hash, true), 'utf8'));
      if (!(await this.pushPack(out.hash, entries))) ok = false;
    }
    return ok;
  }

  /**
   * The pack of a directory out and then its index (pack.ts), after the objects and the manifest they stand
   * for: when the manifest has PACK_MIN_OBJECTS small objects or more (PACK_MAX_BYTES in all at most) and the
   * remote has no index for it (or this process found its pack or index bad). True when there is nothing to
   * send or it was sent; false after a warning.
   */
  private async pushPack(manifest: ContentHash, entries: readonly ManifestEntry[]): Promise<boolean> {
    const members = packMembers(entries, PACK_OBJECT_MAX_BYTES);
    if (members.length < PACK_MIN_OBJECTS || packSize(members) > PACK_MAX_BYTES) return true;
    const indexName = packIndexKey(manifest);
    if (!this.corrupt.has(indexName)) {
      const has = await this.tryRun(() => this.backend.has(indexName));
      if (has === FAILED) return false;
      if (has) return true;
    }
    // The store's own pack of this manifest, when it has the same members, goes as it is.
    const kept = this.store.packIndexOf(manifest);
    if (kept?.objectMaxBytes === PACK_OBJECT_MAX_BYTES) {
      if (!(await this.upload({ hash: kept.pack, file: this.store.objectPath(kept.pack), offset: 0, size: kept.size }))) return false;
      return await this.putJson(indexName, kept);
    }
    const tmp = this.tempPath();
    try {
      let pack: { hash: ContentHash; size: number };
      try {
        this.ensureTmpDir();
        pack = writePack(members, (hash) => this.store.readObject(hash, `${casKey(manifest)}`), tmp);
      } catch (error) {
        this.warn(`writing the pack of ${casKey(manifest)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        return false;
      }
      if (!(await this.upload({ hash: pack.hash, file: tmp, offset: 0, size: pack.size }))) return false;
      const index: PackIndex = { format: PACK_FORMAT, version: PACK_VERSION, manifest, pack: pack.hash, size: pack.size, objectMaxBytes: PACK_OBJECT_MAX_BYTES };
      return await this.putJson(indexName, index);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async uploadAll(blobs: readonly Blob[]): Promise<boolean> {
    const results = await Promise.all(blobs.map((blob) => this.upload(blob)));
    return results.every(Boolean);
  }

  private async upload(blob: Blob): Promise<boolean> {
    const name = casKey(blob.hash);
    if (this.present.has(name)) return true;
    if (!this.corrupt.has(name)) {
      const has = await this.tryRun(() => this.backend.has(name));
      if (has === FAILED) return false;
      if (has) {
        this.present.add(name);
        return true;
      }
    }
    const sent = await this.tryRun(() => this.backend.put(name, { file: blob.file, offset: blob.offset, size: blob.size }, blob.hash));
    if (sent === FAILED) return false;
    this.present.add(name);
    this.corrupt.delete(name);
    this.stats.uploadedObjects++;
    this.stats.uploadedBytes += blob.size;
    return true;
  }

  /** The one line printed after every run, pull and push. */
  summary(): string {
    const s = this.stats;
    const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : word.endsWith('s') ? 'es' : 's'}`;
    return `remote ${this.backend.display}: ${plural(s.hits, 'hit')}, ${plural(s.misses, 'miss')}, ` +
      `${s.downloadedObjects} objects (${formatBytes(s.downloadedBytes)}) downloaded, ` +
      `${s.uploadedObjects} objects (${formatBytes(s.uploadedBytes)}) uploaded, ${plural(s.errors, 'error')}`;
  }

  close(): void {
    this.backend.close();
  }
}

/** Bytes of a pack written between two background flushes of its temp. */
const PACK_FLUSH_EVERY = 8 << 20;

/**
 * A pack's temp file being written as the stream passes. What is written is flushed to disk on the way (an
 * fdatasync on the thread pool every PACK_FLUSH_EVERY bytes, one at a time), so the flush that must precede
 * the pack's rename (object-batch.ts) has little left to write. `idle` waits for the flush in flight: the
 * descriptor is closed only after it.
 */
class PackWriter {
  private written = 0;
  private flushedAt = 0;
  private flushing: Promise<void> | undefined;

  constructor(private readonly fd: number) {}

  async *pass(body: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    for await (const chunk of body) {
      for (let at = 0; at < chunk.length; ) at += writeSync(this.fd, chunk, at, chunk.length - at);
      this.written += chunk.length;
      if (!this.flushing && this.written - this.flushedAt >= PACK_FLUSH_EVERY) {
        this.flushedAt = this.written;
        // A failed early flush is no error: the commit's own flush decides.
        this.flushing = new Promise<void>((resolve) => fdatasync(this.fd, () => resolve())).then(() => (this.flushing = undefined));
      }
      yield chunk;
    }
  }

  idle(): Promise<void> {
    return this.flushing ?? Promise.resolve();
  }
}
