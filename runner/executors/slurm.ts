// Runs stages as Slurm jobs: the cluster's scheduler decides where and when, the runner keeps everything else
// (fingerprints, cache, run-cache, lock file, events). Needs the workspace on a filesystem the compute nodes
// share: the job scripts, the logs, the events files and the exit codes all travel through it.
//
//   run(job) -> Submitter (batched into job arrays, rate-limited sbatch) -> Poller (one squeue per interval)
//            -> exit-code file, or the Slurm state that ended the job; an abort -> Canceller (scancel)
//
// Stage resources map to sbatch: cpus -> --cpus-per-task, memory -> --mem, gpus -> --gres=gpu:N,
// timeout -> --time (whole minutes, Slurm's granularity; `slurm.time` for stages without one).
import { appendFileSync } from 'node:fs';
import type { Pipeline, SlurmSettings, StageSpec } from '../spec/pipeline.js';
import { parseDuration } from '../spec/units.js';
import { runnerDirs } from '../workspace.js';
import type { ExecFailure, Executor, StageJob, StageOutcome } from './executor.js';
import { sweepBatchDirs } from './slurm-batch-dir.js';
import { Poller, type JobEnd } from './slurm-poll.js';
import { Canceller, Submitter } from './slurm-submit.js';

export const DEFAULT_POLL_MS = 5000;
export const DEFAULT_SUBMIT_RATE = 2;
/** Slurm's default MaxArraySize is 1001 (indices 0-1000). */
export const DEFAULT_ARRAY_SIZE = 1000;

/** What Slurm's end states mean, for the failure message. */
const STATE_MEANING: Record<string, string> = {
  TIMEOUT: 'it reached its time limit (sbatch --time, from the stage\'s timeout or slurm.time)',
  OUT_OF_MEMORY: 'it used more memory than it asked for (sbatch --mem, from resources.memory)',
  NODE_FAIL: 'its node failed',
  CANCELLED: 'it was cancelled outside the runner (scancel or an administrator)',
  PREEMPTED: 'it was preempted by a higher-priority job',
  BOOT_FAIL: 'its node failed to boot',
  DEADLINE: 'it missed its deadline',
  FAILED: 'the job script failed before the stage could run',
};

export function describeEnd(state: string, reason: string): string {
  const meaning = STATE_MEANING[state] ?? 'Slurm ended it';
  return reason && reason !== 'None' ? `${meaning} [Slurm reason: ${reason}]` : meaning;
}

/** Whole minutes, at least one: `--time=90` for 1h30m. */
export function slurmMinutes(ms: number): number {
  return Math.max(1, Math.ceil(ms / 60_000));
}

/** The sbatch options of one stage. Later options win in sbatch, so `args` can override any of these. */
export function sbatchOptions(job: StageJob, settings: SlurmSettings): string[] {
  const options: string[] = [];
  if (settings.partition) options.push(`--partition=${settings.partition}`);
  if (settings.account) options.push(`--account=${settings.account}`);
  const timeMs = job.timeoutMs ?? (settings.time !== undefined ? parseDuration(settings.time) : undefined);
  if (timeMs !== undefined) options.push(`--time=${slurmMinutes(timeMs)}`);
  const { cpus, gpus, memoryBytes } = job.resources;
  if (cpus > 0) options.push(`--cpus-per-task=${Math.ceil(cpus)}`);
  if (memoryBytes > 0) options.push(`--mem=${Math.ceil(memoryBytes / 2 ** 20)}M`);
  if (gpus > 0) options.push(`--gres=gpu:${gpus}`);
  options.push(...(settings.args ?? []));
  return options;
}

/** Command line over stage over pipeline; `args` add up in that order (so the command line's come last). */
export function mergeSettings(pipeline: SlurmSettings = {}, stage: SlurmSettings = {}, cli: SlurmSettings = {}): SlurmSettings {
  const merged: SlurmSettings = { ...pipeline, ...stage, ...cli };
  merged.args = [...(pipeline.args ?? []), ...(stage.args ?? []), ...(cli.args ?? [])];
  return merged;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  private readonly submitter: Submitter;
  private readonly poller: Poller;
  private readonly canceller = new Canceller();

  constructor(
    tmpDir: string,
    private readonly settingsOf: (stage: string) => SlurmSettings,
    executorSettings: SlurmSettings,
  ) {
    const poll = executorSettings.poll !== undefined ? parseDuration(executorSettings.poll) : undefined;
    this.poller = new Poller(Math.max(50, poll ?? DEFAULT_POLL_MS));
    sweepBatchDirs(tmpDir);
    this.submitter = new Submitter(tmpDir, executorSettings.submitRate ?? DEFAULT_SUBMIT_RATE, executorSettings.arraySize ?? DEFAULT_ARRAY_SIZE);
  }

  static forPipeline(pipeline: Pipeline | undefined, cli: SlurmSettings): SlurmExecutor {
    if (!pipeline) throw new Error('the slurm executor needs the pipeline (for its workspace and slurm settings)');
    const stages = new Map<string, StageSpec>(pipeline.stages.map((s) => [s.name, s]));
    return new SlurmExecutor(
      `${runnerDirs(pipeline.workspace).tmp}/slurm`,
      (stage) => mergeSettings(pipeline.slurm, stages.get(stage)?.slurm, cli),
      mergeSettings(pipeline.slurm, {}, cli),
    );
  }

  /** squeue calls made so far. */
  get polls(): number {
    return this.poller.polls;
  }

  async run(job: StageJob, signal: AbortSignal): Promise<StageOutcome> {
    const started = performance.now();
    const outcome = (failure?: ExecFailure): StageOutcome =>
      failure ? { ok: false, durationMs: performance.now() - started, failure } : { ok: true, durationMs: performance.now() - started };
    if (signal.aborted) return outcome({ reason: 'cancelled' });
    appendFileSync(job.logFile, `$ ${job.shell ? `/bin/sh -c ${JSON.stringify(job.argv[0])}` : job.argv.map((a) => JSON.stringify(a)).join(' ')}\n`);

    let onAbort!: () => void;
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const ticket = this.submitter.submit(job, sbatchOptions(job, this.settingsOf(job.stage)));
      const submitted = await Promise.race([ticket.result, aborted]);
      if (submitted === 'aborted') {
        ticket.withdraw();
        // Already on its way to sbatch: wait for the id, then cancel the job, so none outlives the run.
        const late = await ticket.result;
        if (late.ok) {
          await this.canceller.cancel(late.jobId);
          late.batch.release();
        }
        return outcome({ reason: 'cancelled' });
      }
      if (!submitted.ok) return outcome({ reason: 'spawn-failed', message: submitted.message });
      const { jobId, exitFile, batch } = submitted;
      const end = await Promise.race([this.poller.watch(jobId, exitFile), aborted]);
      if (end === 'aborted') {
        this.poller.forget(jobId);
        await this.canceller.cancel(jobId);
        batch.release();
        return outcome({ reason: 'cancelled' });
      }
      batch.release();
      const failure = this.failureOf(jobId, end);
      if (failure?.reason === 'job-killed') appendFileSync(job.logFile, `runner: Slurm job ${jobId} ended ${failure.state}: ${failure.detail}\n`);
      return outcome(failure);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private failureOf(jobId: string, end: JobEnd): ExecFailure | undefined {
    switch (end.kind) {
      case 'exited':
        return end.exitCode === 0 ? undefined : { reason: 'exit-non-zero', exitCode: end.exitCode };
      case 'ended':
        return { reason: 'job-killed', scheduler: 'Slurm', jobId, state: end.state, detail: describeEnd(end.state, end.reason) };
      case 'lost':
        return { reason: 'job-killed', scheduler: 'Slurm', jobId, state: 'UNKNOWN', detail: end.detail };
    }
  }
}
