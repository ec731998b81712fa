// What is downloaded from a remote is untrusted input: anyone who can write to the remote controls it.
// These checks run at the remote's boundary, before anything downloaded can shape a restore: a record must
// have the record's shape, be for the key asked and name exactly the stage's declared outs; a manifest's paths
// must stay inside their directory (relative, no `..`, no entry below a symlink entry) and a symlink's target
// must too. Byte integrity is separate: every object is re-hashed against its name (transfer.ts).
//
// One place on purpose: the workspace's own manifest validation (verified restores) can replace these.
import { posix } from 'node:path';
import type { PathHash, RunRecord, StageKey } from '../types.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** Why `path` is not a safe relative path (workspace- or directory-relative), or undefined. */
function relPathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return 'an empty or non-string path';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return `an absolute path ${JSON.stringify(path)}`;
  if (path.includes('\\') || path.includes('\0')) return `a path with a backslash or NUL ${JSON.stringify(path)}`;
  const parts = path.split('/');
  if (parts.some((p) => p === '..' || p === '.' || p === '')) return `a path that is not normalised or climbs out (${JSON.stringify(path)})`;
  return undefined;
}

function pathHashProblem(value: unknown, where: string): string | undefined {
  const v = value as PathHash;
  if (typeof v !== 'object' || v === null) return `${where} is not an object`;
  const pathProblem = relPathProblem(v.path);
  if (pathProblem) return `${where} has ${pathProblem}`;
  if (typeof v.hash !== 'string' || !HEX64.test(v.hash)) return `${where} has no sha256 hash`;
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) return `${where} has a bad size`;
  if (typeof v.isDir !== 'boolean') return `${where} has no isDir`;
  return undefined;
}

/**
 * Why a downloaded run record can't be used for the stage with `key` and these declared outs, or undefined
 * when it can.
 */
export function validateRemoteRecord(value: unknown, key: StageKey, declaredOuts: readonly string[]): string | undefined {
  const r = value as RunRecord;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not an object';
  if (r.key !== key) return `its key ${JSON.stringify(r.key)} is not the stage's`;
  if (!(typeof r.cmd === 'string' || (Array.isArray(r.cmd) && r.cmd.every((a) => typeof a === 'string')))) return 'bad cmd';
  if (!Array.isArray(r.deps) || !Array.isArray(r.outs)) return 'deps or outs is not a list';
  for (const [i, dep] of r.deps.entries()) {
    const problem = pathHashProblem(dep, `deps[${i}]`);
    if (problem) return problem;
  }
  for (const [i, out] of r.outs.entries()) {
    const problem = pathHashProblem(out, `outs[${i}]`);
    if (problem) return problem;
  }
  const recorded = r.outs.map((o) => o.path).sort().join('\n');
  if (recorded !== [...declaredOuts].sort().join('\n')) return 'its outs are not the stage\'s declared outs';
  if (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params)) return 'bad params';
  if (r.metrics !== undefined && (typeof r.metrics !== 'object' || r.metrics === null)) return 'bad metrics';
  if (typeof r.durationMs !== 'number' || typeof r.createdAt !== 'string') return 'bad durationMs or createdAt';
  return undefined;
}

/** Why a symlink (at `linkPath`, relative to its directory out) pointing at `target` leaves that directory. */
export function validateRemoteSymlink(linkPath: string, target: string): string | undefined {
  if (target === '' || target.includes('\0')) return `the symlink ${linkPath} has an empty or NUL target`;
  if (posix.isAbsolute(target)) return `the symlink ${linkPath} points at an absolute path`;
  const resolved = posix.normalize(posix.join(posix.dirname(linkPath), target));
  if (resolved === '..' || resolved.startsWith('../')) return `the symlink ${linkPath} points outside its directory`;
  return undefined;
}
