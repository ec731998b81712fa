// An experiment's own workspace, `.runner/exps/<id>/`: a mirror of the main workspace made of symlinks, except
// for the paths the pipeline writes (outs, metrics, checkpoints, the lock file) and the runner's own folder.
//
//   main/                         .runner/exps/<id>/
//     stages/        <-symlink--    stages/
//     data/raw/      <-symlink--    data/raw/
//     data/prep/                    data/prep/          (an out: written here, never linked)
//     pipelines/x.yaml <-symlink--  pipelines/x.yaml
//     pipelines/x.lock              pipelines/x.lock    (the experiment's own lock)
//
// Stages run with the experiment's folder as their cwd, so the same workspace-relative argv, deps and outs give
// the same stage keys as in the main workspace, and the shared run-cache restores every stage whose params
// did not change instead of running it. Inputs are never copied. A folder holding both inputs and outs is
// made real and its other entries linked one by one.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cachedOuts } from '../plan.js';
import type { Pipeline } from '../spec/pipeline.js';
import { isWithin, runnerDirs } from '../workspace.js';

/** Workspace-relative paths an experiment owns: never linked to the main workspace. */
export function ownedPaths(pipeline: Pipeline): string[] {
  const owned = new Set<string>(['.runner']);
  for (const stage of pipeline.stages) for (const path of [...cachedOuts(stage), ...stage.checkpoints]) owned.add(path);
  owned.add(relative(pipeline.workspace, pipeline.lockFile).split('\\').join('/'));
  return [...owned];
}

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates or refreshes the mirror at `target`: links are (re)made for every main-workspace entry that is not
 * owned, stale links (to entries since deleted) are removed, and owned paths already there are left alone.
 */
export function mirrorWorkspace(main: string, target: string, owned: readonly string[]): void {
  const walk = (rel: string): void => {
    const mainDir = join(main, rel);
    const targetDir = join(target, rel);
    mkdirSync(targetDir, { recursive: true });
    const entries = new Set(readdirSync(mainDir));
    // Links whose main entry is gone would make a dep look present: remove them.
    for (const name of readdirSync(targetDir)) {
      const path = rel ? `${rel}/${name}` : name;
      if (!entries.has(name) && !owned.some((o) => isWithin(path, o)) && lstatSync(join(targetDir, name)).isSymbolicLink()) unlinkSync(join(targetDir, name));
    }
    for (const name of entries) {
      const path = rel ? `${rel}/${name}` : name;
      if (owned.some((o) => isWithin(path, o))) continue;
      if (owned.some((o) => isWithin(o, path))) {
        // Holds an owned path: a real folder here, its other entries linked one by one.
        const at = join(target, path);
        if (lexists(at) && lstatSync(at).isSymbolicLink()) unlinkSync(at);
        if (lstatSync(join(main, path)).isDirectory()) walk(path);
        continue;
      }
      const at = join(target, path);
      if (!lexists(at)) symlinkSync(join(main, path), at);
    }
  };
  walk('');
}

/** Copies the main workspace's stat cache on first use, so shared inputs (a big data folder) hash warm. */
export function seedStatCache(main: string, target: string): void {
  const from = runnerDirs(main).statCache;
  const to = runnerDirs(target).statCache;
  mkdirSync(runnerDirs(target).root, { recursive: true });
  for (const suffix of ['', '.files']) {
    if (existsSync(from + suffix) && !existsSync(to + suffix)) copyFileSync(from + suffix, to + suffix);
  }
}
