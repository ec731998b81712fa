// Where a stage's process runs. The local executor spawns it here; a Slurm (or other) executor will submit
// it elsewhere. So the interface carries no local assumptions: the executor owns starting, killing and
// cancelling; the job names files (log, events, params) that a shared filesystem makes visible to both sides;
// the scheduler reads progress from the events file, never from the process.
import type { Failure } from '../failure.js';
import type { Resources } from '../spec/pipeline.js';

export interface StageJob {
  stage: string;
  /** argv[0] is the program; for a shell stage, [script]. Never joined into a shell string by the runner. */
  argv: string[];
  shell: boolean;
  cwd: string;
  /** The complete environment of the process. */
  env: Record<string, string>;
  /** stdout and stderr go here (appended). */
  logFile: string;
  eventsFile: string;
  resources: Resources;
  timeoutMs?: number;
}

export type ExecFailure = Extract<Failure, { reason: 'exit-non-zero' | 'killed' | 'timeout' | 'spawn-failed' | 'disk-full' | 'cancelled' | 'job-killed' }>;

/** `logError`: the process ran but its output could not be written to its log (the outcome is still its exit). */
export type StageOutcome =
  | { ok: true; durationMs: number; logError?: string }
  | { ok: false; durationMs: number; failure: ExecFailure; logError?: string };

export interface Executor {
  readonly name: string;
  /** Runs the job to completion; aborting `signal` cancels it (the executor kills what it started). */
  run(job: StageJob, signal: AbortSignal): Promise<StageOutcome>;
}
