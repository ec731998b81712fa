// Submission to Slurm, gentle on the controller: stages that become ready within a short window are collected,
// grouped by identical sbatch options, and each group goes in as ONE job array (`sbatch --array=0-N`), at most
// `arraySize` stages per array; sbatch calls run one at a time and at most `rate` per second. A 1,000-stage
// fan-out with one set of resources is therefore a single sbatch call, not 1,000.
// Every Slurm command runs with execa's `cleanup: false`: cleanup installs signal-exit, which re-raises a
// Ctrl-C after the runner's own handler ran, killing the runner before it can scancel and exit 130.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { StageJob } from './executor.js';
import { removeBatchDir } from './slurm-batch-dir.js';
import { batchFiles, writeBatch, type BatchFiles } from './slurm-script.js';

/** How long the first ready stage waits for others to join its array. */
export const SUBMIT_WINDOW_MS = 200;

export type SubmitResult = { ok: true; jobId: string; exitFile: string; batch: Batch } | { ok: false; message: string };

/** One submitted array; its directory goes when every task in it is done with. */
export class Batch {
  private open: number;
  constructor(readonly files: BatchFiles, size: number) {
    this.open = size;
  }
  /** A task's outcome is known (or it was cancelled): the last one removes the batch's files. */
  release(): void {
    if (--this.open === 0) removeBatchDir(this.files.dir);
  }
}

interface Pending {
  job: StageJob;
  /** sbatch options for this stage (resources, partition, …); equal options share an array. */
  options: string[];
  withdrawn: boolean;
  resolve(result: SubmitResult): void;
}

export interface Ticket {
  result: Promise<SubmitResult>;
  /** Takes the stage back if it has not gone to sbatch yet (its result is then `{ok: false}`). */
  withdraw(): void;
}

export class Submitter {
  private pending: Pending[] = [];
  private flushing = false;
  private nextCallAt = 0;
  private batches = 0;

  constructor(
    private readonly tmpDir: string,
    private readonly rate: number,
    private readonly arraySize: number,
    private readonly windowMs = SUBMIT_WINDOW_MS,
  ) {}

  submit(job: StageJob, options: string[]): Ticket {
    let entry!: Pending;
    const result = new Promise<SubmitResult>((resolve) => {
      entry = { job, options, withdrawn: false, resolve };
    });
    this.pending.push(entry);
    if (!this.flushing) {
      this.flushing = true;
      setTimeout(() => void this.flush(), this.windowMs);
    }
    return {
      result,
      withdraw: () => {
        if (this.pending.includes(entry)) {
          entry.withdrawn = true;
          entry.resolve({ ok: false, message: 'withdrawn before submission' });
        }
      },
    };
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const taken = this.pending.filter((p) => !p.withdrawn);
      this.pending = [];
      const groups = new Map<string, Pending[]>();
      for (const entry of taken) {
        const key = JSON.stringify([entry.job.cwd, entry.options]);
        const group = groups.get(key) ?? [];
        group.push(entry);
        groups.set(key, group);
      }
      for (const group of groups.values()) {
        for (let start = 0; start < group.length; start += this.arraySize) {
          // Stages withdrawn while earlier arrays were being submitted stay out.
          const chunk = group.slice(start, start + this.arraySize).filter((p) => !p.withdrawn);
          if (chunk.length) await this.submitArray(chunk);
        }
      }
    }
    this.flushing = false;
  }

  private async submitArray(chunk: Pending[]): Promise<void> {
    const wait = this.nextCallAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.nextCallAt = Date.now() + 1000 / this.rate;
    const files = batchFiles(join(this.tmpDir, `${process.pid}-${Date.now().toString(36)}-${++this.batches}`));
    const jobs = chunk.map((p) => p.job);
    const first = jobs[0]!;
    let message: string;
    try {
      writeBatch(files, jobs);
      const argv = [
        '--parsable',
        `--array=0-${jobs.length - 1}`,
        `--job-name=runner:${first.stage}${jobs.length > 1 ? `+${jobs.length - 1}` : ''}`,
        `--output=${files.outputPattern}`,
        '--open-mode=append',
        `--chdir=${first.cwd}`,
        ...chunk[0]!.options,
        files.arrayScript,
      ];
      const result = await execa('sbatch', argv, { reject: false, stdin: 'ignore', cleanup: false });
      const jobId = /^(\d+)(;|$)/.exec(result.stdout.trim())?.[1];
      if (!result.failed && jobId) {
        const batch = new Batch(files, chunk.length);
        chunk.forEach((p, index) => p.resolve({ ok: true, jobId: `${jobId}_${index}`, exitFile: files.exitFile(index), batch }));
        return;
      }
      const cause = result.cause as NodeJS.ErrnoException | undefined;
      message = cause?.code === 'ENOENT'
        ? 'sbatch not found: is Slurm installed here and on PATH?'
        : `sbatch failed (exit ${result.exitCode ?? '?'}): ${(result.stderr || result.stdout).trim() || 'no output'}`;
    } catch (cause) {
      message = `could not write the job files in ${files.dir}: ${(cause as Error).message}`;
    }
    rmSync(files.dir, { recursive: true, force: true });
    for (const p of chunk) p.resolve({ ok: false, message });
  }
}

/** `scancel` for ids collected within one tick: a Ctrl-C cancelling 500 jobs is one call. */
export class Canceller {
  private ids: string[] = [];
  private call: Promise<void> | undefined;

  cancel(jobId: string): Promise<void> {
    this.ids.push(jobId);
    this.call ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const ids = this.ids;
      this.ids = [];
      this.call = undefined;
      // Best effort: a job that already left the queue makes scancel complain, which changes nothing.
      await execa('scancel', ids, { reject: false, stdin: 'ignore', cleanup: false });
    });
    return this.call;
  }
}
