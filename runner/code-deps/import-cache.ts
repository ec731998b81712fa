// Parsed imports by file content hash, kept on disk beside the stat cache: a warm status takes each code
// file's hash from the stat cache (one lstat) and its imports from here, so it neither reads nor parses it.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Scan } from './scan.js';
import writeFileAtomic from 'write-file-atomic';

const FORMAT_VERSION = 1;
/** Beyond this many entries, a save keeps only those used by the process that saves. */
const MAX_ENTRIES = 20_000;

export class ImportCache {
  private readonly scans: Map<string, Scan>;
  private readonly used = new Set<string>();
  private changed = false;

  private constructor(readonly file: string | undefined) {
    this.scans = new Map();
    if (file === undefined) return;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: number; scans?: Record<string, Scan> };
      if (parsed.version === FORMAT_VERSION && parsed.scans) for (const [hash, scan] of Object.entries(parsed.scans)) this.scans.set(hash, scan);
    } catch {
      // missing or unreadable: start empty (it is only an accelerator)
    }
  }

  static load(file: string): ImportCache {
    return new ImportCache(file);
  }

  static inMemory(): ImportCache {
    return new ImportCache(undefined);
  }

  get(hash: string): Scan | undefined {
    const scan = this.scans.get(hash);
    if (scan) this.used.add(hash);
    return scan;
  }

  put(hash: string, scan: Scan): void {
    this.scans.set(hash, scan);
    this.used.add(hash);
    this.changed = true;
  }

  /** Writes the cache (temp + rename) when something was added; a warm pass writes nothing. */
  save(): void {
    if (this.file === undefined || !this.changed) return;
    const keep = this.scans.size > MAX_ENTRIES ? [...this.scans].filter(([hash]) => this.used.has(hash)) : [...this.scans];
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileAtomic.sync(this.file, JSON.stringify({ version: FORMAT_VERSION, scans: Object.fromEntries(keep) }), { fsync: false });
      this.changed = false;
    } catch {
      // best effort: only speed is lost
    }
  }
}
