// The pipelines a workspace holds, as `runner gc` and `runner watch` find them: each `x.lock` beside its
// `x.yaml` (or `x.yml`), up to four folders deep, skipping node_modules, .git, .runner and dist.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const SKIP = new Set(['node_modules', '.git', '.runner', 'dist']);

export interface PipelineFiles {
  pipeline: string;
  lock: string;
}

/** The pipelines below `dir` that have a lock file; an unreadable folder is passed over. */
export function pipelinesWithLocks(dir: string, depth = 4, found: PipelineFiles[] = []): PipelineFiles[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (entry.isDirectory() && !SKIP.has(entry.name) && depth > 0) pipelinesWithLocks(join(dir, entry.name), depth - 1, found);
    else if (entry.isFile() && entry.name.endsWith('.lock')) {
      const base = join(dir, entry.name.slice(0, -'.lock'.length));
      const pipeline = [`${base}.yaml`, `${base}.yml`].find((file) => existsSync(file));
      if (pipeline) found.push({ pipeline, lock: join(dir, entry.name) });
    }
  }
  return found;
}
