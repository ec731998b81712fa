// Per stage, the one verdict (fresh / restore / run) and its reasons as data (stale-reason.ts). Computed from
// the stage's fingerprint (declared params, dep hashes via the stat cache, the import closure of its JS/TS
// deps, argv, env) and its lock entry. status, run and run --dry-run all take their verdict from here.
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CONTRACT_VERSION, stageKey } from '../cache/fingerprint.js';
import { hashPath, MissingPathError } from '../cache/hash.js';
import type { RunCache } from '../cache/run-cache.js';
import type { StatCache } from '../cache/stat-cache.js';
import type { Store } from '../cache/store.js';
import type { CodeDeps, ContentHash, LockEntry, PathHash, RunRecord, StageKey } from '../cache/types.js';
import { codeReasons } from './code-deps/changes.js';
import type { CodeClosure } from './code-deps/closure.js';
import { isCodeFile } from './code-deps/code-files.js';
import type { ImportCache } from './code-deps/import-cache.js';
import type { Resolver } from './code-deps/resolve.js';
import type { CodeWarning } from './code-deps/warning.js';
import type { StaleReason, Verdict } from './stale-reason.js';
import type { Pipeline, StageSpec } from './spec/pipeline.js';
import { runnerDirs } from './workspace.js';

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
  /** Parsed imports by content hash (opened on first use, by a pipeline with JS/TS deps). */
  importCache?: ImportCache;
  /** Import resolution, memoised for a read-only pass (with hashMemo); a run resolves afresh per stage. */
  resolver?: Resolver;
  /** Closures by their entries, for a read-only pass (with hashMemo). */
  closureMemo?: Map<string, CodeClosure>;
}

/** hashPath through the pass's memo, when it has one. */
async function hashOnce(ctx: PlanContext, path: string): Promise<PathHash> {
  const known = ctx.hashMemo?.get(path);
  if (known) return known;
  const hashed = await hashPath(ctx.pipeline.workspace, path, ctx.statCache);
  ctx.hashMemo?.set(path, hashed);
  return hashed;
}

export type Fingerprint =
  | { ok: true; key: StageKey; deps: PathHash[]; code?: CodeDeps; closure?: CodeClosure }
  | { ok: false; missingDep: string };

export interface Assessment {
  verdict: Verdict;
  /** Empty exactly when the verdict is fresh. */
  reasons: StaleReason[];
  fingerprint: Fingerprint;
  /** The run-cache record that can restore this stage's outs, when there is one and its objects are all there. */
  restorable?: RunRecord;
  /** What the import closure could not follow (unresolved imports, syntax errors, `import(expr)`). */
  warnings: CodeWarning[];
}

/** Stage outs as the cache sees them: declared outs and metrics files. */
export function cachedOuts(stage: StageSpec): string[] {
  return [...stage.outs, ...stage.metrics];
}

/** The hash an absent optional dep enters the key with (no content hashes to 64 zeros). */
const ABSENT = '0'.repeat(64) as ContentHash;

/** The stage's deps whose imports are followed: JS/TS files, present, not declared `imports: false`. */
export function codeEntries(stage: StageSpec, deps: readonly PathHash[]): string[] {
  return deps.filter((d) => !d.isDir && d.hash !== ABSENT && isCodeFile(d.path) && !stage.importsNotFollowed.includes(d.path)).map((d) => d.path);
}

/** The import closure of the stage's JS/TS deps (undefined for a stage with none). */
export async function stageClosure(ctx: PlanContext, stage: StageSpec, deps: readonly PathHash[]): Promise<CodeClosure | undefined> {
  const entries = codeEntries(stage, deps);
  return entries.length === 0 ? undefined : closureOf(ctx, entries);
}

async function closureOf(ctx: PlanContext, entries: string[]): Promise<CodeClosure> {
  // In a read-only pass, stages with the same entries (the three train phases, predict and predict-test…)
  // share one walk.
  const memoKey = entries.join('\0');
  const known = ctx.closureMemo?.get(memoKey);
  if (known) return known;
  const { workspace } = ctx.pipeline;
  // Loaded only by a pipeline with JS/TS deps: a status of 1000 shell stages doesn't pay for them.
  const [{ codeClosure }, { ImportCache }, { Resolver }] = await Promise.all([import('./code-deps/closure.js'), import('./code-deps/import-cache.js'), import('./code-deps/resolve.js')]);
  ctx.importCache ??= ImportCache.load(join(runnerDirs(workspace).tmp, 'code-imports.json'));
  const resolver = ctx.hashMemo ? (ctx.resolver ??= new Resolver(workspace)) : new Resolver(workspace);
  const closure = await codeClosure({
    workspace,
    entries,
    cache: ctx.importCache,
    resolver,
    hash: (path) => {
      const memo = ctx.hashMemo?.get(path);
      if (memo) return memo.hash; // no promise for a file an earlier stage's walk hashed
      return hashOnce(ctx, path).then(
        (hashed) => hashed.hash,
        (cause: unknown) => {
          if (cause instanceof MissingPathError) return undefined;
          throw cause;
        },
      );
    },
  });
  ctx.importCache.save();
  if (ctx.hashMemo) (ctx.closureMemo ??= new Map()).set(memoKey, closure);
  return closure;
}

/** The closure of the deps that exist now: data deps an upstream stage has yet to make don't matter to it. */
export async function presentCodeClosure(ctx: PlanContext, stage: StageSpec): Promise<{ entries: string[]; closure: CodeClosure | undefined }> {
  const deps: PathHash[] = [];
  for (const dep of stage.deps) {
    try {
      deps.push(await hashOnce(ctx, dep));
    } catch (cause) {
      if (!(cause instanceof MissingPathError)) throw cause;
    }
  }
  return { entries: codeEntries(stage, deps), closure: await stageClosure(ctx, stage, deps) };
}

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
  // No extra await for a stage without code deps: a 1000-stage status pays for every promise.
  const entries = codeEntries(stage, deps);
  const closure = entries.length === 0 ? undefined : await closureOf(ctx, entries);
  const key = stageKey({
    contractVersion: CONTRACT_VERSION,
    platform: process.platform,
    argv: stage.argv,
    shell: stage.shell,
    params: stage.params,
    deps,
    env: stage.env,
    outs: cachedOuts(stage),
    ...(closure ? { code: closure.code } : {}),
  });
  return closure ? { ok: true, key, deps, code: closure.code, closure } : { ok: true, key, deps };
}

// Any source language: a changed file dep with one of these is reported as code, not data.
const SOURCE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.jsx', '.tsx', '.py', '.sh', '.bash', '.r', '.jl', '.rb', '.pl', '.go', '.rs', '.c', '.cc', '.cpp', '.java', '.lua']);

/** `param train.lr: 0.0001 -> 0.00001` for every leaf that differs. */
function paramReasons(before: unknown, after: unknown, path: string, out: StaleReason[]): void {
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isMap(before) && isMap(after)) {
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) paramReasons(before[key], after[key], path ? `${path}.${key}` : key, out);
  } else if (JSON.stringify(before) !== JSON.stringify(after)) {
    out.push({ kind: 'param-changed', name: path, before, after });
  }
}

function depReasons(before: PathHash[], after: PathHash[], out: StaleReason[]): void {
  const old = new Map(before.map((d) => [d.path, d]));
  for (const dep of after) {
    const was = old.get(dep.path);
    if (!was) out.push({ kind: 'dep-added', path: dep.path });
    else if (was.hash !== dep.hash) {
      if (!dep.isDir && SOURCE_EXTENSIONS.has(extname(dep.path).toLowerCase())) out.push({ kind: 'code-changed', path: dep.path, importedBy: [] });
      else {
        const reason: StaleReason = { kind: 'dep-changed', path: dep.path, isDir: dep.isDir };
        if (dep.nfiles !== undefined) reason.nfiles = dep.nfiles;
        if (dep.isDir && was.isDir && was.nfiles !== undefined) reason.wasNfiles = was.nfiles;
        out.push(reason);
      }
    }
    old.delete(dep.path);
  }
  for (const path of old.keys()) out.push({ kind: 'dep-removed', path });
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

/** Why the stage differs from its lock entry, given its outs as they are now (empty: it doesn't). */
function staleReasons(stage: StageSpec, entry: LockEntry, print: Fingerprint & { ok: true }, { present, missing }: { present: PathHash[]; missing: string[] }): StaleReason[] {
  const reasons: StaleReason[] = [];
  const params: StaleReason[] = [];
  paramReasons(entry.params, stage.params, '', params);
  // A param that changed explains its own change of argv; report the command only when nothing else does.
  if (params.length === 0 && JSON.stringify(entry.cmd) !== JSON.stringify(stage.cmd)) reasons.push({ kind: 'command-changed', before: entry.cmd, after: stage.cmd });
  reasons.push(...params);
  depReasons(entry.deps, print.deps, reasons);
  if (entry.code || print.code) reasons.push(...codeReasons(entry.code, print.code, print.closure?.importedBy ?? new Map()));
  for (const path of missing) reasons.push({ kind: 'output-missing', path });
  const recorded = new Map(entry.outs.map((o) => [o.path, o.hash]));
  for (const out of present) {
    const hash = recorded.get(out.path);
    if (hash === undefined) reasons.push({ kind: 'output-not-recorded', path: out.path });
    else if (hash !== out.hash) reasons.push({ kind: 'output-modified', path: out.path });
  }
  if (reasons.length === 0 && entry.key !== print.key) reasons.push({ kind: 'definition-changed' });
  return reasons;
}

export interface AssessOptions {
  /** Upstream stages that will run or restore first (status names them; a run passes none: it waits for them). */
  upstreamStale?: readonly string[];
  /** `run --force`: run even when fresh or restorable. */
  forced?: boolean;
}

/**
 * The stage's verdict and reasons. Restore only when nothing upstream is still to run (its outs would be
 * replaced, changing this stage's key) and the run was not forced.
 */
export async function assess(ctx: PlanContext, stage: StageSpec, options: AssessOptions = {}): Promise<Assessment> {
  const upstreamStale = options.upstreamStale ?? [];
  const reasons: StaleReason[] = options.forced ? [{ kind: 'forced' }] : [];
  reasons.push(...upstreamStale.map((name): StaleReason => ({ kind: 'upstream-stale', stage: name })));
  const print = await fingerprint(ctx, stage);
  if (!print.ok) {
    reasons.push({ kind: 'dep-missing', path: print.missingDep });
    return { verdict: 'run', reasons, fingerprint: print, warnings: [] };
  }
  const entry = ctx.lock[stage.name];
  if (entry) reasons.push(...staleReasons(stage, entry, print, await currentOuts(ctx, stage)));
  else reasons.push({ kind: 'never-run' });
  const warnings = print.closure?.warnings ?? [];
  if (reasons.length === 0) return { verdict: 'fresh', reasons, fingerprint: print, warnings };
  const record = restorableRecord(ctx, stage, print.key);
  const verdict: Verdict = record && !options.forced && upstreamStale.length === 0 ? 'restore' : 'run';
  return { verdict, reasons, fingerprint: print, warnings, ...(record ? { restorable: record } : {}) };
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
