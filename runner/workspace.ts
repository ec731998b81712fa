// Where a pipeline's paths are rooted, and the checks that keep every dep and out inside it.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, posix, sep } from 'node:path';

/** `--workspace` if given; else the nearest ancestor of the pipeline holding .runner/, .git or package.json. */
export function findWorkspace(pipelinePath: string, explicit?: string): string {
  if (explicit) return resolve(explicit);
  const start = dirname(resolve(pipelinePath));
  for (let dir = start; ; dir = dirname(dir)) {
    if (['.runner', '.git', 'package.json'].some((marker) => existsSync(join(dir, marker)))) return dir;
    if (dirname(dir) === dir) return start;
  }
}

/**
 * A workspace-relative, '/'-separated, normalised path; undefined when the path leaves the workspace or is the
 * workspace itself (a stage may not own the whole tree).
 */
export function workspacePath(workspace: string, path: string): string | undefined {
  const relativePath = isAbsolute(path) ? relative(workspace, path).split(sep).join('/') : path;
  const normalised = posix.normalize(relativePath).replace(/\/+$/, '');
  if (normalised === '' || normalised === '.' || normalised === '..' || normalised.startsWith('../') || posix.isAbsolute(normalised)) {
    return undefined;
  }
  return normalised;
}

/** True when `inner` is `outer` or lies below it (both workspace-relative). */
export function isWithin(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer + '/');
}

/** Where a pipeline's cache lives: RUNNER_CACHE_DIR, else its `cache: {dir}` (workspace-relative), else .runner/cache. */
export function cacheDirFor(workspace: string, configuredDir?: string): string {
  const fromEnv = process.env['RUNNER_CACHE_DIR'];
  if (fromEnv) return resolve(fromEnv);
  return configuredDir ? resolve(workspace, configuredDir) : runnerDirs(workspace).defaultCache;
}

/** The runner's own folders inside a workspace. */
export function runnerDirs(workspace: string) {
  const root = join(workspace, '.runner');
  return {
    root,
    logs: join(root, 'logs'),
    tmp: join(root, 'tmp'),
    statCache: join(root, 'stat-cache.json'),
    specs: join(root, 'tmp', 'specs'),
    lock: join(root, 'workspace.lock'),
    /** Restore temps listed by the process that made them (cache/restore-temps.ts). */
    restoreLedgers: join(root, 'tmp', 'restoring'),
    defaultCache: join(root, 'cache'),
  };
}
