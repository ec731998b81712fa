// Per stage: fresh, or stale with specific reasons, and whether the run-cache can restore it. Computed from
// the stage's fingerprint (declared params, dep hashes via the stat cache, argv, env) and its lock entry.
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CONTRACT_VERSION, stageKey } from '../cache/fingerprint.js';
import { hashPath, MissingPathError } from '../cache/hash.js';
import type { RunCache } from '../cache/run-cache.js';
import type { StatCache } from '../cache/stat-cache.js';
import type { Store } from '../cache/store.js';
import type { ContentHash, LockEntry, PathHash, RunRecord, StageKey } from '../cache/types.js';
import type { Pipeline, StageSpec } from './spec/pipeline.js';

export interface PlanContext {
  pipeline: Pipeline;
  store: Store;
  runCache: RunCache;
  statCache: StatCache;
  /** The lock file's entries, kept current in memory by the run. */
  lock: Record<string, LockEntry>;
  /**
   * Hashes already taken in this pass, by path. Only for read-only passes (status, dry run), where a path that
   * is one stage's out and the next one's dep (a chain) is then looked at once; a run changes files as it goes.
   */
  hashMemo?: Map<string, PathHash>;
}

/** hashPath through the pass's memo, when it has one. */
async function hashOnce(ctx: PlanContext, path: string): Promise<PathHash> {
  const known = ctx.hashMemo?.get(path);
  if (known) return known;
  const hashed = await hashPath(ctx.pipeline.workspace, path, ctx.statCache);
  ctx.hashMemo?.set(path, hashed);
  return hashed;
}

export type Fingerprint = { ok: true; key: StageKey; deps: PathHash[] } | { ok: false; missingDep: string };

export interface Assessment {
  fresh: boolean;
  reasons: string[];
  fingerprint: Fingerprint;
  /** The run-cache record that can restore this stage's outs, when there is one and its objects are all there. */
  restorable?: RunRecord;
}

/** Stage outs as the cache sees them: declared outs and metrics files. */
export function cachedOuts(stage: StageSpec): string[] {
  return [...stage.outs, ...stage.metrics];
}

/** The hash an absent optional dep enters the key with (no content hashes to 64 zeros). */
const ABSENT = '0'.repeat(64) as ContentHash;

export async function fingerprint(ctx: PlanContext, stage: StageSpec): Promise<Fingerprint> {
  const deps: PathHash[] = [];
  for (const dep of stage.deps) {
    try {
      deps.push(await hashOnce(ctx, dep));
    } catch (cause) {
      if (cause instanceof MissingPathError) {
        if (!stage.optionalDeps.includes(dep)) return { ok: false, missingDep: dep };
        deps.push({ path: dep, hash: ABSENT, size: 0, isDir: false });
        continue;
      }
      throw cause;
    }
  }
  const key = stageKey({
    contractVersion: CONTRACT_VERSION,
    platform: process.platform,
    argv: stage.argv,
    shell: stage.shell,
    params: stage.params,
    deps,
    env: stage.env,
    outs: cachedOuts(stage),
  });
  return { ok: true, key, deps };
}

const CODE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.py', '.sh', '.bash', '.r', '.jl', '.rb', '.pl', '.go', '.rs', '.c', '.cc', '.cpp', '.java', '.lua']);

function show(value: unknown): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}

/** `param train.lr: 0.0001 -> 0.00001` for every leaf that differs. */
function paramReasons(before: unknown, after: unknown, path: string, out: string[]): void {
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isMap(before) && isMap(after)) {
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) paramReasons(before[key], after[key], `${path}.${key}`, out);
  } else if (JSON.stringify(before) !== JSON.stringify(after)) {
    out.push(`param ${path}: ${show(before)} -> ${show(after)}`);
  }
}

function depReasons(before: PathHash[], after: PathHash[], out: string[]): void {
  const old = new Map(before.map((d) => [d.path, d]));
  for (const dep of after) {
    const was = old.get(dep.path);
    if (!was) out.push(`dep added: ${dep.path}`);
    else if (was.hash !== dep.hash) {
      if (!dep.isDir && CODE_EXTENSIONS.has(extname(dep.path).toLowerCase())) out.push(`code changed: ${dep.path}`);
      else if (dep.isDir && was.isDir && was.nfiles !== undefined && was.nfiles !== dep.nfiles) out.push(`dep changed: ${dep.path} (${dep.nfiles} files, was ${was.nfiles})`);
      else out.push(`dep changed: ${dep.path}${dep.isDir ? ` (${dep.nfiles} files, contents differ)` : ''}`);
    }
    old.delete(dep.path);
  }
  for (const path of old.keys()) out.push(`dep removed: ${path}`);
}

/** Out hashes as they are on disk now; `missing` for outs that don't exist. */
export async function currentOuts(ctx: PlanContext, stage: StageSpec): Promise<{ present: PathHash[]; missing: string[] }> {
  const present: PathHash[] = [];
  const missing: string[] = [];
  for (const out of cachedOuts(stage)) {
    try {
      present.push(await hashOnce(ctx, out));
    } catch (cause) {
      if (cause instanceof MissingPathError) missing.push(out);
      else throw cause;
    }
  }
  return { present, missing };
}

function restorableRecord(ctx: PlanContext, stage: StageSpec, key: StageKey): RunRecord | undefined {
  const record = ctx.runCache.get(key);
  if (!record) return undefined;
  const declared = cachedOuts(stage).sort().join('\n');
  if (record.outs.map((o) => o.path).sort().join('\n') !== declared) return undefined;
  return record.outs.every((o) => ctx.store.has(o)) ? record : undefined;
}

/**
 * Whether the stage is fresh, and why not. `upstreamStale` names upstream stages that will run first (status
 * reports them; a run assesses a stage only once its upstream is done, so it passes []).
 */
export async function assess(ctx: PlanContext, stage: StageSpec, upstreamStale: readonly string[] = []): Promise<Assessment> {
  const reasons = upstreamStale.map((name) => `upstream stage ${name} is stale`);
  const print = await fingerprint(ctx, stage);
  const entry = ctx.lock[stage.name];
  if (!print.ok) {
    reasons.push(`dep missing: ${print.missingDep}`);
    return { fresh: false, reasons, fingerprint: print };
  }
  if (!entry) {
    reasons.push('never run');
  } else {
    const params: string[] = [];
    paramReasons(entry.params, stage.params, '', params);
    // A param that changed explains its own change of argv; report the command only when nothing else does.
    if (params.length === 0 && JSON.stringify(entry.cmd) !== JSON.stringify(stage.cmd)) reasons.push(`command changed: ${show(entry.cmd)} -> ${show(stage.cmd)}`);
    reasons.push(...params.map((reason) => reason.replace(/^param \./, 'param ')));
    depReasons(entry.deps, print.deps, reasons);
    const { present, missing } = await currentOuts(ctx, stage);
    for (const path of missing) reasons.push(`output missing: ${path}`);
    const recorded = new Map(entry.outs.map((o) => [o.path, o.hash]));
    for (const out of present) {
      const hash = recorded.get(out.path);
      if (hash === undefined) reasons.push(`output not recorded: ${out.path}`);
      else if (hash !== out.hash) reasons.push(`output modified: ${out.path}`);
    }
    if (reasons.length === upstreamStale.length && entry.key !== print.key) reasons.push('stage definition changed (env, outs or runner version)');
  }
  const fresh = reasons.length === 0;
  const assessment: Assessment = { fresh, reasons, fingerprint: print };
  if (!fresh) {
    const record = restorableRecord(ctx, stage, print.key);
    if (record) assessment.restorable = record;
  }
  return assessment;
}

/** The stage's metrics files, parsed (a file that is missing or not JSON is left out). */
export function readMetrics(workspace: string, stage: StageSpec): Record<string, unknown> | undefined {
  if (stage.metrics.length === 0) return undefined;
  const metrics: Record<string, unknown> = {};
  for (const file of stage.metrics) {
    const abs = join(workspace, file);
    if (!existsSync(abs)) continue;
    try {
      metrics[file] = JSON.parse(readFileSync(abs, 'utf8'));
    } catch {
      // not JSON: a metrics file is shown only when it can be read
    }
  }
  return metrics;
}
