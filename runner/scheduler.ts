// Runs stages in graph order: a stage starts when all its upstream stages succeeded, up to `jobs` at once
// (a counter of -j places) and within the machine's cpu/gpu/memory tokens. A failure skips everything downstream of it;
// without keepGoing nothing new starts after a failure (running stages finish).
import { availableParallelism, totalmem } from 'node:os';
import type { Resources } from './spec/pipeline.js';
import type { StageResult } from './stage-run.js';

export interface SchedulerOptions {
  jobs: number;
  keepGoing: boolean;
  capacity: Resources;
  signal: AbortSignal;
}

export type SchedulerEvent = { type: 'finished'; stage: string; result: StageResult };

/** The machine's tokens: cpus, gpus (RUNNER_GPUS, else none), memory. */
export function machineCapacity(): Resources {
  return { cpus: availableParallelism(), gpus: Number(process.env['RUNNER_GPUS'] ?? 0) || 0, memoryBytes: totalmem() };
}

/** A request larger than the machine is capped to the machine: such a stage then runs alone. */
function fit(request: Resources, capacity: Resources): Resources {
  return {
    cpus: Math.min(request.cpus, capacity.cpus),
    gpus: Math.min(request.gpus, capacity.gpus),
    memoryBytes: Math.min(request.memoryBytes, capacity.memoryBytes),
  };
}

export async function schedule(
  order: readonly string[],
  upstream: Readonly<Record<string, readonly string[]>>,
  resources: (stage: string) => Resources,
  /** Runs a stage; may call `release` once its process has ended, to free its slot before it is finished. */
  execute: (stage: string, release: () => void) => Promise<StageResult>,
  options: SchedulerOptions,
  onEvent: (event: SchedulerEvent) => void,
): Promise<Map<string, StageResult>> {
  const results = new Map<string, StageResult>();
  const position = new Map(order.map((stage, i) => [stage, i]));
  const downstream = new Map<string, string[]>(order.map((stage) => [stage, []]));
  const blockers = new Map<string, number>(); // upstream stages (in this run) not finished yet
  for (const stage of order) {
    const ups = (upstream[stage] ?? []).filter((u) => position.has(u));
    blockers.set(stage, ups.length);
    for (const u of ups) downstream.get(u)!.push(stage);
  }
  let ready = order.filter((stage) => blockers.get(stage) === 0);
  // Sorted by graph order only when stages were added: with 1000 ready stages, sorting on every pump was
  // a million comparisons per run.
  let readySorted = true;
  const slots = Math.max(1, options.jobs);
  const used: Resources = { cpus: 0, gpus: 0, memoryBytes: 0 };
  let running = 0;
  let stopAfter: string | undefined;

  const finish = (stage: string, result: StageResult): void => {
    results.set(stage, result);
    onEvent({ type: 'finished', stage, result });
    const ok = result.status !== 'failed' && result.status !== 'skipped';
    for (const next of downstream.get(stage)!) {
      if (results.has(next)) continue;
      if (!ok) {
        // A stage skipped for the run's stop passes its own reason on; a failed one is named.
        const failure = result.status === 'skipped' && result.failure?.reason !== 'dependency-failed' ? result.failure! : { reason: 'dependency-failed' as const, dependency: result.failure?.reason === 'dependency-failed' ? result.failure.dependency : stage };
        finish(next, { status: 'skipped', durationMs: 0, failure });
        continue;
      }
      const left = blockers.get(next)! - 1;
      blockers.set(next, left);
      if (left === 0) {
        ready.push(next);
        readySorted = false;
      }
    }
  };

  return new Promise((resolve, reject) => {
    const pump = (): void => {
      if (stopAfter !== undefined || options.signal.aborted) {
        for (const stage of order) {
          if (results.has(stage) || isRunning.has(stage)) continue;
          finish(stage, { status: 'skipped', durationMs: 0, failure: options.signal.aborted ? { reason: 'cancelled' } : { reason: 'not-started', after: stopAfter! } });
        }
        ready = [];
      }
      if (!readySorted) ready.sort((a, b) => position.get(a)! - position.get(b)!);
      readySorted = true;
      for (let i = 0; i < ready.length && running < slots; i++) {
        const stage = ready[i]!;
        const need = fit(resources(stage), options.capacity);
        const fits =
          used.cpus + need.cpus <= options.capacity.cpus &&
          used.gpus + need.gpus <= options.capacity.gpus &&
          used.memoryBytes + need.memoryBytes <= options.capacity.memoryBytes;
        // Nothing running: start it even if it doesn't fit, or it would never run.
        if (!fits && running > 0) continue;
        ready.splice(i--, 1);
        running++;
        isRunning.add(stage);
        used.cpus += need.cpus;
        used.gpus += need.gpus;
        used.memoryBytes += need.memoryBytes;
        // The slot (a -j place, and the tokens) is held while the stage's process runs; StageRun gives it back
        // as soon as the process has ended, so the next stage starts while this one's outs are cached.
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          running--;
          used.cpus -= need.cpus;
          used.gpus -= need.gpus;
          used.memoryBytes -= need.memoryBytes;
        };
        execute(stage, () => {
          release();
          pump();
        }).then(
          (result) => {
            release();
            isRunning.delete(stage);
            if (result.status === 'failed' && !options.keepGoing && stopAfter === undefined) stopAfter = stage;
            finish(stage, result);
            pump();
          },
          (cause: Error) => reject(cause),
        );
      }
      if (isRunning.size === 0 && results.size === order.length) resolve(results);
    };
    const isRunning = new Set<string>();
    options.signal.addEventListener('abort', pump, { once: true });
    pump();
  });
}
