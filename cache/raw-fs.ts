// readdir and lstat for the tree walk (tree-stats.ts) without the objects Node 20 builds around them.
//
// Why: a warm status of stage1_train is ~2k readdir and ~30k lstat calls. Through the public API each lstat
// builds a Stats object with four Dates and each directory entry a Dirent: about half of the walk's CPU here
// (walk of stage1_train: ~260 ms CPU with lstatSync/Dirent, ~170 ms with these, same syscalls). Node 22
// builds Stats' Dates lazily; Node 20, the version this project runs on, does not.
//
// How: Node's own fs binding (what fs.lstatSync and fs.readdirSync call) returns the raw numbers: lstat a
// Float64Array [dev, mode, nlink, uid, gid, rdev, blksize, ino, size, blocks, atime s, ns, mtime s, ns,
// ctime s, ns, ...], readdir [names, types]. It is internal, so it is used only after a self-check: on first
// use both calls are compared with the public API on real paths (every field the walk uses, the time fields
// computed exactly as Node computes mtimeMs), and any difference, missing function or exception means the
// public API is used instead — a slower walk, never a different digest. Also off where process.binding would
// warn (--pending-deprecation) or is refused (the permission model).
import { constants, lstatSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What the walk needs of a file's stat; times in ms as fs.Stats has them (sec * 1e3 + nsec / 1e6). */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface RawFs {
  /** Names and types of a directory's entries, in readdir order. */
  readdir(dir: string): { names: string[]; types: EntryType[] };
  /** Writes the stat of `path` (not following a symlink) into `into`. */
  lstat(path: string, into: FileStat): void;
}

// libuv's entry types (in fs.constants at run time, though not in @types/node).
const uv = constants as unknown as Record<string, number | undefined>;
const TYPE_OF = new Map<number | undefined, EntryType>([
  [uv['UV_DIRENT_FILE'], 'file'],
  [uv['UV_DIRENT_DIR'], 'dir'],
  [uv['UV_DIRENT_LINK'], 'symlink'],
]);

interface FsBinding {
  lstat(path: string, bigint: boolean, request: undefined, throwIfNoEntry: boolean): Float64Array | undefined;
  readdir(path: string, encoding: string, withTypes: boolean): [string[], number[]] | undefined;
}

/** The public API: always right, slower (see the header). */
export const publicFs: RawFs = {
  readdir(dir) {
    const names: string[] = [];
    const types: EntryType[] = [];
    for (const dirent of readdirSync(dir, { withFileTypes: true })) {
      names.push(dirent.name);
      types.push(dirent.isFile() ? 'file' : dirent.isDirectory() ? 'dir' : dirent.isSymbolicLink() ? 'symlink' : 'other');
    }
    return { names, types };
  },
  lstat(path, into) {
    const stat = lstatSync(path);
    into.size = stat.size;
    into.mtimeMs = stat.mtimeMs;
    into.ctimeMs = stat.ctimeMs;
    into.ino = stat.ino;
  },
};

function bindingFs(binding: FsBinding): RawFs {
  return {
    readdir(dir) {
      const result = binding.readdir(dir, 'utf8', true);
      if (!result) throw new Error(`readdir returned nothing for ${dir}`);
      return { names: result[0], types: result[1].map((t) => TYPE_OF.get(t) ?? 'other') };
    },
    lstat(path, into) {
      // The binding's shared array: read before the next call.
      const v = binding.lstat(path, false, undefined, true);
      if (!(v instanceof Float64Array)) throw new Error(`cannot lstat ${path}`);
      into.size = v[8]!;
      into.mtimeMs = v[12]! * 1e3 + v[13]! / 1e6;
      into.ctimeMs = v[14]! * 1e3 + v[15]! / 1e6;
      into.ino = v[7]!;
    },
  };
}

/** Whether `candidate` agrees with the public API on these paths (a file and a directory). */
function agrees(candidate: RawFs, file: string, dir: string): boolean {
  const got: FileStat = { size: -1, mtimeMs: -1, ctimeMs: -1, ino: -1 };
  const want: FileStat = { size: -2, mtimeMs: -2, ctimeMs: -2, ino: -2 };
  for (const path of [file, dir]) {
    candidate.lstat(path, got);
    publicFs.lstat(path, want);
    if (got.size !== want.size || got.mtimeMs !== want.mtimeMs || got.ctimeMs !== want.ctimeMs || got.ino !== want.ino) return false;
  }
  const a = candidate.readdir(dir);
  const b = publicFs.readdir(dir);
  return a.names.length === b.names.length && a.names.every((name, i) => name === b.names[i] && a.types[i] === b.types[i]);
}

let chosen: RawFs | undefined;

/** The fast binding where it passes its self-check, else the public API (decided once per process). */
export function rawFs(): RawFs {
  if (chosen) return chosen;
  chosen = publicFs;
  const pending = process.execArgv.includes('--pending-deprecation') || /--pending-deprecation/.test(process.env['NODE_OPTIONS'] ?? '') ||
    process.env['NODE_PENDING_DEPRECATION'] === '1';
  if (pending || process.env['RUNNER_RAW_FS'] === '0') return chosen;
  try {
    const binding = (process as unknown as { binding(name: string): Partial<FsBinding> }).binding('fs');
    if (typeof binding.lstat !== 'function' || typeof binding.readdir !== 'function') return chosen;
    const candidate = bindingFs(binding as FsBinding);
    // This module's own file and folder: both exist wherever the code runs.
    if (agrees(candidate, fileURLToPath(import.meta.url), fileURLToPath(new URL('.', import.meta.url)))) chosen = candidate;
  } catch {
    // refused or different: the public API it is
  }
  return chosen;
}
