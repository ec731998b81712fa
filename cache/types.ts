// The cache's shared vocabulary. Digests are branded strings so a file digest can't be passed where a stage
// key is expected (and vice versa); both are lowercase sha256 hex.
//
// The modules that implement these: hash.ts (hashPath, dirManifest), stat-cache.ts (StatCache),
// fingerprint.ts (stageKey), store.ts (Store), run-cache.ts (RunCache), lockfile.ts (readLock, writeLock).

/** sha256 hex of a file's bytes, of a symlink's target text, or of a directory's manifest. */
export type ContentHash = string & { readonly __brand: 'ContentHash' };
/** sha256 hex of a stage's FingerprintData. */
export type StageKey = string & { readonly __brand: 'StageKey' };

/** A hashed dep or out, as recorded in the lock file (DVC style). Paths are workspace-relative, '/'-separated. */
export interface PathHash {
  path: string;
  hash: ContentHash;
  /** Bytes: a file's size, or the sum of a directory's file sizes. */
  size: number;
  /** Directories only: how many files (and symlinks) are below it. */
  nfiles?: number;
  isDir: boolean;
}

/**
 * One file below a directory. A directory's hash is sha256 of its manifest text (see hash.ts manifestText):
 * the entries sorted by path, each `[path, hash, size]` (symlinks `[path, hash, size, "symlink"]`).
 */
export interface ManifestEntry {
  /** Relative to the directory, '/'-separated. */
  path: string;
  /** sha256 of the file's bytes; for a symlink, sha256 of its target text. */
  hash: ContentHash;
  /** Bytes of the file; for a symlink, bytes of its target text. */
  size: number;
  symlink?: true;
}

/** The parts of fs.Stats the stat cache compares. */
export interface StatLike {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

/** The stage key's inputs, in a fixed field order, hashed once by fingerprint.ts stageKey. */
export interface FingerprintData {
  contractVersion: number;
  platform: string;
  argv: string[];
  shell: boolean;
  /** Declared params only; keys are sorted deeply before hashing. */
  params: Record<string, unknown>;
  /** Sorted by path before hashing. */
  deps: PathHash[];
  /** The stage's declared env; sorted before hashing. */
  env: Record<string, string>;
  /** Declared out paths; sorted before hashing. */
  outs: string[];
  /** The import closure of the stage's JS/TS deps; absent for a stage with none (its key is then unchanged). */
  code?: CodeDeps;
}

/**
 * What a stage's JS/TS deps import, followed to the end (runner/code-deps/closure.ts): workspace files by
 * content, packages by installed version, Node builtins and Node's major version, and imports that resolved
 * to nothing (so the file appearing later changes the key).
 */
export interface CodeDeps {
  /** Workspace files reached through imports, not counting the declared deps themselves. */
  files: Record<string, ContentHash>;
  /** Package name -> installed version, as Node resolves it from the importing file. */
  packages: Record<string, string>;
  /** `node:` modules imported (names without the prefix), sorted. */
  builtins: string[];
  /** Node's major version, e.g. "20". */
  node: string;
  /** `importing-file -> specifier` for each import that resolved to nothing, sorted. */
  unresolved: string[];
}

/** How Store.restore materialises an object in the workspace. */
export type LinkMode = 'reflink-or-copy' | 'hardlink' | 'copy';

/** Run-cache value: everything needed to restore a stage's outputs without running it. */
export interface RunRecord {
  key: StageKey;
  cmd: string | string[];
  deps: PathHash[];
  params: Record<string, unknown>;
  outs: PathHash[];
  metrics?: Record<string, unknown>;
  durationMs: number;
  /** ISO 8601. */
  createdAt: string;
}

/** One stage's entry in `<pipeline>.lock`. */
export interface LockEntry {
  key: StageKey;
  cmd: string | string[];
  deps: PathHash[];
  params: Record<string, unknown>;
  outs: PathHash[];
  /** The import closure the stage ran with, when it has JS/TS deps. */
  code?: CodeDeps;
}
