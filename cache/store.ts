// Content-addressed objects: <cacheDir>/objects/<h[0:2]>/<h> holds a file's bytes; a directory is its files'
// objects plus <h>.dir, whose content is the directory's manifest text (so its name is its own sha256, like
// every other object's).
//
// Crash safety: an object is written to <cacheDir>/tmp/, fsync'd, made read-only, then renamed to its name,
// so a kill -9 at any moment leaves either no object or a complete one (plus a temp file that gc removes).
// Objects are never opened for writing after that rename.
//
// Restore: each path is built at a temp sibling and renamed over the target. 'reflink-or-copy' clones where
// the filesystem can (btrfs, xfs) and copies otherwise; either way the workspace file is a separate inode, so
// writing to it can't touch the object. 'hardlink' shares the object's inode: what protects the object then
// is its read-only mode (not a barrier for root), and the runner deleting a stage's outs before running it,
// so a stage writes new files; `verify` re-hashes objects to detect damage.
import {
  constants, copyFileSync, linkSync, chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync,
  readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dirManifest, hashFileSync, hashPath, manifestText, normalizeRelPath, parseManifestText, sha256 } from './hash.js';
import type { StatCache } from './stat-cache.js';
import type { ContentHash, LinkMode, ManifestEntry, PathHash } from './types.js';

export type { LinkMode } from './types.js';

/** An object the store was asked to restore but does not have. */
export class MissingObjectError extends Error {
  override readonly name = 'MissingObjectError';
}

/** Temp files older than this are leftovers of a killed process; gc removes them. */
const STALE_TEMP_MS = 60 * 60 * 1000;

function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

export class Store {
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly link: LinkMode;

  constructor(readonly cacheDir: string, opts: { link?: LinkMode } = {}) {
    this.objectsDir = join(cacheDir, 'objects');
    this.tmpDir = join(cacheDir, 'tmp');
    this.link = opts.link ?? 'reflink-or-copy';
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
      this.putFile(abs, entry.hash);
      return entry;
    }
    // One walk gives both the hash and the objects (fresh outs are too young for the stat cache, so a
    // second walk would read every file again).
    const manifest = await dirManifest(workspace, path, statCache);
    const text = manifestText(manifest);
    for (const file of manifest) {
      if (file.symlink) this.putBytes(Buffer.from(readlinkTarget(abs, file)), file.hash);
      else this.putFile(join(abs, file.path), file.hash);
    }
    const hash = sha256(text);
    // The manifest last: a present .dir promises all its files are present.
    this.putBytes(Buffer.from(text), hash, true);
    let size = 0;
    for (const f of manifest) size += f.size;
    return { path, hash, size, nfiles: manifest.length, isDir: true };
  }

  /** Whether every object of the entry is present. */
  has(entry: PathHash): boolean {
    if (!entry.isDir) return existsSync(this.objectPath(entry.hash));
    const manifest = this.readManifest(entry.hash);
    return manifest !== undefined && manifest.every((f) => existsSync(this.objectPath(f.hash)));
  }

  /** Materialises an entry at its path, atomically: built at a temp sibling and renamed over the target. */
  async restore(workspace: string, entry: PathHash, statCache?: StatCache): Promise<void> {
    const path = normalizeRelPath(entry.path);
    const target = resolve(workspace, path);
    if (!this.has(entry)) throw new MissingObjectError(`cache has no complete copy of ${path} (${entry.hash})`);
    mkdirSync(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.${path.split('/').pop()}.restore-${uniqueSuffix()}`);
    try {
      if (entry.isDir) {
        mkdirSync(tmp);
        for (const file of this.readManifest(entry.hash)!) {
          const dest = join(tmp, file.path);
          mkdirSync(dirname(dest), { recursive: true });
          if (file.symlink) symlinkSync(readFileSync(this.objectPath(file.hash), 'utf8'), dest);
          else this.materialise(file.hash, dest);
        }
      } else {
        this.materialise(entry.hash, tmp);
      }
      rmSync(target, { recursive: true, force: true });
      renameSync(tmp, target);
    } catch (error) {
      rmSync(tmp, { recursive: true, force: true });
      throw error;
    }
    // The restored files carry the objects' mtimes, so hashing them now is trusted by the stat cache.
    if (statCache) await hashPath(workspace, path, statCache);
  }

  /** Re-hashes an entry's objects; returns the hashes whose object's bytes no longer match its name. */
  verify(entry: PathHash): ContentHash[] {
    const hashes = entry.isDir ? (this.readManifest(entry.hash) ?? []).map((f) => f.hash) : [entry.hash];
    return hashes.filter((h) => existsSync(this.objectPath(h)) && hashFileSync(this.objectPath(h)) !== h);
  }

  /** Removes every object not reachable from `keep` (file hashes or directory hashes), and stale temp files. */
  async gc(keep: Iterable<ContentHash>): Promise<{ removedObjects: number; freedBytes: number }> {
    const live = new Set<string>();
    for (const hash of keep) {
      live.add(hash);
      const manifest = this.readManifest(hash);
      if (manifest) {
        live.add(`${hash}.dir`);
        for (const f of manifest) live.add(f.hash);
      }
    }
    let removedObjects = 0;
    let freedBytes = 0;
    for (const shard of existsSync(this.objectsDir) ? readdirSync(this.objectsDir) : []) {
      const shardDir = join(this.objectsDir, shard);
      for (const name of readdirSync(shardDir)) {
        if (live.has(name)) continue;
        const abs = join(shardDir, name);
        freedBytes += lstatSync(abs).size;
        rmSync(abs, { force: true });
        removedObjects++;
      }
    }
    const now = Date.now();
    for (const name of existsSync(this.tmpDir) ? readdirSync(this.tmpDir) : []) {
      const abs = join(this.tmpDir, name);
      if (now - lstatSync(abs).mtimeMs > STALE_TEMP_MS) rmSync(abs, { force: true });
    }
    return { removedObjects, freedBytes };
  }

  private readManifest(hash: ContentHash): ManifestEntry[] | undefined {
    const file = this.objectPath(hash, true);
    if (!existsSync(file)) return undefined;
    return parseManifestText(readFileSync(file, 'utf8'));
  }

  /** Copies a file into the store as `hash`, unless present. Clones where the filesystem can. */
  private putFile(src: string, hash: ContentHash): void {
    const final = this.objectPath(hash);
    if (existsSync(final)) return;
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
    mkdirSync(this.tmpDir, { recursive: true });
    return join(this.tmpDir, uniqueSuffix());
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
    mkdirSync(dirname(final), { recursive: true });
    renameSync(tmp, final);
  }

  /** One file at `dest` with the object's content, per the link mode (see the header). */
  private materialise(hash: ContentHash, dest: string): void {
    const object = this.objectPath(hash);
    if (this.link === 'hardlink') {
      try {
        linkSync(object, dest);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error; // other disk: copy instead
      }
    }
    copyFileSync(object, dest, this.link === 'copy' ? 0 : constants.COPYFILE_FICLONE);
    chmodSync(dest, 0o644);
    const { atime, mtime } = statSync(object);
    utimesSync(dest, atime, mtime);
  }
}

/** A symlink's object is its target text (the bytes its hash was taken over). */
function readlinkTarget(dirAbs: string, file: ManifestEntry): string {
  return readlinkSync(join(dirAbs, file.path));
}
