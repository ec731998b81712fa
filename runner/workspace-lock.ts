// One runner per workspace (proper-lockfile on .runner/). The lock is the folder `.runner/workspace.lock`
// holding `owner.json` (pid, host, start, command). The folder appears with its owner already inside: it is
// built under a temp name and renamed into place (the mkdir proper-lockfile calls, given through its `fs`
// option), so no kill can leave a lock whose owner is unknown. rename(2) replaces an empty folder, so a lock
// folder left empty (a kill between removing the owner and the folder, or an older runner killed between its
// mkdir and its owner file) is taken over at once.
//
// A lock whose owner is gone is recovered at once when the owner ran on this host and its pid is dead
// (kill -9), else by proper-lockfile's staleness (mtime not refreshed for 30 s). Once the lock is held, what
// dead runners left is swept: their half-built lock folders and their restore temps (cache/restore-temps.ts).
import { hostname } from 'node:os';
import fs, { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { sweepRestoreTemps } from '../cache/restore-temps.js';
import { processAlive } from './process-alive.js';
import { fail } from './spec/diagnostics.js';
import { displayPath } from './spec/pipeline.js';
import { runnerDirs } from './workspace.js';

interface Owner {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

const OWNER_FILE = 'owner.json';
/** Leftovers of a lock folder being built or claimed: `<lock>.new-<pid>-<hex>`, `<lock>.stale-<pid>-<hex>`. */
const LEFTOVER = /\.(?:new|stale)-(\d+)-[0-9a-f]{8}$/;

function suffix(kind: 'new' | 'stale'): string {
  return `.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function readOwner(lockDir: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(join(lockDir, OWNER_FILE), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/** The lock folder with its owner file inside, made to appear whole; EEXIST when another lock is there. */
function createLockDir(lockDir: string, owner: Owner): void {
  const temp = lockDir + suffix('new');
  mkdirSync(temp);
  try {
    writeFileSync(join(temp, OWNER_FILE), JSON.stringify(owner) + '\n');
    renameSync(temp, lockDir);
  } catch (cause) {
    rmSync(temp, { recursive: true, force: true });
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw Object.assign(new Error('the workspace lock exists'), { code: 'EEXIST' });
    throw cause;
  }
}

function removeLockDir(lockDir: string): void {
  rmSync(join(lockDir, OWNER_FILE), { force: true });
  rmdirSync(lockDir);
}

type Callback = (error: Error | null) => void;

/** What proper-lockfile calls on its `fs`: Node's fs, with mkdir and rmdir that handle the owner file. */
function lockFs(owner: Owner) {
  const settle = (callback: Callback, action: () => void): void => {
    try {
      action();
    } catch (cause) {
      return callback(cause as Error);
    }
    callback(null);
  };
  return {
    stat: fs.stat,
    utimes: fs.utimes,
    realpath: fs.realpath,
    mkdir: (path: string, callback: Callback) => settle(callback, () => createLockDir(path, owner)),
    rmdir: (path: string, callback: Callback) => settle(callback, () => removeLockDir(path)),
    rmdirSync: (path: string) => removeLockDir(path),
  };
}

/** One line for a person: what kept the lock from being taken. */
function whyNot(cause: unknown): string {
  const error = cause as NodeJS.ErrnoException;
  if (error.code === 'ENOSPC') return 'no space left on the device; free some space and run again';
  if (error.code === 'EDQUOT') return 'disk quota exceeded; free some space and run again';
  if (error.code === 'EROFS') return 'the file system is read-only';
  if (error.code === 'EACCES' || error.code === 'EPERM') return 'permission denied';
  return String(error.message ?? cause).split('\n')[0]!;
}

/** Removes half-built or claimed lock folders of processes that are gone. */
function sweepLockLeftovers(lockDir: string): void {
  const prefix = basename(lockDir);
  for (const name of readdirSync(dirname(lockDir))) {
    const pid = name.startsWith(prefix) ? LEFTOVER.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid !== undefined && !processAlive(Number(pid))) rmSync(join(dirname(lockDir), name), { recursive: true, force: true });
  }
}

/**
 * Claims the lock of a dead owner by renaming it away (one of several recovering runners wins the rename);
 * true when the stale lock is gone. If the claimed folder turns out to hold another owner (it was recovered
 * and taken again in between), it is put back.
 */
function claimStaleLock(lockDir: string, dead: Owner): boolean {
  const claimed = lockDir + suffix('stale');
  try {
    renameSync(lockDir, claimed);
  } catch {
    return false;
  }
  const owner = readOwner(claimed);
  if (owner && (owner.pid !== dead.pid || owner.startedAt !== dead.startedAt)) {
    try {
      renameSync(claimed, lockDir);
    } catch {
      // the lock was taken a third time meanwhile: that one stands, the claimed one was already replaced
    }
    return false;
  }
  rmSync(claimed, { recursive: true, force: true });
  return true;
}

/** Takes the workspace lock; returns its release function. Fails with a clear message when it is held. */
export async function lockWorkspace(workspace: string): Promise<() => Promise<void>> {
  const { default: lockfile } = await import('proper-lockfile');
  const dirs = runnerDirs(workspace);
  const owner: Owner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(2).join(' ') };
  const options = {
    lockfilePath: dirs.lock,
    stale: 30_000,
    update: 10_000,
    retries: 0,
    realpath: false,
    fs: lockFs(owner),
    onCompromised: (cause: Error) => process.stderr.write(`warning: the workspace lock was taken over (${cause.message})\n`),
  };
  for (let attempt = 0; ; attempt++) {
    let release: () => Promise<void>;
    try {
      mkdirSync(dirs.root, { recursive: true });
      release = await lockfile.lock(dirs.root, options);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ELOCKED') fail(`cannot take the workspace lock ${displayPath(dirs.lock)}: ${whyNot(cause)}`);
      const holder = readOwner(dirs.lock);
      // The owner was killed (kill -9 leaves the lock behind): recover it now rather than after 30 s.
      if (attempt < 3 && holder && holder.host === hostname() && !processAlive(holder.pid) && claimStaleLock(dirs.lock, holder)) continue;
      const who = holder ? ` (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}: runner ${holder.command})` : '';
      fail(`another runner is using this workspace${who}; wait for it to finish (lock: ${dirs.lock})`);
    }
    try {
      sweepLockLeftovers(dirs.lock);
      sweepRestoreTemps(workspace, dirs.restoreLedgers, processAlive);
    } catch (cause) {
      process.stderr.write(`warning: could not sweep what an earlier runner left: ${whyNot(cause)}\n`);
    }
    return release;
  }
}
