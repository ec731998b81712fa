// The store's packs: the small objects of a directory out kept as one object of the store (its pack, the same
// bytes as on a remote: cache/pack.ts) with an index at `packs/<manifest hash>.json`. A pull of a folder of 30k
// small files then writes and flushes one file instead of 30k, and its restore reads one file instead of
// opening 30k; `tar -x` is the yardstick (docs/remote-cache.md, "Speed").
//
// An object lives in the store either as its own file or as a range of a pack; the store asks `find` before it
// looks for the file. Nothing here is trusted more than a loose object: an index is read back through the same
// checks as a downloaded one (its manifest must be in the store and give the index's size), a pack object must
// be a regular file of the index's size, and every range is hashed against its object's name as it is handed
// to the workspace (store.ts). An index names its manifest, so it lives exactly as long as that manifest does
// (`sweep`, from the store's gc).
//
// Writes follow the store's order: the pack object first (made durable and renamed by whoever downloaded it),
// then its index (a temp made durable, then renamed: early-write.ts), then the manifest; a crash in between leaves a pack no index names or
// an index no manifest serves, and gc removes both.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, constants, type Stats } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { validatePackIndex, type PackIndex, type PackMember } from './pack.js';
import { readRange } from './read-range.js';
import { EarlyWrite } from './early-write.js';
import type { ContentHash, ManifestEntry } from './types.js';

/** Where an object's bytes are inside a pack. */
export interface PackedObject {
  pack: ContentHash;
  offset: number;
  size: number;
}

const INDEX_NAME = /^([0-9a-f]{64})\.json$/;

export interface StorePacksOptions {
  /** The store's folder of indexes (`<cacheDir>/packs`). */
  dir: string;
  /** The store's temp folder, on the same filesystem. */
  tmpDir: string;
  objectPath: (hash: ContentHash) => string;
  /** The manifest of a directory the store holds, checked; undefined when it has none. May throw (damaged). */
  manifestOf: (hash: ContentHash) => ManifestEntry[] | undefined;
  warn: (message: string) => void;
}

export class StorePacks {
  /** Object hash -> its range in a pack, over every usable index; built on first use. */
  private byObject: Map<string, PackedObject> | undefined;

  constructor(private readonly options: StorePacksOptions) {}

  /** Where the store has this object inside a pack, if it does. */
  find(hash: string): PackedObject | undefined {
    return this.load().get(hash);
  }

  /** The index of this manifest's pack, checked, with its members in pack order; undefined when unusable. */
  indexOf(manifest: ContentHash): { index: PackIndex; members: PackMember[] } | undefined {
    if (this.folder() !== 'real') return undefined;
    const file = join(this.options.dir, `${manifest}.json`);
    const stat = lstatSync(file, { throwIfNoEntry: false });
    if (!stat) return undefined;
    let entries: ManifestEntry[] | undefined;
    try {
      entries = stat.isFile() ? this.options.manifestOf(manifest) : undefined;
    } catch (cause) {
      this.options.warn((cause as Error).message);
      return undefined;
    }
    if (!entries) return undefined; // no manifest (yet, or any more): the index serves nothing, gc removes it
    let checked: ReturnType<typeof validatePackIndex>;
    try {
      checked = validatePackIndex(JSON.parse(readFileSync(file, 'utf8')), manifest, entries);
    } catch (cause) {
      checked = `not JSON (${(cause as Error).message})`;
    }
    if (typeof checked === 'string') {
      this.options.warn(`the pack index ${file} is damaged (${checked}); removed it from the cache`);
      rmSync(file, { force: true });
      return undefined;
    }
    const pack = lstatSync(this.options.objectPath(checked.index.pack), { throwIfNoEntry: false });
    if (!pack?.isFile() || pack.size !== checked.index.size) return undefined;
    return checked;
  }

  /** The index's file of a pack about to arrive, written ahead (early-write.ts) for add() to name. */
  writeIndexEarly(index: PackIndex): EarlyWrite {
    mkdirSync(this.options.tmpDir, { recursive: true });
    const tmp = join(this.options.tmpDir, `pack-index-${process.pid}-${randomBytes(4).toString('hex')}`);
    return new EarlyWrite(tmp, Buffer.from(JSON.stringify(index) + '\n'));
  }

  /**
   * Records a pack whose object the store now holds under its name: its index, written durably (`early`:
   * written ahead by writeIndexEarly), and its members (checked by the caller against the manifest, which
   * may not be in the store yet) findable at once.
   */
  async add(index: PackIndex, members: readonly PackMember[], early?: EarlyWrite): Promise<void> {
    const write = early ?? this.writeIndexEarly(index);
    try {
      if (this.folder() === 'foreign') this.replaceForeign();
      mkdirSync(this.options.dir, { recursive: true });
    } catch (error) {
      write.discard();
      throw error;
    }
    await write.name(join(this.options.dir, `${index.manifest}.json`));
    const byObject = this.load();
    let offset = 0;
    for (const member of members) {
      if (!byObject.has(member.hash)) byObject.set(member.hash, { pack: index.pack, offset, size: member.size });
      offset += member.size;
    }
  }

  /** Forgets every index that names this pack (its object was found damaged and removed). */
  dropPack(pack: ContentHash): void {
    for (const name of this.indexNames()) {
      const file = join(this.options.dir, name);
      try {
        if ((JSON.parse(readFileSync(file, 'utf8')) as { pack?: unknown }).pack === pack) unlinkSync(file);
      } catch {
        // unreadable: the next find or gc deals with it
      }
    }
    this.byObject = undefined;
  }

  /**
   * gc: removes the index of every manifest not in `liveManifests` (and anything in the folder that is not an
   * index); returns the packs the live indexes name, which the store must keep.
   */
  sweep(liveManifests: ReadonlySet<string>): Set<string> {
    const livePacks = new Set<string>();
    const folder = this.folder();
    if (folder === 'foreign') this.replaceForeign();
    if (folder !== 'real') return livePacks;
    for (const entry of readdirSync(this.options.dir, { withFileTypes: true })) {
      const manifest = INDEX_NAME.exec(entry.name)?.[1];
      const file = join(this.options.dir, entry.name);
      const usable = manifest !== undefined && entry.isFile() && liveManifests.has(manifest) ? this.indexOf(manifest as ContentHash) : undefined;
      if (usable) livePacks.add(usable.index.pack);
      else if (!entry.isDirectory()) unlinkSync(file); // a link goes as the link it is
    }
    this.byObject = undefined;
    return livePacks;
  }

  private indexNames(): string[] {
    return this.folder() === 'real' ? readdirSync(this.options.dir).filter((name) => INDEX_NAME.test(name)) : [];
  }

  /**
   * What is at the packs folder's path: a real folder, nothing, or something the store did not make (a
   * symlink, a file). Nothing is read, written or deleted through a foreign one: it may lead out of the cache.
   */
  private folder(): 'real' | 'absent' | 'foreign' {
    const stat = lstatSync(this.options.dir, { throwIfNoEntry: false });
    return !stat ? 'absent' : stat.isDirectory() ? 'real' : 'foreign';
  }

  /** Removes a symlink or file where the packs folder belongs (the link only, never its target). */
  private replaceForeign(): void {
    this.options.warn(`replaced ${this.options.dir}: a symlink or file where the cache keeps its pack indexes`);
    unlinkSync(this.options.dir);
    this.byObject = undefined;
  }

  private load(): Map<string, PackedObject> {
    if (this.byObject) return this.byObject;
    const byObject = new Map<string, PackedObject>();
    for (const name of this.indexNames()) {
      const usable = this.indexOf(name.slice(0, 64) as ContentHash);
      if (!usable) continue;
      let offset = 0;
      for (const member of usable.members) {
        if (!byObject.has(member.hash)) byObject.set(member.hash, { pack: usable.index.pack, offset, size: member.size });
        offset += member.size;
      }
    }
    return (this.byObject = byObject);
  }
}

/** Open packs during one restore: each opened once (as an object is: no symlink, no fifo), read by range. */
export class PackReader {
  private readonly handles = new Map<string, { fd: number; stats: Stats } | { problem: string }>();
  private buffer = Buffer.allocUnsafe(1 << 20);

  constructor(private readonly objectPath: (hash: ContentHash) => string) {}

  /** The pack's stats (for the restored files' times), or why it can't be read as an object. */
  stats(pack: ContentHash): Stats | { problem: string } {
    const opened = this.opened(pack);
    return 'problem' in opened ? opened : opened.stats;
  }

  /**
   * The object's bytes (a view valid until the next read), or why they could not be read. Never reads past
   * the range: a pack shorter than its index says is a short read, reported.
   */
  read(packed: PackedObject): Buffer | { problem: string } {
    const opened = this.opened(packed.pack);
    if ('problem' in opened) return opened;
    if (packed.size > this.buffer.length) this.buffer = Buffer.allocUnsafe(packed.size);
    const bytes = this.buffer.subarray(0, packed.size);
    if (readRange(opened.fd, bytes, packed.offset) < packed.size) return { problem: `the pack ends before its bytes ${packed.offset}-${packed.offset + packed.size}` };
    return bytes;
  }

  close(): void {
    for (const opened of this.handles.values()) if ('fd' in opened) closeSync(opened.fd);
    this.handles.clear();
  }

  /** The pack's open descriptor and stats (kept until close), or why it can't be read as an object. */
  opened(pack: ContentHash): { fd: number; stats: Stats } | { problem: string } {
    let opened = this.handles.get(pack);
    if (opened) return opened;
    let fd: number | undefined;
    try {
      fd = openSync(this.objectPath(pack), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const stats = fstatSync(fd);
      opened = stats.isFile() ? { fd, stats } : { problem: 'the pack is not a regular file' };
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      opened = { problem: code === 'ELOOP' ? 'the pack is a symlink' : code === 'ENOENT' ? 'the pack is missing' : `the pack can't be read (${code ?? (cause as Error).message})` };
    }
    if ('problem' in opened && fd !== undefined) closeSync(fd);
    this.handles.set(pack, opened);
    return opened;
  }
}
