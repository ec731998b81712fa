// One runner per workspace (proper-lockfile on .runner/). A lock whose owner is gone is recovered at once when
// the owner ran on this host and its pid is dead (kill -9), else by proper-lockfile's staleness (mtime not
// refreshed for 30 s).
import { hostname } from 'node:os';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './process-alive.js';
import { fail } from './spec/diagnostics.js';
import { runnerDirs } from './workspace.js';

interface Owner {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

/** Takes the workspace lock; returns its release function. Fails with a clear message when it is held. */
export async function lockWorkspace(workspace: string): Promise<() => Promise<void>> {
  const { default: lockfile } = await import('proper-lockfile');
  const dirs = runnerDirs(workspace);
  mkdirSync(dirs.root, { recursive: true });
  const ownerFile = join(dirs.root, 'workspace.owner.json');
  const options = {
    lockfilePath: dirs.lock,
    stale: 30_000,
    update: 10_000,
    retries: 0,
    realpath: false,
    onCompromised: (cause: Error) => process.stderr.write(`warning: the workspace lock was taken over (${cause.message})\n`),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(dirs.root, options);
      const owner: Owner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(2).join(' ') };
      writeFileSync(ownerFile, JSON.stringify(owner) + '\n');
      return async () => {
        rmSync(ownerFile, { force: true });
        await release();
      };
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ELOCKED') throw cause;
      let owner: Owner | undefined;
      try {
        owner = JSON.parse(readFileSync(ownerFile, 'utf8')) as Owner;
      } catch {
        owner = undefined; // between the other runner's lock and its owner file, or an old crash
      }
      if (attempt === 0 && owner && owner.host === hostname() && !processAlive(owner.pid)) {
        // The owner was killed (kill -9 leaves the lock behind): recover it now rather than after 30 s. Claiming
        // the owner file by rename first means only one of several recovering runners removes the lock.
        const claimed = `${ownerFile}.stale-${process.pid}`;
        let won = true;
        try {
          renameSync(ownerFile, claimed);
        } catch {
          won = false;
        }
        if (won) {
          rmSync(dirs.lock, { recursive: true, force: true });
          rmSync(claimed, { force: true });
          continue;
        }
      }
      const who = owner ? ` (pid ${owner.pid} on ${owner.host}, since ${owner.startedAt}: runner ${owner.command})` : '';
      fail(`another runner is using this workspace${who}; wait for it to finish (lock: ${dirs.lock})`);
    }
  }
}
