// `<pipeline>.lock`, beside the pipeline: what each stage last ran with (DVC's dvc.lock). Deterministic: stages
// sorted by name, a fixed key order, deps and outs sorted by path, params with sorted keys, so a no-op run
// produces identical bytes, and the writer then skips the write (the file's mtime doesn't move either).
//
// Pretty-printed JSON rather than YAML: for a 1000-stage pipeline the `yaml` package took ~0.5 s to parse the
// lock and ~0.35 s to write it, JSON ~5 ms each, and `runner status` reads it every time.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import lockfile from 'proper-lockfile';
import { canonicalJson, normalizeCodeDeps } from './fingerprint.js';
import type { CodeDeps, LockEntry, PathHash, StageKey } from './types.js';

export type { LockEntry } from './types.js';

const SCHEMA = '1';

/** A lock file that exists but can't be read as one; the message names the file and the problem. */
export class LockFileError extends Error {
  override readonly name = 'LockFileError';
}

function byPath(a: PathHash, b: PathHash): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** A PathHash with its keys in the fixed order (nfiles only for directories). */
function orderedPathHash(p: PathHash): PathHash {
  return { path: p.path, hash: p.hash, size: p.size, ...(p.nfiles !== undefined ? { nfiles: p.nfiles } : {}), isDir: p.isDir };
}

function orderedEntry(stage: string, e: LockEntry): LockEntry {
  return {
    key: e.key,
    cmd: Array.isArray(e.cmd) ? [...e.cmd] : e.cmd,
    deps: [...e.deps].sort(byPath).map(orderedPathHash),
    params: JSON.parse(canonicalJson(e.params, `stage ${stage} params`)) as Record<string, unknown>,
    outs: [...e.outs].sort(byPath).map(orderedPathHash),
    // The import closure (file -> hash, package -> version), sorted, so `git diff` of the lock shows what changed.
    ...(e.code ? { code: normalizeCodeDeps(e.code) } : {}),
  };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function checkCode(file: string, stage: string, code: unknown): CodeDeps | undefined {
  if (code === undefined) return undefined;
  const c = code as Partial<CodeDeps> | null;
  if (typeof c !== 'object' || c === null || !isStringRecord(c.files) || !isStringRecord(c.packages) ||
    !isStringList(c.builtins) || typeof c.node !== 'string' || !isStringList(c.unresolved)) {
    throw new LockFileError(`${file}: stage "${stage}": code needs files, packages, builtins, node and unresolved`);
  }
  return c as CodeDeps;
}

/** The exact bytes writeLock writes for these entries. */
export function lockText(entries: Record<string, LockEntry>): string {
  const stages: Record<string, LockEntry> = {};
  for (const name of Object.keys(entries).sort()) stages[name] = orderedEntry(name, entries[name]!);
  return JSON.stringify({ schema: SCHEMA, stages }, null, 2) + '\n';
}

function checkPathHashes(file: string, stage: string, field: string, value: unknown): void {
  if (!Array.isArray(value)) throw new LockFileError(`${file}: stage "${stage}": ${field} is not a list`);
  value.forEach((p: Partial<PathHash>, i) => {
    if (typeof p !== 'object' || p === null || typeof p.path !== 'string' || typeof p.hash !== 'string' ||
      typeof p.size !== 'number' || typeof p.isDir !== 'boolean') {
      throw new LockFileError(`${file}: stage "${stage}": ${field}[${i}] needs path, hash, size and isDir`);
    }
  });
}

/** The lock file's entries; a missing file is {}; anything unreadable is a LockFileError naming the file. */
export function readLock(file: string): Record<string, LockEntry> {
  if (!existsSync(file)) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new LockFileError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  const stages = (doc as { stages?: unknown } | null)?.stages;
  if (typeof doc !== 'object' || doc === null || typeof stages !== 'object' || stages === null || Array.isArray(stages)) {
    throw new LockFileError(`${file}: expected a mapping with "stages"; delete the file to rebuild it`);
  }
  const entries: Record<string, LockEntry> = {};
  for (const [stage, raw] of Object.entries(stages as Record<string, Partial<LockEntry>>)) {
    if (typeof raw !== 'object' || raw === null) throw new LockFileError(`${file}: stage "${stage}" is not a mapping`);
    if (typeof raw.key !== 'string') throw new LockFileError(`${file}: stage "${stage}" has no key`);
    checkPathHashes(file, stage, 'deps', raw.deps);
    checkPathHashes(file, stage, 'outs', raw.outs);
    const code = checkCode(file, stage, raw.code);
    entries[stage] = {
      key: raw.key as StageKey,
      cmd: raw.cmd ?? '',
      deps: raw.deps!,
      params: (raw.params ?? {}) as Record<string, unknown>,
      outs: raw.outs!,
      ...(code ? { code } : {}),
    };
  }
  return entries;
}

/** Writes the lock file atomically, and not at all when its bytes would be unchanged. */
export function writeLock(file: string, entries: Record<string, LockEntry>): void {
  const text = lockText(entries);
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return;
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic.sync(file, text);
}

/**
 * Sets (or, with undefined, removes) one stage's entry: read-modify-write under an inter-process lock, so
 * two runner processes finishing stages of the same pipeline don't lose each other's entries.
 */
export function updateLockEntry(file: string, stage: string, entry: LockEntry | undefined): void {
  mkdirSync(dirname(file), { recursive: true });
  const release = acquire(file);
  try {
    const entries = readLock(file);
    if (entry) entries[stage] = entry;
    else delete entries[stage];
    writeLock(file, entries);
  } finally {
    release();
  }
}

/** proper-lockfile's sync lock has no retry option, so retry here for up to ~10 s. */
function acquire(file: string): () => void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return lockfile.lockSync(file, { realpath: false, stale: 30_000 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() > deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}
