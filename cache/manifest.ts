// A directory's manifest as untrusted input. The store keeps manifests as objects (`<hash>.dir`), and a cache
// may be shared or remote, so a manifest is checked before anything it names is written: every path must stay
// inside the directory it is restored into, whatever the bytes say.
//
// Rules (each broken one is a ManifestError naming the row): the text is a JSON array of rows
// `[path, sha256 hex, size]` or `[path, sha256 hex, size, "symlink"]`; a path is relative, '/'-separated, with
// no empty, '.' or '..' segment, no backslash and no NUL; no path appears twice; no entry lies below another
// entry (a file or a symlink is never a folder, so `a -> /elsewhere` followed by `a/x` is refused); and, when
// the expected hash is given, sha256 of the text is that hash (a manifest cut down or edited is refused).
import type { ContentHash, ManifestEntry } from './types.js';
import { sha256 } from './hash.js';

/** A manifest that can't be trusted; the message says which row and why. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Whether `hash` has the shape of a content hash (lowercase sha256 hex): safe to build an object path from. */
export function isContentHash(hash: unknown): hash is ContentHash {
  return typeof hash === 'string' && HEX64.test(hash);
}

/** Why `path` can't be an entry of a directory, or undefined when it can. */
function pathProblem(path: string): string | undefined {
  // The common case through string built-ins only: a manifest of 30k rows is checked in a process that has
  // just started, where a loop over characters or a split per path runs unoptimised.
  if (!mayBreakARule(path)) return undefined;
  if (path === '') return 'an empty path';
  if (path.startsWith('/')) return 'an absolute path';
  if (path.includes('\\')) return 'a backslash';
  if (path.includes('\0')) return 'a NUL character';
  for (const segment of path.split('/')) {
    if (segment === '') return 'an empty segment ("//" or a trailing "/")';
    if (segment === '.' || segment === '..') return `a "${segment}" segment`;
  }
  return undefined;
}

/**
 * False only for a path that breaks none of the rules: not empty, no backslash or NUL, no "//", no leading or
 * trailing "/", no "." or ".." segment (such a segment starts the path or follows a "/", and ends the path or
 * meets a "/").
 */
function mayBreakARule(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.endsWith('/') || path.includes('//') || path.includes('\\') || path.includes('\0')) return true;
  if (path.startsWith('.') && (path === '.' || path === '..' || path.startsWith('./') || path.startsWith('../'))) return true;
  return path.includes('/.') && (path.includes('/./') || path.includes('/../') || path.endsWith('/.') || path.endsWith('/..'));
}

/**
 * Checks entries (already of the right shape) against the rules in the header; throws ManifestError on the
 * first broken one. Cost: one Set lookup per path, and one per segment of each run of rows in one folder.
 */
export function validateManifest(entries: readonly ManifestEntry[]): void {
  const paths = new Set<string>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const problem = pathProblem(entry.path);
    if (problem) throw new ManifestError(`row ${i} (${JSON.stringify(entry.path)}) has ${problem}`);
    if (!isContentHash(entry.hash)) throw new ManifestError(`row ${i} (${JSON.stringify(entry.path)}) has a hash that is not sha256 hex`);
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new ManifestError(`row ${i} (${JSON.stringify(entry.path)}) has a bad size`);
    if (paths.has(entry.path)) throw new ManifestError(`row ${i} (${JSON.stringify(entry.path)}) is a duplicate`);
    paths.add(entry.path);
  }
  // A row's folders are those of the row before whenever their parent is the same (rows come sorted, so
  // that is most of them): each run of one parent is checked at its first row.
  let lastParent: string | undefined;
  for (let i = 0; i < entries.length; i++) {
    const path = entries[i]!.path;
    const parent = path.slice(0, Math.max(0, path.lastIndexOf('/')));
    if (parent === lastParent) continue;
    lastParent = parent;
    for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
      const above = path.slice(0, cut);
      if (paths.has(above)) throw new ManifestError(`row ${i} (${JSON.stringify(path)}) lies below the entry ${JSON.stringify(above)}, which is not a folder`);
    }
  }
}

/**
 * Parses a manifest's text (hash.ts manifestText's form) and validates it; with `expected`, also checks that
 * the text is the one that hash names. Throws ManifestError.
 */
export function parseManifest(text: string, expected?: ContentHash): ManifestEntry[] {
  if (expected !== undefined && sha256(text) !== expected) throw new ManifestError(`its content does not hash to its name (cut down or edited)`);
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch (cause) {
    throw new ManifestError(`not JSON (${(cause as Error).message})`);
  }
  if (!Array.isArray(rows)) throw new ManifestError('not a JSON array');
  const entries = rows.map((row: unknown, i): ManifestEntry => {
    if (!Array.isArray(row) || row.length < 3 || row.length > 4 || typeof row[0] !== 'string' || typeof row[1] !== 'string' ||
      typeof row[2] !== 'number' || (row.length === 4 && row[3] !== 'symlink')) {
      throw new ManifestError(`row ${i} is not [path, hash, size] or [path, hash, size, "symlink"]`);
    }
    const entry: ManifestEntry = { path: row[0], hash: row[1] as ContentHash, size: row[2] };
    if (row[3] === 'symlink') entry.symlink = true;
    return entry;
  });
  validateManifest(entries);
  return entries;
}
