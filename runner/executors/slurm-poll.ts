// Watching the run's Slurm jobs: ONE `squeue` call per interval for all of them (never one per job, never
// sacct, which needs the accounting daemon many clusters and our CI lack). A job is done when its exit-code
// file appears (the job script writes it last); a job that leaves the queue, or reaches an end state, without
// one was ended by Slurm, and `squeue --states=all` still names the state (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL…)
// for MinJobAge seconds after the end (300 by default).
import { readFileSync } from 'node:fs';
import { execa } from 'execa';

export type JobEnd =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'ended'; state: string; reason: string }
  | { kind: 'lost'; detail: string };

/** States in which a job will never run its script again. */
const FINAL_STATES = new Set([
  'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE',
  'SPECIAL_EXIT', 'REVOKED',
]);

/** Final states in which the script may well have written its exit code (only a slow filesystem hides it). */
const SCRIPT_FINISHED = new Set(['COMPLETED', 'FAILED']);

/**
 * Polls to wait for an exit-code file after the job left the queue: on NFS a file written on the compute
 * node can take a few seconds (attribute cache) to appear on the submit host.
 */
const GRACE_POLLS = 3;
/** squeue failing this many times in a row (controller down) fails the run's jobs instead of waiting forever. */
const MAX_FAILED_POLLS = 20;

export interface SqueueRow {
  state: string;
  reason: string;
}

/** `123_4|TIMEOUT|TimeLimit` lines -> id -> state and reason. */
export function parseSqueue(stdout: string): Map<string, SqueueRow> {
  const rows = new Map<string, SqueueRow>();
  for (const line of stdout.split('\n')) {
    const [id, state, ...reason] = line.trim().split('|');
    // squeue may decorate a state (`CANCELLED by 0`): the first word is the state.
    if (id && state) rows.set(id, { state: state.split(/\s+/)[0]!.toUpperCase(), reason: reason.join('|') });
  }
  return rows;
}

interface Watched {
  exitFile: string;
  /** Polls since the job was last seen in the queue in a live state. */
  gonePolls: number;
  lastRow?: SqueueRow;
  resolve(end: JobEnd): void;
}

function readExitCode(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

export class Poller {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private failedPolls = 0;
  /** squeue calls made (for tests and the benchmark). */
  polls = 0;

  constructor(private readonly intervalMs: number) {}

  watch(jobId: string, exitFile: string): Promise<JobEnd> {
    return new Promise((resolve) => {
      this.watched.set(jobId, { exitFile, gonePolls: 0, resolve });
      this.timer ??= setTimeout(() => void this.poll(), this.intervalMs);
    });
  }

  /** Stops watching (the job was cancelled); its promise never settles. */
  forget(jobId: string): void {
    this.watched.delete(jobId);
  }

  private settle(jobId: string, end: JobEnd): void {
    const entry = this.watched.get(jobId);
    this.watched.delete(jobId);
    entry?.resolve(end);
  }

  private async poll(): Promise<void> {
    const arrays = [...new Set([...this.watched.keys()].map((id) => id.split('_')[0]!))];
    if (arrays.length > 0) await this.pollOnce(arrays);
    this.timer = this.watched.size > 0 ? setTimeout(() => void this.poll(), this.intervalMs) : undefined;
  }

  private async pollOnce(arrays: string[]): Promise<void> {
    this.polls++;
    const result = await execa('squeue', ['--noheader', '--array', '--states=all', `--jobs=${arrays.join(',')}`, '--format=%i|%T|%r'], {
      reject: false,
      stdin: 'ignore',
      cleanup: false,
    });
    let rows: Map<string, SqueueRow>;
    if (!result.failed) {
      rows = parseSqueue(result.stdout);
    } else if (/invalid job id/i.test(result.stderr)) {
      rows = new Map(); // every job asked about has left the controller's memory
    } else {
      if (++this.failedPolls >= MAX_FAILED_POLLS) {
        const detail = `squeue failed ${this.failedPolls} times in a row: ${(result.stderr || result.shortMessage || '').trim()}`;
        for (const id of [...this.watched.keys()]) this.settle(id, { kind: 'lost', detail });
      }
      return;
    }
    this.failedPolls = 0;
    for (const [id, entry] of [...this.watched]) {
      const exitCode = readExitCode(entry.exitFile);
      const row = rows.get(id);
      if (exitCode !== undefined) {
        // A non-zero code may come from Slurm killing the stage (scancel, time limit): the job script outlives
        // its stage by a moment and writes 143. Its final state says which; until it has one, wait.
        if (exitCode === 0 || !row || SCRIPT_FINISHED.has(row.state)) this.settle(id, { kind: 'exited', exitCode });
        else if (FINAL_STATES.has(row.state)) this.settle(id, { kind: 'ended', state: row.state, reason: row.reason });
        continue;
      }
      if (row && !FINAL_STATES.has(row.state)) {
        entry.gonePolls = 0;
        continue;
      }
      if (row) entry.lastRow = row;
      if (row && !SCRIPT_FINISHED.has(row.state)) {
        this.settle(id, { kind: 'ended', state: row.state, reason: row.reason });
      } else if (++entry.gonePolls > GRACE_POLLS) {
        const seen = entry.lastRow ? ` (last seen ${entry.lastRow.state}${entry.lastRow.reason && entry.lastRow.reason !== 'None' ? `, ${entry.lastRow.reason}` : ''})` : '';
        this.settle(id, { kind: 'lost', detail: `the job left the queue without writing its exit code${seen}` });
      }
    }
  }
}
