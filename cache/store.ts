// Content-addressed objects: <cacheDir>/objects/<h[0:2]>/<h> holds a file's bytes; a directory is its files'
// objects plus <h>.dir, whose content is the directory's manifest text (so its name is its own sha256, like
// every other object's). The small objects of a directory may instead live in a pack, one object holding their
// bytes end to end, with an index at <cacheDir>/packs/<manifest hash>.json (cache/store-packs.ts): a pull
// writes a folder of 30k files as one file, and restores it by reading one file.
//
// Crash safety: an object is written to <cacheDir>/tmp/, fsync'd, made read-only, then renamed to its name,
// so a kill -9 at any moment leaves either no object or a complete one (plus a temp file that gc removes).
// Objects are never opened for writing after that rename.
//
// Restore: each path is built at a temp sibling (cache/restore-temps.ts names it and keeps a ledger a later
// run sweeps after a kill) and renamed over the target. Every object's bytes are hashed as they are handed to
// the workspace (cache/verified-copy.ts): a copy is read, hashed and written in one pass; a reflink clone or a
// hardlink is hashed once made (the clone's bytes, or the object's own inode); an object in a pack is read by
// its range, hashed, then written (never linked or cloned). A damaged object (wrong bytes,
// truncated, not a regular file, a manifest that does not hash to its name or breaks cache/manifest.ts's
// rules) is removed from the store and the restore fails with DamagedObjectError, naming it; nothing of the
// half-built temp is left. Manifests are checked before anything is written, and the target's parent folders
// must stay inside the workspace (cache/safe-path.ts).
//
// 'reflink-or-copy' clones where the filesystem can (btrfs, xfs) and copies otherwise; either way the
// workspace file is a separate inode, so writing to it can't touch the object. 'hardlink' shares the object's
// inode: what protects the object then is its read-only mode (not a barrier for root), the runner deleting a
// stage's outs before running it (so a stage writes new files), and the verification of every later restore,
// which finds an object edited in place through its link.
import {
  type Stats, constants, copyFileSync, linkSync, chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync,
  readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { dirManifest, hashPath, manifestText, normalizeRelPath, rememberRestoredTree, sha256 } from './hash.js';
import { isContentHash, ManifestError, parseManifest } from './manifest.js';
import { RestoreLedger, RestoreSite } from './restore-temps.js';
import { StreamedTree, type WrittenTree } from './streamed-restore.js';
import { assertInsideWorkspace } from './safe-path.js';
import type { StatCache } from './stat-cache.js';
import type { ContentHash, LinkMode, ManifestEntry, PathHash } from './types.js';
import type { PackIndex, PackMember } from './pack.js';
import { PackReader, StorePacks, type PackedObject } from './store-packs.js';
import { PARALLEL_RESTORE_MIN, restoreInWorker, type PackedFiles } from './pack-restore-worker.js';
import { copyHashing, hashObject, writeRestoredFile, type ReadOutcome } from './verified-copy.js';
import { EarlyWrite } from './early-write.js';

export type { LinkMode } from './types.js';

/** An object the store was asked to restore but does not have. */
export class MissingObjectError extends Error {
  override readonly name = 'MissingObjectError';
}

/** An object whose bytes are not what its name says; it has been removed from the store. */
export class DamagedObjectError extends Error {
  override readonly name = 'DamagedObjectError';
  constructor(readonly object: string, message: string) {
    super(message);
  }
}

/** Temp files older than this are leftovers of a killed process; gc removes them. */
const STALE_TEMP_MS = 60 * 60 * 1000;

function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A path as a person at this cwd would type it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export interface StoreOptions {
  link?: LinkMode;
  /** Where this process lists its restore temps (see cache/restore-temps.ts); none: not listed. */
  ledgerDir?: string;
  /** How warnings (a damaged object found outside a restore, something gc skipped) reach the user. */
  warn?: (message: string) => void;
}

export class Store {
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly link: LinkMode;
  private readonly ledger: RestoreLedger | undefined;
  private readonly warn: (message: string) => void;
  /** The temp folder and shards already checked to be real folders (realFolder). */
  private readonly realFolders = new Set<string>();
  /** Set once a clone fails: the filesystem can't, so later restores copy straight away. */
  private cannotClone = false;
  private readonly packs: StorePacks;
  /** Restores that took a worker thread for half their files (pack-restore-worker.ts). */
  workerRestores = 0;
  /** Manifests this process has read and checked (their bytes hash to their names), by hash, with the file's stats. */
  private readonly manifests = new Map<string, { seenAs: string; entries: ManifestEntry[] }>();

  constructor(readonly cacheDir: string, opts: StoreOptions = {}) {
    this.objectsDir = join(cacheDir, 'objects');
    this.tmpDir = join(cacheDir, 'tmp');
    this.link = opts.link ?? 'reflink-or-copy';
    this.ledger = opts.ledgerDir === undefined ? undefined : new RestoreLedger(opts.ledgerDir);
    this.warn = opts.warn ?? ((message) => process.stderr.write(`warning: ${message}\n`));
    this.packs = new StorePacks({
      dir: join(cacheDir, 'packs'), tmpDir: this.tmpDir, objectPath: (hash) => this.objectPath(hash),
      manifestOf: (hash) => this.readManifest(hash), warn: this.warn,
    });
  }

  /** Whether the store holds this object, as a file of its own or inside a pack. */
  hasObject(hash: ContentHash): boolean {
    return this.packs.find(hash) !== undefined || existsSync(this.objectPath(hash));
  }

  /**
   * Which objects the store holds, for many questions in a row (a pull planning a folder of 30k files): each
   * shard folder is listed once, on its first question, instead of one lookup per object. An object stored
   * after its shard was listed reads as absent (fetched again: slower, never wrong).
   */
  objectsPresent(): (hash: ContentHash) => boolean {
    const shards = new Map<string, Set<string>>();
    const none = new Set<string>();
    const anyShard = existsSync(this.objectsDir);
    return (hash) => {
      if (this.packs.find(hash)) return true;
      if (!anyShard) return false;
      const shard = hash.slice(0, 2);
      let names = shards.get(shard);
      if (!names) {
        try {
          names = new Set(readdirSync(join(this.objectsDir, shard)));
        } catch {
          names = none; // no such shard (or not a folder: its objects are damaged, as hasObject would find)
        }
        shards.set(shard, names);
      }
      return names.has(hash);
    };
  }

  /** Where to read an object's bytes from (its own file, or its range of a pack); undefined when absent. */
  objectSource(hash: ContentHash): { file: string; offset: number; size: number } | undefined {
    const own = lstatSync(this.objectPath(hash), { throwIfNoEntry: false });
    if (own?.isFile()) return { file: this.objectPath(hash), offset: 0, size: own.size };
    const packed = this.packs.find(hash);
    return packed && { file: this.objectPath(packed.pack), offset: packed.offset, size: packed.size };
  }

  /** An object's bytes, checked against its name; a damaged one is removed and DamagedObjectError thrown. */
  readObject(hash: ContentHash, of: string): Buffer {
    const packed = this.packs.find(hash);
    if (packed) {
      const reader = new PackReader((h) => this.objectPath(h));
      try {
        return Buffer.from(this.packedBytes(reader, hash, packed, of));
      } finally {
        reader.close();
      }
    }
    const object = this.objectPath(hash);
    const stat = lstatSync(object, { throwIfNoEntry: false });
    if (!stat) throw new MissingObjectError(`cache has no object for ${of} (${hash})`);
    if (!stat.isFile()) throw this.damaged(object, `object ${shown(object)} of ${of} is damaged (not a regular file)`);
    const bytes = readFileSync(object);
    if (sha256(bytes) !== hash) throw this.damaged(object, `object ${shown(object)} of ${of} is damaged (its bytes do not hash to its name)`);
    return bytes;
  }

  /**
   * Stores a directory's manifest whose bytes the caller has checked (parseManifest against `hash`) and
   * keeps its entries, so the restore that follows does not parse it again. Last of a directory's objects:
   * a present manifest promises its files are present. `early`: its file, written ahead (writeManifestEarly).
   */
  async putManifest(hash: ContentHash, bytes: Buffer, entries: ManifestEntry[], early?: EarlyWrite): Promise<void> {
    const final = this.objectPath(hash, true);
    if (early) {
      try {
        this.realFolder(dirname(final));
      } catch (error) {
        early.discard();
        throw error;
      }
      await early.name(final);
    } else this.putBytes(bytes, hash, true);
    const stat = lstatSync(final);
    if (stat.size === bytes.length) this.manifests.set(hash, { seenAs: manifestSeenAs(stat), entries });
  }

  /**
   * A checked manifest's file, written ahead of its directory's objects and made durable in the background
   * (early-write.ts), for putManifest to name; undefined when the store has the manifest already.
   */
  writeManifestEarly(hash: ContentHash, bytes: Buffer): EarlyWrite | undefined {
    if (existsSync(this.objectPath(hash, true))) return undefined;
    return new EarlyWrite(this.tempPath(), bytes);
  }

  /** The index of this directory's pack in the store, when it has a usable one. */
  packIndexOf(manifest: ContentHash): PackIndex | undefined {
    return this.packs.indexOf(manifest)?.index;
  }

  /**
   * Records a pack the store now holds as an object (named, durable): its index, so its objects are found.
   * `members`: the pack's members as its manifest gives them (validatePackIndex); `early`: the index's file,
   * written ahead (writePackIndexEarly).
   */
  adoptPack(index: PackIndex, members: readonly PackMember[], early?: EarlyWrite): Promise<void> {
    return this.packs.add(index, members, early);
  }

  /** The index's file of a pack about to arrive, written ahead for adoptPack (early-write.ts). */
  writePackIndexEarly(index: PackIndex): EarlyWrite {
    return this.packs.writeIndexEarly(index);
  }

  objectPath(hash: ContentHash, isDir = false): string {
    return join(this.objectsDir, hash.slice(0, 2), isDir ? `${hash}.dir` : hash);
  }

  /** Hashes an out and stores whatever objects the store lacks. */
  async save(workspace: string, relPath: string, statCache?: StatCache): Promise<PathHash> {
    const path = normalizeRelPath(relPath);
    const abs = resolve(workspace, path);
    if (!statSync(abs, { throwIfNoEntry: false })?.isDirectory()) {
      const entry = await hashPath(workspace, path, statCache);
      this.putFile(abs, entry.hash, entry.size);
      return entry;
    }
    // One walk gives both the hash and the objects (fresh outs are too young for the stat cache, so a
    // second walk would read every file again).
    const manifest = await dirManifest(workspace, path, statCache);
    const text = manifestText(manifest);
    for (const file of manifest) {
      if (file.symlink) this.putBytes(Buffer.from(readlinkTarget(abs, file)), file.hash);
      else this.putFile(join(abs, file.path), file.hash, file.size);
    }
    const hash = sha256(text);
    // The manifest last: a present .dir promises all its files are present.
    this.putBytes(Buffer.from(text), hash, true);
    let size = 0;
    for (const f of manifest) size += f.size;
    return { path, hash, size, nfiles: manifest.length, isDir: true };
  }

  /**
   * Whether every object of the entry is present. A directory's manifest is read and checked on the way: a
   * damaged one is removed and warned about, and the entry is then not in the store.
   */
  has(entry: PathHash): boolean {
    if (!isContentHash(entry.hash)) return false;
    if (!entry.isDir) return this.hasObject(entry.hash);
    let manifest: ManifestEntry[] | undefined;
    try {
      manifest = this.readManifest(entry.hash, entry.path);
    } catch (cause) {
      if (!(cause instanceof DamagedObjectError)) throw cause;
      this.warn(cause.message);
      return false;
    }
    return manifest !== undefined && manifest.every((f) => this.hasObject(f.hash));
  }

  /**
   * Materialises an entry at its path, atomically: built at a temp sibling and renamed over the target, every
   * byte verified against its object's name on the way (see the header). Throws MissingObjectError (workspace
   * untouched), DamagedObjectError (the object is removed; workspace untouched) or OutsideWorkspaceError (a
   * parent folder of the path is a symlink leading out of the workspace; nothing written).
   */
  async restore(workspace: string, entry: PathHash, statCache?: StatCache): Promise<void> {
    const path = normalizeRelPath(entry.path);
    assertInsideWorkspace(workspace, path);
    if (!isContentHash(entry.hash)) throw new MissingObjectError(`cache has no object for ${path}: "${entry.hash}" is not a content hash`);
    const manifest = entry.isDir ? this.readManifest(entry.hash, path) : undefined;
    const complete = entry.isDir ? manifest !== undefined && manifest.every((f) => this.hasObject(f.hash)) : this.hasObject(entry.hash);
    if (!complete) throw new MissingObjectError(`cache has no complete copy of ${path} (${entry.hash})`);
    const site = new RestoreSite(workspace, path, this.ledger);
    const packs = new PackReader((hash) => this.objectPath(hash));
    try {
      if (manifest) {
        site.makeFolders(manifest);
        await this.fillTree(site, manifest, packs);
      } else {
        this.materialise(entry.hash, site.tmp, path, packs);
      }
      site.commit();
    } catch (error) {
      site.discard();
      throw error;
    } finally {
      packs.close();
    }
    if (statCache) this.rememberRestored(site.target, entry, manifest, statCache);
  }

  /**
   * Starts the restore of a directory whose objects are still arriving (cache/streamed-restore.ts): its temp
   * tree is made, and the caller places each file's bytes once it has checked them against their name.
   * `manifest`: checked against `entry.hash` by the caller. Nothing reaches the workspace before
   * finishStreamedRestore.
   */
  beginStreamedRestore(workspace: string, entry: PathHash, manifest: readonly ManifestEntry[], timeMs: number): StreamedTree {
    const site = new RestoreSite(workspace, normalizeRelPath(entry.path), this.ledger);
    try {
      return new StreamedTree(site, manifest, timeMs);
    } catch (error) {
      site.discard();
      throw error;
    }
  }

  /**
   * Completes a streamed restore once the store holds the entry: the files the stream did not place are
   * restored from the store as `restore` does (verified), then the tree is renamed into place and its hashes
   * go to the stat cache. Throws as `restore` does, the temp tree removed.
   */
  async finishStreamedRestore(tree: StreamedTree, entry: PathHash, statCache?: StatCache): Promise<void> {
    const packs = new PackReader((hash) => this.objectPath(hash));
    let written: WrittenTree | undefined;
    try {
      written = await tree.finish();
      await this.fillTree(tree.site, tree.manifest.filter((_, i) => !tree.isPlaced(i)), packs);
      tree.site.commit();
    } catch (error) {
      await tree.discard();
      throw error;
    } finally {
      packs.close();
    }
    if (statCache) this.rememberRestored(tree.site.target, entry, tree.manifest, statCache, written);
  }

  /**
   * Writes these files of a manifest into the site's temp tree (its folders made), each verified on the way;
   * the second half of a large folder in packs goes to a worker thread (pack-restore-worker.ts).
   */
  private async fillTree(site: RestoreSite, files: readonly ManifestEntry[], packs: PackReader): Promise<void> {
    const split = this.workerSplit(files, packs);
    const second = split < files.length ? this.packedFiles(files.slice(split), site.tmp, packs) : undefined;
    const job = second && restoreInWorker(second.files);
    if (job) this.workerRestores++;
    let failure: unknown;
    try {
      for (let i = 0; i < split; i++) {
        const file = files[i]!;
        const dest = join(site.tmp, file.path);
        if (file.symlink) symlinkSync(this.readObject(file.hash, `${site.path}/${file.path}`).toString('utf8'), dest);
        else this.materialise(file.hash, dest, `${site.path}/${file.path}`, packs);
      }
    } catch (error) {
      failure = error;
    }
    // Nothing is deleted or renamed while the worker may still be writing.
    const outcome = job && (await job.catch((error: unknown) => ({ ok: 'error' as const, error })));
    if (failure !== undefined) throw failure;
    if (outcome && outcome.ok === 'error') throw outcome.error;
    if (outcome && !outcome.ok) {
      const file = files[split + outcome.index]!;
      throw this.packDamaged(second!.packed[outcome.index]!, `${site.path}/${file.path}`, `the bytes it holds for ${file.hash.slice(0, 12)}… hash to ${outcome.got.slice(0, 12)}…`);
    }
  }

  /**
   * The restored files' verified hashes go to the stat cache (they carry their objects' mtimes, so they are
   * not racy), with a directory's tree record, from one walk of stats (hash.ts), so the next status reads
   * nothing again.
   */
  private rememberRestored(target: string, entry: PathHash, manifest: readonly ManifestEntry[] | undefined, statCache: StatCache, written?: WrittenTree): void {
    if (!manifest) {
      statCache.remember(target, statSync(target), entry.hash);
      return;
    }
    let size = 0;
    for (const file of manifest) size += file.size;
    rememberRestoredTree(target, manifest, { hash: entry.hash, size, nfiles: manifest.length }, statCache, written);
  }

  /** Re-hashes an entry's objects; returns the hashes whose object's bytes no longer match its name. */
  verify(entry: PathHash): ContentHash[] {
    const hashes = entry.isDir ? (this.readManifest(entry.hash, entry.path) ?? []).map((f) => f.hash) : [entry.hash];
    const packs = new PackReader((hash) => this.objectPath(hash));
    try {
      return hashes.filter((h) => this.objectDamaged(h, packs));
    } finally {
      packs.close();
    }
  }

  /** Whether an object the store has (own file or pack range) no longer hashes to its name; absent is not damaged. */
  private objectDamaged(h: ContentHash, packs: PackReader): boolean {
    const packed = this.packs.find(h);
    if (packed) {
      const bytes = packs.read(packed);
      return !Buffer.isBuffer(bytes) || sha256(bytes) !== h;
    }
    if (!existsSync(this.objectPath(h))) return false;
    const read = hashObject(this.objectPath(h));
    return !('hash' in read) || read.hash !== h;
  }

  /**
   * Removes every object not reachable from `keep` (file hashes or directory hashes), and stale temp files.
   * Never follows a symlink: an entry of `objects/` that is not a shard folder is skipped with a warning, a
   * symlink inside a shard is removed as the link it is, a folder inside a shard is skipped with a warning.
   */
  async gc(keep: Iterable<ContentHash>): Promise<{ removedObjects: number; freedBytes: number }> {
    const live = new Set<string>();
    for (const hash of keep) {
      if (!isContentHash(hash)) continue;
      live.add(hash);
      let manifest: ManifestEntry[] | undefined;
      try {
        manifest = this.readManifest(hash);
      } catch (cause) {
        if (!(cause instanceof DamagedObjectError)) throw cause;
        this.warn(cause.message);
        continue;
      }
      if (manifest) {
        live.add(`${hash}.dir`);
        for (const f of manifest) live.add(f.hash);
      }
    }
    // A pack lives while the index of a live manifest names it; every other index goes.
    const liveManifests = new Set<string>();
    for (const name of live) if (name.endsWith('.dir')) liveManifests.add(name.slice(0, -4));
    for (const pack of this.packs.sweep(liveManifests)) live.add(pack);
    let removedObjects = 0;
    let freedBytes = 0;
    for (const shard of existsSync(this.objectsDir) ? readdirSync(this.objectsDir, { withFileTypes: true }) : []) {
      const shardDir = join(this.objectsDir, shard.name);
      if (!shard.isDirectory()) {
        this.warn(`gc: skipped ${shown(shardDir)}: ${shard.isSymbolicLink() ? 'a symlink' : 'not a folder'}, not a folder of objects the store wrote`);
        continue;
      }
      for (const object of readdirSync(shardDir, { withFileTypes: true })) {
        const abs = join(shardDir, object.name);
        if (object.isDirectory()) {
          this.warn(`gc: skipped ${shown(abs)}: a folder, not an object the store wrote`);
          continue;
        }
        if (live.has(object.name) && object.isFile()) continue;
        const size = lstatSync(abs, { throwIfNoEntry: false })?.size;
        if (size === undefined) continue; // removed meanwhile (another gc)
        unlinkSync(abs); // a symlink goes as a link: its target is never touched
        freedBytes += size;
        removedObjects++;
      }
    }
    const now = Date.now();
    for (const temp of existsSync(this.tmpDir) ? readdirSync(this.tmpDir, { withFileTypes: true }) : []) {
      const abs = join(this.tmpDir, temp.name);
      if (temp.isDirectory()) continue;
      if (now - lstatSync(abs).mtimeMs > STALE_TEMP_MS) unlinkSync(abs);
    }
    return { removedObjects, freedBytes };
  }

  /**
   * A directory's manifest, checked (cache/manifest.ts) and hashed against its name; undefined when the store
   * has none. A damaged one is removed and reported as DamagedObjectError.
   */
  private readManifest(hash: ContentHash, of?: string): ManifestEntry[] | undefined {
    if (!isContentHash(hash)) return undefined;
    const file = this.objectPath(hash, true);
    const stat = lstatSync(file, { throwIfNoEntry: false });
    if (!stat) return undefined;
    // Read and checked again only when the file is not the one this process checked (a rewrite changes these).
    const seenAs = manifestSeenAs(stat);
    const known = this.manifests.get(hash);
    if (known?.seenAs === seenAs && stat.isFile()) return known.entries;
    const what = `the manifest ${shown(file)}${of === undefined ? '' : ` of ${of}`}`;
    if (!stat.isFile()) throw this.damaged(file, `${what} is damaged (not a regular file)`);
    try {
      const entries = parseManifest(readFileSync(file, 'utf8'), hash);
      this.manifests.set(hash, { seenAs, entries });
      return entries;
    } catch (cause) {
      if (!(cause instanceof ManifestError)) throw cause;
      throw this.damaged(file, `${what} is damaged (${cause.message})`);
    }
  }

  /** Removes a damaged object; the error to throw, saying it was removed. */
  private damaged(object: string, message: string): DamagedObjectError {
    try {
      this.realFolder(dirname(object)); // never delete through a symlinked shard
      rmSync(object, { recursive: true, force: true });
    } catch (cause) {
      // A read-only shared cache: the object stays, and every restore of it keeps refusing it.
      return new DamagedObjectError(object, `${message}; could not remove it from the cache (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`);
    }
    return new DamagedObjectError(object, `${message}; removed it from the cache`);
  }

  /**
   * Copies a file into the store as `hash`, unless present. Clones where the filesystem can. An object of the
   * wrong size or type (damaged) is replaced.
   */
  private putFile(src: string, hash: ContentHash, size: number): void {
    const final = this.objectPath(hash);
    const present = lstatSync(final, { throwIfNoEntry: false });
    if (present?.isFile() && present.size === size) return;
    if (present?.isDirectory()) rmSync(final, { recursive: true, force: true });
    const tmp = this.tempPath();
    try {
      copyFileSync(src, tmp, constants.COPYFILE_FICLONE);
      this.sealAndRename(tmp, final);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  private putBytes(bytes: Buffer, hash: ContentHash, isDir = false): void {
    const final = this.objectPath(hash, isDir);
    if (existsSync(final)) return;
    const tmp = this.tempPath();
    try {
      writeFileSync(tmp, bytes);
      this.sealAndRename(tmp, final);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  private tempPath(): string {
    this.realFolder(this.tmpDir);
    return join(this.tmpDir, uniqueSuffix());
  }

  /**
   * Makes `dir` (the temp folder or a shard) a real folder of the store: a symlink there is not one the store
   * made, and writing or deleting through it would reach outside the cache, so it is removed (the link only)
   * and a folder made. Checked once per folder and process.
   */
  private realFolder(dir: string): void {
    if (this.realFolders.has(dir)) return;
    const stat = lstatSync(dir, { throwIfNoEntry: false });
    if (stat && !stat.isDirectory()) {
      this.warn(`replaced ${shown(dir)}: a symlink or file where the cache keeps a folder`);
      unlinkSync(dir);
    }
    mkdirSync(dir, { recursive: true });
    this.realFolders.add(dir);
  }

  /** fsync the bytes, make them read-only, and only then give them their name. */
  private sealAndRename(tmp: string, final: string): void {
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o444);
    this.realFolder(dirname(final));
    renameSync(tmp, final);
  }

  /**
   * One file at `dest` with the object's content, per the link mode (see the header), its bytes verified on
   * the way; a damaged object is removed and DamagedObjectError thrown (`of` names the file it was for).
   */
  private materialise(hash: ContentHash, dest: string, of: string, packs: PackReader): void {
    const packed = this.packs.find(hash);
    if (packed) {
      const bytes = this.packedBytes(packs, hash, packed, of);
      const times = packs.stats(packed.pack) as Stats; // readable: packedBytes just read it
      writeRestoredFile(dest, bytes, times);
      return;
    }
    const object = this.objectPath(hash);
    const read = this.handOver(object, dest);
    if ('hash' in read && read.hash === hash) return;
    const why = 'problem' in read ? read.problem : `its bytes hash to ${read.hash.slice(0, 12)}…`;
    throw this.damaged(object, `object ${shown(object)} of ${of} is damaged (${why})`);
  }

  /**
   * An object's bytes read from its pack and checked against its name (a view valid until the reader's next
   * read). A pack that can't give them is damaged: it is removed with its index and DamagedObjectError thrown.
   */
  private packedBytes(packs: PackReader, hash: ContentHash, packed: PackedObject, of: string): Buffer {
    const bytes = packs.read(packed);
    if (Buffer.isBuffer(bytes) && sha256(bytes) === hash) return bytes;
    throw this.packDamaged(packed, of, Buffer.isBuffer(bytes) ? `the bytes it holds for ${hash.slice(0, 12)}… hash to ${sha256(bytes).slice(0, 12)}…` : bytes.problem);
  }

  /** Removes a damaged pack and every index naming it; the error to throw. */
  private packDamaged(packed: PackedObject, of: string, why: string): DamagedObjectError {
    const pack = this.objectPath(packed.pack);
    this.packs.dropPack(packed.pack);
    return this.damaged(pack, `pack ${shown(pack)} of ${of} is damaged (${why})`);
  }

  /**
   * Where a folder's files split between this thread and a worker: half way, when the folder is large, the
   * machine has a second core, and every file of the second half is a regular file in a pack that opened
   * as one; else the end (no worker).
   */
  private workerSplit(manifest: readonly ManifestEntry[], packs: PackReader): number {
    if (manifest.length < PARALLEL_RESTORE_MIN || availableParallelism() < 2) return manifest.length;
    const split = manifest.length >> 1;
    for (let i = split; i < manifest.length; i++) {
      const file = manifest[i]!;
      const packed = file.symlink ? undefined : this.packs.find(file.hash);
      if (!packed || 'problem' in packs.opened(packed.pack)) return manifest.length;
    }
    return split;
  }

  /** The worker's share, column by column (see workerSplit: every file is in a pack that is open). */
  private packedFiles(files: readonly ManifestEntry[], tmp: string, packs: PackReader): { files: PackedFiles; packed: PackedObject[] } {
    const columns: PackedFiles = { dests: [], hashes: [], fds: [], offsets: [], sizes: [], atimesMs: [], mtimesMs: [] };
    const packed: PackedObject[] = [];
    for (const file of files) {
      const where = this.packs.find(file.hash)!;
      const opened = packs.opened(where.pack) as { fd: number; stats: Stats };
      columns.dests.push(join(tmp, file.path));
      columns.hashes.push(file.hash);
      columns.fds.push(opened.fd);
      columns.offsets.push(where.offset);
      columns.sizes.push(where.size);
      columns.atimesMs.push(opened.stats.atime.getTime());
      columns.mtimesMs.push(opened.stats.mtime.getTime());
      packed.push(where);
    }
    return { files: columns, packed };
  }

  /** Puts the object's bytes at `dest` and says what they hash to. */
  private handOver(object: string, dest: string): ReadOutcome {
    if (this.link === 'hardlink') {
      try {
        linkSync(object, dest);
        return hashObject(dest);
      } catch (error) {
        if (lstatSync(object, { throwIfNoEntry: false })?.isDirectory()) return { problem: 'it is a folder' };
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error; // other disk: copy instead
      }
    }
    if (this.link === 'reflink-or-copy' && !this.cannotClone) {
      // copyFile would block on a fifo planted as an object: only a regular file is cloned.
      if (!lstatSync(object).isFile()) return { problem: 'it is not a regular file' };
      try {
        copyFileSync(object, dest, constants.COPYFILE_FICLONE_FORCE);
      } catch {
        this.cannotClone = true; // not on this filesystem (or across disks): copy from now on
        rmSync(dest, { force: true });
        return copyHashing(object, dest);
      }
      chmodSync(dest, 0o644);
      const { atime, mtime } = statSync(object);
      utimesSync(dest, atime, mtime);
      return hashObject(dest);
    }
    return copyHashing(object, dest);
  }
}

/** A symlink's object is its target text (the bytes its hash was taken over). */
function readlinkTarget(dirAbs: string, file: ManifestEntry): string {
  return readlinkSync(join(dirAbs, file.path));
}

/** What tells a manifest file this process checked from one rewritten since (see readManifest). */
function manifestSeenAs(stat: Stats): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}
