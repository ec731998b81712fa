// One stage through the run loop, a small state machine:
//   fingerprint -> fresh? (done) -> restorable? (restore, record) -> run (delete outs, spawn, check outs)
//   -> save (store outs, run-cache record, lock entry).
// The order of the last step is the crash-safety argument: objects land in the store first, then the
// run-cache record that names them, then the lock entry; each write is atomic, so a kill at any moment leaves
// at worst a stage that runs (or is restored) again, never one recorded as done that did not finish.
import { lstatSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assertInsideWorkspace, OutsideWorkspaceError } from '../cache/safe-path.js';
import type { LockEntry, PathHash, RunRecord } from '../cache/types.js';
import type { StageJob, Executor } from './executors/executor.js';
import { EventsTail, type StageEvent } from './events.js';
import type { Failure } from './failure.js';
import { assess, cachedOuts, readMetrics, type PlanContext } from './plan.js';
import type { StageSpec } from './spec/pipeline.js';
import { describeReasons } from './stale-reason.js';
import { runnerDirs } from './workspace.js';

export type StageStatus = 'ran' | 'restored' | 'fresh' | 'failed' | 'skipped';

export interface StageResult {
  status: StageStatus;
  durationMs: number;
  failure?: Failure;
  /** Why it ran (the stale reasons), for the summary. */
  reasons?: string[];
  attempts?: number;
  logFile?: string;
}

export interface StageRunHooks {
  /** The stage is about to spawn (after fresh/restore were ruled out). */
  starting(stage: string, reasons: string[]): void;
  event(stage: string, event: StageEvent): void;
  /** A lock entry is ready to be recorded (the caller batches writes). */
  record(stage: string, entry: LockEntry): void;
  /** The remote cache (runner/commands/remote.ts): asked on a local miss, told what ran or was restored. */
  remote?: { restorable(key: LockEntry['key'], outs: string[]): Promise<RemoteHit | undefined>; saved(record: RunRecord): void };
}

/**
 * A run record the remote had, its objects now in the store: `restore` puts its outs in the workspace (some
 * built already from their download's stream: cache/remote/restore-outs.ts; what it does not restore, it
 * discards).
 */
export interface RemoteHit {
  record: RunRecord;
  restore(): Promise<unknown>;
}

/** File names for a stage: `@`, `=` and `,` of foreach/matrix names are fine, anything path-like is escaped. */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9_.@=,+-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export class StageRun {
  private readonly started = performance.now();
  private readonly dirs;
  readonly logFile: string;

  constructor(
    private readonly ctx: PlanContext,
    private readonly stage: StageSpec,
    private readonly executor: Executor,
    private readonly signal: AbortSignal,
    private readonly hooks: StageRunHooks,
    private readonly force: boolean,
  ) {
    this.dirs = runnerDirs(ctx.pipeline.workspace);
    this.logFile = join(this.dirs.logs, `${fileSafe(stage.name)}.log`);
  }

  private elapsed(): number {
    return performance.now() - this.started;
  }

  private failed(failure: Failure, extra: Partial<StageResult> = {}): StageResult {
    return { status: 'failed', durationMs: this.elapsed(), failure, ...extra };
  }

  /** `release` is called once the stage's process has ended: what is left (caching its outs) needs no slot. */
  async execute(release: () => void = () => {}): Promise<StageResult> {
    const assessment = await assess(this.ctx, this.stage, { forced: this.force });
    const print = assessment.fingerprint;
    if (!print.ok) return this.failed({ reason: 'missing-dependency', path: print.missingDep });
    if (assessment.verdict === 'fresh') return { status: 'fresh', durationMs: this.elapsed() };
    const unsafe = this.outLeavingWorkspace();
    if (unsafe) return this.failed({ reason: 'unsafe-path', message: unsafe });
    const reasons = describeReasons(assessment.reasons);
    const entry = (outs: PathHash[]): LockEntry => ({ key: print.key, cmd: this.stage.cmd, deps: print.deps, params: this.stage.params, outs, ...(print.code ? { code: print.code } : {}) });
    // A local run-cache hit first; on a miss (not forced), the remote cache's record where there is one.
    const local = assessment.verdict === 'restore' ? assessment.restorable : undefined;
    const remote = local || this.force ? undefined : await this.hooks.remote?.restorable(print.key, cachedOuts(this.stage));
    const restorable = local ?? remote?.record;
    if (restorable) {
      try {
        if (remote) await remote.restore();
        else await this.restore(restorable);
        this.hooks.record(this.stage.name, entry(restorable.outs));
        this.hooks.remote?.saved(restorable);
        return { status: 'restored', durationMs: this.elapsed(), reasons };
      } catch (cause) {
        // An object vanished since has() looked, or was damaged (the store removed it): say so, and run.
        process.stderr.write(`warning: stage ${this.stage.name}: not restored from the cache: ${firstLine(cause)}; running it instead\n`);
      }
    }
    this.hooks.starting(this.stage.name, reasons);
    const outcome = await this.runWithRetries();
    release();
    if (outcome.failure) return this.failed(outcome.failure, { reasons, attempts: outcome.attempts, logFile: this.logFile });
    const missing = cachedOuts(this.stage).find((out) => !this.exists(out));
    if (missing) return this.failed({ reason: 'missing-output', path: missing }, { reasons, logFile: this.logFile });
    try {
      const outs = await this.save(print.key, print.deps, outcome.durationMs, outcome.metrics);
      this.hooks.record(this.stage.name, entry(outs));
    } catch (cause) {
      return this.failed({ reason: 'cache-error', message: (cause as Error).message }, { reasons, logFile: this.logFile });
    }
    return { status: 'ran', durationMs: this.elapsed(), reasons, attempts: outcome.attempts, logFile: this.logFile };
  }

  private exists(relPath: string): boolean {
    try {
      // lstat: a dangling symlink out still counts as written (the store hashes its target text).
      return Boolean(lstatSync(join(this.ctx.pipeline.workspace, relPath)));
    } catch {
      return false;
    }
  }

  /** Why deleting or writing one of the outs would touch something outside the workspace (cache/safe-path.ts). */
  private outLeavingWorkspace(): string | undefined {
    for (const out of cachedOuts(this.stage)) {
      try {
        assertInsideWorkspace(this.ctx.pipeline.workspace, out);
      } catch (cause) {
        if (cause instanceof OutsideWorkspaceError) return `out ${cause.message}`;
        throw cause;
      }
    }
    return undefined;
  }

  private async restore(record: RunRecord): Promise<void> {
    for (const out of record.outs) await this.ctx.store.restore(this.ctx.pipeline.workspace, out, this.ctx.statCache);
  }

  /**
   * Outs are deleted first, so a stage always writes new files and never into a restored cache object.
   * Few syscalls per stage: at 1000 trivial stages, file creation is what the runner's own overhead is made of.
   */
  private prepare(attempt: number): StageJob {
    const { workspace } = this.ctx.pipeline;
    for (const out of cachedOuts(this.stage)) {
      const abs = join(workspace, out);
      rmSync(abs, { recursive: true, force: true });
      ensureDir(dirname(abs));
    }
    // One folder for every stage's events and params files: a folder per stage cost a mkdir per stage.
    const tmp = join(this.dirs.tmp, 'stages');
    ensureDir(tmp);
    ensureDir(this.dirs.logs);
    const base = join(tmp, fileSafe(this.stage.name));
    const eventsFile = `${base}.events.jsonl`;
    removeFile(eventsFile); // the stage creates it by appending
    if (attempt === 1) removeFile(this.logFile);
    const env = { ...baseEnv(workspace), ...this.stage.env };
    env['PATH'] = baseEnv(workspace)['PATH']!;
    // RUNNER_PARAMS only for stages that declare params (the contract makes it optional).
    if (Object.keys(this.stage.params).length > 0) {
      const paramsFile = `${base}.params.json`;
      writeFileSync(paramsFile, JSON.stringify(nestParams(this.stage.params), null, 2) + '\n');
      env['RUNNER_PARAMS'] = paramsFile;
    } else {
      delete env['RUNNER_PARAMS'];
    }
    env['RUNNER_EVENTS'] = eventsFile;
    env['RUNNER_STAGE'] = this.stage.name;
    const job: StageJob = {
      stage: this.stage.name, argv: this.stage.argv, shell: this.stage.shell, cwd: workspace, env,
      logFile: this.logFile, eventsFile, resources: this.stage.resources,
    };
    if (this.stage.timeoutMs !== undefined) job.timeoutMs = this.stage.timeoutMs;
    return job;
  }

  private async runWithRetries(): Promise<{ failure?: Failure; attempts: number; durationMs: number; metrics: Record<string, unknown> }> {
    const metrics: Record<string, unknown> = {};
    let attempts = 0;
    let last: Failure | undefined;
    let durationMs = 0;
    while (attempts <= this.stage.retries) {
      attempts++;
      // Again before each retry: a failed attempt may have turned an out's folder into a symlink.
      const unsafe = attempts > 1 ? this.outLeavingWorkspace() : undefined;
      if (unsafe) return { failure: { reason: 'unsafe-path', message: unsafe }, attempts, durationMs, metrics };
      const job = this.prepare(attempts);
      const tail = new EventsTail(job.eventsFile, (event) => {
        if (event.type === 'metric') Object.assign(metrics, event.values);
        this.hooks.event(this.stage.name, event);
      });
      tail.start();
      const outcome = await this.executor.run(job, this.signal);
      tail.stop();
      durationMs = outcome.durationMs;
      if (outcome.ok) return { attempts, durationMs, metrics };
      last = outcome.failure;
      if (last.reason === 'cancelled' || this.signal.aborted) break;
    }
    return { failure: last ?? { reason: 'cancelled' }, attempts, durationMs, metrics };
  }

  private async save(key: LockEntry['key'], deps: PathHash[], durationMs: number, eventMetrics: Record<string, unknown>): Promise<PathHash[]> {
    const { workspace } = this.ctx.pipeline;
    const outs: PathHash[] = [];
    for (const out of cachedOuts(this.stage)) outs.push(await this.ctx.store.save(workspace, out, this.ctx.statCache));
    const fileMetrics = readMetrics(workspace, this.stage) ?? {};
    const metrics = { ...fileMetrics, ...(Object.keys(eventMetrics).length ? { events: eventMetrics } : {}) };
    const record: RunRecord = {
      key, cmd: this.stage.cmd, deps, params: this.stage.params, outs, durationMs: Math.round(durationMs), createdAt: new Date().toISOString(),
    };
    if (Object.keys(metrics).length) record.metrics = metrics;
    this.ctx.runCache.put(record);
    this.hooks.remote?.saved(record);
    return outs;
  }
}

/** The environment every stage starts from: the runner's, with `<workspace>/node_modules/.bin` first on PATH. */
const baseEnvs = new Map<string, Record<string, string>>();
function baseEnv(workspace: string): Record<string, string> {
  let env = baseEnvs.get(workspace);
  if (!env) {
    // Reading process.env is slow (each key is a call into C++), so it is copied once per run, not per stage.
    env = {};
    for (const [name, value] of Object.entries(process.env)) if (value !== undefined) env[name] = value;
    env['PATH'] = [join(workspace, 'node_modules', '.bin'), process.env['PATH']].filter(Boolean).join(':');
    baseEnvs.set(workspace, env);
  }
  return env;
}

/** An error's message, first line only (a warning is one line). */
function firstLine(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).split('\n')[0]!;
}

/** Deletes a file if it is there (one syscall; rmSync with force stats first). */
function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Directories this process already made (a run creates the same few parents again and again). */
const madeDirs = new Set<string>();
function ensureDir(dir: string): void {
  if (madeDirs.has(dir)) return;
  mkdirSync(dir, { recursive: true });
  madeDirs.add(dir);
}

/** `{"train": {...}, "prep.size": 512}` -> `{"train": {...}, "prep": {"size": 512}}` (RUNNER_PARAMS shape). */
export function nestParams(declared: Record<string, unknown>): Record<string, unknown> {
  const nested: Record<string, unknown> = {};
  for (const [dotted, value] of Object.entries(declared)) {
    const parts = dotted.split('.');
    let node = nested;
    for (const part of parts.slice(0, -1)) {
      if (node[part] === null || typeof node[part] !== 'object') node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]!] = value;
  }
  return nested;
}
