// The check before the runner deletes, writes or restores a workspace path: no folder on the way to it may be
// a symlink that leads out of the workspace. `outs: [o/f]` with `o -> /elsewhere` would otherwise delete or
// create `/elsewhere/f`.
//
// How: each parent folder of the path is lstat'ed from the workspace down; a symlink among them is resolved
// (realpath) and must land inside the workspace's own real path; the first missing folder ends the walk (what
// is below it is created as plain folders). The path's last component is never followed: deleting a symlink
// removes the link, and a restore renames over it. One lstat per parent folder; the workspace's realpath is
// taken once per process.
//
// Limit: a check, then the operation. A process that swaps a folder for a symlink between the two is not
// defended against (the runner's own stages run one after the other on their outs, not concurrently).
import { lstatSync, realpathSync } from 'node:fs';
import { sep } from 'node:path';

/** A path whose parent folders lead out of the workspace; the message names the symlink and its target. */
export class OutsideWorkspaceError extends Error {
  override readonly name = 'OutsideWorkspaceError';
  constructor(readonly path: string, readonly symlink: string, readonly target: string | undefined) {
    super(
      target === undefined
        ? `"${path}" is below the symlink "${symlink}", which points nowhere; the runner writes only inside the workspace`
        : `"${path}" is below the symlink "${symlink}" -> ${target}, outside the workspace; the runner writes only inside the workspace (make "${symlink}" a folder, or move the out)`,
    );
  }
}

const realWorkspaces = new Map<string, string>();

function realWorkspace(workspace: string): string {
  let real = realWorkspaces.get(workspace);
  if (real === undefined) {
    real = realpathSync.native(workspace);
    realWorkspaces.set(workspace, real);
  }
  return real;
}

function isInside(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Throws OutsideWorkspaceError when a parent folder of `relPath` (workspace-relative, normalised, '/'-separated)
 * is a symlink leading out of the workspace or nowhere. Returns quietly otherwise.
 */
export function assertInsideWorkspace(workspace: string, relPath: string): void {
  const root = realWorkspace(workspace);
  let cut = relPath.indexOf('/');
  while (cut !== -1) {
    const parent = relPath.slice(0, cut);
    const abs = `${workspace}/${parent}`;
    const stat = lstatSync(abs, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync.native(abs);
      } catch {
        throw new OutsideWorkspaceError(relPath, parent, undefined);
      }
      if (!isInside(target, root)) throw new OutsideWorkspaceError(relPath, parent, target);
    }
    cut = relPath.indexOf('/', cut + 1);
  }
}
