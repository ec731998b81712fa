// The temp siblings of restores, found again after a kill. A restore builds each path at
// `.<name>.restore-<pid>-<8 hex>` beside its target and renames it over the target (`RestoreSite`, shared by
// the store's restore and the streamed one); a kill -9 in between leaves that sibling in the workspace. Rather than search the workspace for them, a restoring process first
// appends each temp's workspace-relative path to its ledger, `<ledgerDir>/<pid>-<8 hex>.txt` (one file per
// process, opened at its first restore, deleted when it exits). `sweepRestoreTemps` reads the ledgers of dead
// processes, deletes the temps they name, then the ledgers: the runner calls it once it holds the workspace
// lock (no other runner can be restoring then), and `runner gc` calls it too.
//
// A ledger is input like any other file: a line is acted on only when it is a normalised workspace path whose
// name is a restore temp of the ledger's own pid, and whose parent folders stay inside the workspace.
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { assertInsideWorkspace } from './safe-path.js';

const TEMP_NAME = /^\..+\.restore-(\d+)-[0-9a-f]{8}$/;
const LEDGER_NAME = /^(\d+)-[0-9a-f]{8}\.txt$/;

/** The temp sibling's name for a restore of `name` by this process. */
export function restoreTempName(name: string): string {
  return `.${name}.restore-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Where one restore builds its path: the temp sibling of `target`, listed in the ledger before it exists.
 * `commit` puts it in the target's place; `discard` removes it (and whatever was built in it).
 */
export class RestoreSite {
  readonly target: string;
  readonly tmp: string;

  /** `path`: normalised and workspace-relative; its parent folders must stay inside the workspace (checked here). */
  constructor(workspace: string, readonly path: string, ledger: RestoreLedger | undefined) {
    assertInsideWorkspace(workspace, path);
    this.target = resolve(workspace, path);
    mkdirSync(dirname(this.target), { recursive: true });
    const tempName = restoreTempName(basename(this.target));
    this.tmp = join(dirname(this.target), tempName);
    ledger?.note(path.includes('/') ? `${path.slice(0, path.lastIndexOf('/'))}/${tempName}` : tempName);
  }

  /** Makes the temp a folder with every folder the manifest's files need. */
  makeFolders(manifest: readonly { path: string }[]): void {
    for (const dir of this.folders(manifest)) mkdirSync(dir);
  }

  /**
   * The temp and every folder the manifest's files need, each once, a parent before its children. The paths
   * are a checked manifest's (normalised, relative: cache/manifest.ts), so plain string operations suffice.
   */
  folders(manifest: readonly { path: string }[]): string[] {
    const made = new Set(['']);
    const order = [this.tmp];
    let last = '';
    for (const file of manifest) {
      const dir = parentOf(file.path);
      if (dir !== last) addFolder((last = dir), made, order, this.tmp);
    }
    return order;
  }

  commit(): void {
    rmSync(this.target, { recursive: true, force: true });
    renameSync(this.tmp, this.target);
  }

  discard(): void {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** A relative path's folder ('' for the top). */
function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** Adds a folder (relative to `root`) after whichever of its parents `made` lacks. */
function addFolder(dir: string, made: Set<string>, order: string[], root: string): void {
  if (made.has(dir)) return;
  addFolder(parentOf(dir), made, order, root);
  made.add(dir);
  order.push(`${root}/${dir}`);
}

/** Ledgers this process has open, deleted by one 'exit' handler (a kill leaves them for the sweep). */
const openLedgers = new Set<RestoreLedger>();
process.once('exit', () => {
  for (const ledger of [...openLedgers]) ledger.close();
});

/** One process's list of the restore temps it created in one workspace. */
export class RestoreLedger {
  private fd: number | undefined;
  private file: string | undefined;

  constructor(readonly dir: string) {}

  /** Records a temp path (workspace-relative) before it is created. */
  note(relTemp: string): void {
    if (this.fd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.file = join(this.dir, `${process.pid}-${randomBytes(4).toString('hex')}.txt`);
      this.fd = openSync(this.file, 'a');
      openLedgers.add(this);
    }
    writeSync(this.fd, relTemp + '\n');
  }

  /** Every temp it names is gone by now (renamed into place or removed): the ledger goes too. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    openLedgers.delete(this);
    try {
      unlinkSync(this.file!);
    } catch {
      // already swept, or the folder is gone
    }
  }
}

/**
 * Deletes the restore temps named by the ledgers of dead processes (`isAlive` says which pids are alive), then
 * those ledgers; returns how many temps it removed. A ledger of a live process is left alone.
 */
export function sweepRestoreTemps(workspace: string, ledgerDir: string, isAlive: (pid: number) => boolean): number {
  let names: string[];
  try {
    names = readdirSync(ledgerDir);
  } catch {
    return 0; // no restore ever ran here
  }
  let removed = 0;
  for (const name of names) {
    const pid = LEDGER_NAME.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    const ledger = join(ledgerDir, name);
    let text = '';
    try {
      text = readFileSync(ledger, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!isTempOf(line, pid)) continue;
      try {
        assertInsideWorkspace(workspace, line);
      } catch {
        continue; // a parent folder now leads elsewhere: not the runner's to delete
      }
      const abs = join(workspace, line);
      if (!lstatSync(abs, { throwIfNoEntry: false })) continue; // renamed into place before the kill
      rmSync(abs, { recursive: true, force: true });
      removed++;
    }
    rmSync(ledger, { force: true });
  }
  return removed;
}

/** A normalised workspace path whose last component is a restore temp of process `pid`. */
function isTempOf(line: string, pid: string): boolean {
  if (line === '' || line.startsWith('/') || line.split('/').some((s) => s === '' || s === '.' || s === '..')) return false;
  return TEMP_NAME.exec(basename(line))?.[1] === pid;
}
