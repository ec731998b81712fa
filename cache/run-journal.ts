// Run-cache records appended to one journal file per process, instead of one new file per record.
//
// Why: on this disk (ext4 without a journal) creating a file costs ~1 ms for a minute after a mass delete,
// and a run of 1000 trivial stages created 1000 record files on the runner's own thread. A journal is one
// file per run; each record is one line, written with one write(2) on an O_APPEND descriptor.
//
// Crash safety: a line is `<sha256 of the JSON, hex> <JSON>\n` and is trusted only when it is complete (ends
// in a newline) and its checksum matches, so a kill in the middle of a write leaves a line that is ignored,
// never a half record. A complete line that fails its checksum is warned about and skipped.
//
// Layout: <runsDir>/journal/<time>-<pid>-<random>.open.jsonl while its process appends to it, renamed to
// .jsonl when the process exits. `compact` (on `runner gc`, and when a new journal finds many finished ones)
// moves the records of finished journals into the per-record layout of run-cache.ts and deletes them; a
// journal left .open by a killed process is compacted once it has not changed for a week.
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { RunRecord } from './types.js';

const OPEN_SUFFIX = '.open.jsonl';
const DONE_SUFFIX = '.jsonl';
/** A journal still .open after this long without a write belongs to a process that was killed. */
const ABANDONED_MS = 7 * 24 * 3600 * 1000;

function checksum(json: string): string {
  return createHash('sha256').update(json).digest('hex');
}

/** One journal line for `record` (its JSON has no newline: JSON.stringify escapes them). */
export function journalLine(record: RunRecord): string {
  const json = JSON.stringify(record);
  return `${checksum(json)} ${json}\n`;
}

/**
 * The values of the complete, intact lines of one journal's text, in order. `problem` is told about lines
 * that are complete but damaged; an unterminated last line is a write in progress or cut short, and is skipped.
 */
export function parseJournal(text: string, problem: (line: number, why: string) => void): { line: number; value: unknown }[] {
  const values: { line: number; value: unknown }[] = [];
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a line still being written
  lines.forEach((line, i) => {
    const space = line.indexOf(' ');
    const json = line.slice(space + 1);
    if (space !== 64 || checksum(json) !== line.slice(0, 64)) return problem(i + 1, 'checksum mismatch');
    try {
      values.push({ line: i + 1, value: JSON.parse(json) });
    } catch (error) {
      problem(i + 1, (error as Error).message);
    }
  });
  return values;
}

/** Journals this process has open, ended by one 'exit' handler (it runs on every normal end, process.exit() included; a kill leaves them .open, see above). */
const openJournals = new Set<RunJournal>();
process.once('exit', () => {
  for (const journal of [...openJournals]) journal.close();
});

export class RunJournal {
  readonly dir: string;
  private fd: number | undefined;
  private file: string | undefined;

  constructor(runsDir: string) {
    this.dir = join(runsDir, 'journal');
  }

  /** Appends one record's line (the journal is created by the first append of this process). */
  append(record: RunRecord): void {
    const line = journalLine(record);
    if (this.fd === undefined) this.open();
    writeSync(this.fd!, line);
  }

  /** Journal files, oldest first (names start with the time they were opened). */
  files(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((name) => name.endsWith(DONE_SUFFIX)).sort().map((name) => join(this.dir, name));
  }

  /** Journals whose process has finished (or was killed long ago): those `compact` may fold and delete. */
  finished(now = Date.now()): string[] {
    return this.files().filter((file) => {
      if (file === this.file) return false;
      if (!file.endsWith(OPEN_SUFFIX)) return true;
      const mtime = statSync(file, { throwIfNoEntry: false })?.mtimeMs;
      return mtime !== undefined && now - mtime > ABANDONED_MS;
    });
  }

  /** Ends this process's journal: renamed to .jsonl, so a later compaction may fold it. */
  close(): void {
    if (this.fd === undefined || this.file === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    openJournals.delete(this);
    try {
      renameSync(this.file, this.file.slice(0, -OPEN_SUFFIX.length) + DONE_SUFFIX);
    } catch {
      // Already compacted away as abandoned: its records are in the per-record layout.
    }
    this.file = undefined;
  }

  private open(): void {
    mkdirSync(this.dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    this.file = join(this.dir, `${stamp}-${process.pid}-${randomBytes(4).toString('hex')}${OPEN_SUFFIX}`);
    this.fd = openSync(this.file, 'a');
    openJournals.add(this);
  }
}

/** Reads one journal's text; undefined when it has gone (compacted by another process). */
export function readJournal(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Deletes a compacted journal (already gone is fine: another process compacted it too). */
export function removeJournal(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
