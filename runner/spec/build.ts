// Builds the Pipeline model from the YAML source: schema check -> params (profile, --set) -> foreach/matrix
// expansion -> interpolation -> path checks -> graph. Every user mistake is a located Diagnostic.
import { resolve, dirname } from 'node:path';
import { buildGraph, type Graph } from '../dag.js';
import { cacheDirFor, isWithin, workspacePath } from '../workspace.js';
import { DiagnosticError, didYouMean, error, fail, type Diagnostic, type SourceLocation } from './diagnostics.js';
import { expandStage } from './expand.js';
import { headlineMetrics, type Goal } from './headline.js';
import { interpolateText, scopeLookup, splitCommand, UnknownReference, leafPaths, type Quoting } from './interpolate.js';
import { loadYamlFile, locate, locateText, type SourceFile, type YamlPath } from './load.js';
import { applyProfile, applySets, baseParams, getParam, type Params } from './params.js';
import { validatePipeline } from './schema.js';
import { durationProblem, MAX_TIMER_MS, MAX_TIMER_TEXT, parseDuration, parseSize, sizeProblem } from './units.js';
import { displayPath, lockFileOf, type ExecutorName, type LinkMode, type LoadOptions, type Pipeline, type Resources, type SlurmSettings, type StageSpec } from './pipeline.js';

/** Collects diagnostics while building stages, so one load reports every mistake it can. */
class StageBuilder {
  readonly diagnostics: Diagnostic[] = [];
  constructor(
    private readonly source: SourceFile,
    private readonly workspace: string,
    private readonly params: Params,
    private readonly executorOverride: ExecutorName | undefined,
    /** Workspace paths no out may be or contain: the pipeline file, its lock file, its params file, the cache. */
    private readonly guarded: ReadonlyArray<{ path: string; what: string }> = [],
  ) {}

  private text(value: unknown, path: YamlPath, scope: Record<string, unknown>, quoting: Quoting = 'none'): string | undefined {
    let text: string;
    try {
      text = interpolateText(String(value), scopeLookup(this.params, scope), quoting);
    } catch (cause) {
      if (!(cause instanceof UnknownReference)) throw cause;
      this.diagnostics.push(error(cause.message, locateText(this.source, path, '${' + cause.reference)));
      return undefined;
    }
    // No argv element, path or environment value can hold a NUL byte: say so here, not when spawning.
    if (text.includes('\0')) {
      this.diagnostics.push(error('a NUL character (\\0) cannot be part of a command, path or environment value', locate(this.source, path)));
      return undefined;
    }
    return text;
  }

  private paths(raw: Record<string, unknown>, field: string, template: string, scope: Record<string, unknown>): string[] {
    const list = (raw[field] ?? []) as Array<string | { path: string }>;
    const result: string[] = [];
    list.forEach((entry, index) => {
      const isObject = typeof entry === 'object' && entry !== null;
      const at: YamlPath = isObject ? ['stages', template, field, index, 'path'] : ['stages', template, field, index];
      const text = this.text(isObject ? entry.path : entry, at, scope);
      if (text === undefined) return;
      const path = workspacePath(this.workspace, text);
      if (path === undefined) {
        this.diagnostics.push(error(`${field.replace(/s$/, '')} "${text}" of stage "${template}" is outside the workspace (${displayPath(this.workspace) || '.'})`, locate(this.source, at)));
      } else if (path === '.runner' || path.startsWith('.runner/') || path === '.git' || path.startsWith('.git/')) {
        this.diagnostics.push(error(`${field.replace(/s$/, '')} "${text}" of stage "${template}" is inside the runner's or git's own folder`, locate(this.source, at)));
      } else if (field !== 'deps' && this.guarded.some((g) => isWithin(g.path, path) || isWithin(path, g.path))) {
        // The runner deletes outs before the stage starts: an out holding the pipeline would delete it.
        const hit = this.guarded.find((g) => isWithin(g.path, path) || isWithin(path, g.path))!;
        const how = hit.path === path ? 'is' : isWithin(hit.path, path) ? 'contains' : 'is inside';
        this.diagnostics.push(error(`${field.replace(/s$/, '')} "${text}" of stage "${template}" ${how} ${hit.what} (${hit.path}); the runner deletes outs before a stage runs`, locate(this.source, at)));
      } else {
        result.push(path);
      }
    });
    return result;
  }

  /** The deps written as {path, optional: true} (or another flag's value), interpolated like every dep. */
  private optionalDeps(raw: Record<string, unknown>, template: string, scope: Record<string, unknown>, flag: 'optional' | 'imports' = 'optional', value = true): string[] {
    const optional = ((raw['deps'] ?? []) as unknown[]).map((entry) => typeof entry === 'object' && entry !== null && (entry as Record<string, unknown>)[flag] === value);
    if (!optional.includes(true)) return [];
    const quiet = new StageBuilder(this.source, this.workspace, this.params, this.executorOverride, this.guarded);
    const all = quiet.paths(raw, 'deps', template, scope);
    return quiet.diagnostics.length ? [] : all.filter((_, index) => optional[index]);
  }

  private command(raw: Record<string, unknown>, template: string, shell: boolean, scope: Record<string, unknown>): { cmd: string | string[]; argv: string[] } {
    const written = raw['cmd'] as string | unknown[];
    if (shell) {
      const script = Array.isArray(written) ? written.map(String).join(' ') : written;
      const text = this.text(script, ['stages', template, 'cmd'], scope, 'shell') ?? '';
      return { cmd: text, argv: [text] };
    }
    let words: { word: string; path: YamlPath }[];
    if (Array.isArray(written)) {
      words = written.map((word, index) => ({ word: String(word), path: ['stages', template, 'cmd', index] }));
    } else {
      try {
        words = splitCommand(written).map((word) => ({ word, path: ['stages', template, 'cmd'] }));
      } catch (cause) {
        this.diagnostics.push(error(`${(cause as Error).message} of stage "${template}"`, locate(this.source, ['stages', template, 'cmd'])));
        return { cmd: [], argv: [] };
      }
    }
    if (words.length === 0) this.diagnostics.push(error(`stage "${template}" has an empty cmd`, locate(this.source, ['stages', template, 'cmd'])));
    const argv = words.map(({ word, path }) => this.text(word, path, scope) ?? '');
    return { cmd: argv, argv };
  }

  private declaredParams(raw: Record<string, unknown>, template: string, scope: Record<string, unknown>): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    ((raw['params'] ?? []) as string[]).forEach((entry, index) => {
      const at: YamlPath = ['stages', template, 'params', index];
      const name = this.text(entry, at, scope);
      if (name === undefined) return;
      const { found, value } = getParam(this.params, name);
      const infinite = found ? nonFinite(value, name) : undefined;
      if (!found) this.diagnostics.push(error(`stage "${template}" declares unknown param "${name}"${didYouMean(name, leafPaths(this.params))}`, locate(this.source, at)));
      // Params reach the stage and the cache key as JSON, which has no Infinity or NaN (1e400 reads as Infinity).
      else if (infinite) this.diagnostics.push(error(`param "${infinite.path}" used by stage "${template}" is ${infinite.value}, not a finite number (YAML reads 1e400 as infinite; .inf and .nan are not numbers JSON can carry)`, locate(this.source, at)));
      else values[name] = value;
    });
    return values;
  }

  private resources(raw: Record<string, unknown>, template: string): Resources {
    const written = (raw['resources'] ?? {}) as { cpus?: number; gpus?: number; memory?: string | number };
    let memoryBytes = 0;
    if (written.memory !== undefined) {
      const parsed = parseSize(written.memory);
      if (parsed === undefined) this.diagnostics.push(error(`stage "${template}": memory "${written.memory}" ${sizeProblem(written.memory)}`, locate(this.source, ['stages', template, 'resources', 'memory'])));
      else memoryBytes = parsed;
    }
    return { cpus: written.cpus ?? 1, gpus: written.gpus ?? 0, memoryBytes };
  }

  build(raw: Record<string, unknown>, template: string, name: string, scope: Record<string, unknown>, defaultExecutor: ExecutorName): StageSpec {
    const shell = raw['shell'] === true;
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries((raw['env'] ?? {}) as Record<string, unknown>)) {
      env[key] = this.text(value, ['stages', template, 'env', key], scope) ?? '';
    }
    let timeoutMs: number | undefined;
    if (raw['timeout'] !== undefined) {
      timeoutMs = parseDuration(raw['timeout'] as string | number);
      if (timeoutMs === undefined) this.diagnostics.push(error(`stage "${template}": timeout "${String(raw['timeout'])}" ${durationProblem(raw['timeout'] as string | number)}`, locate(this.source, ['stages', template, 'timeout'])));
    }
    const stage: StageSpec = {
      name,
      template,
      ...this.command(raw, template, shell, scope),
      shell,
      deps: this.paths(raw, 'deps', template, scope),
      optionalDeps: this.optionalDeps(raw, template, scope),
      importsNotFollowed: this.optionalDeps(raw, template, scope, 'imports', false),
      outs: this.paths(raw, 'outs', template, scope),
      metrics: this.paths(raw, 'metrics', template, scope),
      checkpoints: this.paths(raw, 'checkpoints', template, scope),
      params: this.declaredParams(raw, template, scope),
      env,
      resources: this.resources(raw, template),
      retries: (raw['retries'] as number | undefined) ?? 0,
      executor: this.executorOverride ?? (raw['executor'] as ExecutorName | undefined) ?? defaultExecutor,
    };
    if (typeof raw['desc'] === 'string') stage.desc = raw['desc'];
    if (raw['slurm'] !== undefined) stage.slurm = checkSlurm(this.source, raw['slurm'] as SlurmSettings, ['stages', template, 'slurm'], this.diagnostics);
    if (raw['plots'] !== undefined) stage.plots = this.paths(raw, 'plots', template, scope);
    if (raw['images'] !== undefined) stage.images = this.paths(raw, 'images', template, scope);
    if (timeoutMs !== undefined) stage.timeoutMs = timeoutMs;
    return stage;
  }
}

/** The first number inside `value` that JSON cannot write (Infinity, NaN), with its dotted path. */
function nonFinite(value: unknown, path: string): { path: string; value: number } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, value };
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    const found = nonFinite(child, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

/** Durations in `slurm:` are checked here, so a typo is reported at its line, not when the job is submitted. */
function checkSlurm(source: SourceFile, settings: SlurmSettings, at: YamlPath, diagnostics: Diagnostic[]): SlurmSettings {
  for (const key of ['time', 'poll'] as const) {
    const value = settings[key];
    if (value === undefined) continue;
    const ms = parseDuration(value);
    if (ms === undefined) diagnostics.push(error(`slurm ${key} "${String(value)}" ${durationProblem(value)}`, locate(source, [...at, key])));
    // The poll interval is one timer: past 2^31-1 ms Node would fire it at once, polling in a busy loop.
    else if (key === 'poll' && ms > MAX_TIMER_MS) diagnostics.push(error(`slurm poll "${String(value)}" is longer than the maximum, ${MAX_TIMER_TEXT}`, locate(source, [...at, key])));
  }
  return settings;
}

/** The files a run needs that an out must never delete, as workspace paths (those outside it can't be outs). */
function guardedPaths(workspace: string, pipelinePath: string, data: Record<string, unknown>, cacheDir: string): { path: string; what: string }[] {
  const candidates = [
    { absolute: pipelinePath, what: 'the pipeline file' },
    { absolute: lockFileOf(pipelinePath), what: 'the pipeline\'s lock file' },
    { absolute: cacheDir, what: 'the cache folder' },
  ];
  if (typeof data['params'] === 'string') candidates.push({ absolute: resolve(dirname(pipelinePath), data['params']), what: 'the params file' });
  return candidates.flatMap(({ absolute, what }) => {
    const path = workspacePath(workspace, absolute);
    return path === undefined ? [] : [{ path, what }];
  });
}

/** The pipeline, and the files besides the pipeline file that it was built from (for the spec cache). */
export async function buildPipeline(path: string, workspace: string, executorOverride: ExecutorName | undefined, options: LoadOptions): Promise<{ pipeline: Pipeline; inputs: string[] }> {
  const file = displayPath(path);
  const source = loadYamlFile(file, path);
  if (source.data === null || typeof source.data !== 'object' || Array.isArray(source.data)) {
    fail('a pipeline file must be a map with a "stages" key', locate(source, []));
  }
  const schemaErrors = await validatePipeline(source);
  if (schemaErrors.length) throw new DiagnosticError(schemaErrors);
  const data = source.data as Record<string, unknown>;

  const declared = baseParams(source, path);
  const params = applySets(applyProfile(source, declared, options.profile), options.sets ?? [], declared);
  const cacheDir = cacheDirFor(workspace, ((data['cache'] ?? {}) as { dir?: string }).dir);
  const builder = new StageBuilder(source, workspace, params, executorOverride, guardedPaths(workspace, path, data, cacheDir));
  const defaultExecutor = (data['executor'] as ExecutorName | undefined) ?? 'local';
  const stages: StageSpec[] = [];
  const byName = new Map<string, StageSpec>();
  for (const [template, raw] of Object.entries(data['stages'] as Record<string, Record<string, unknown>>)) {
    for (const instance of expandStage(source, template, raw, params)) {
      const scope = 'item' in instance ? { item: instance.item } : {};
      if (byName.has(instance.name)) {
        builder.diagnostics.push(error(`two stages are named "${instance.name}" (foreach/matrix items must differ)`, locate(source, ['stages', template], 'key')));
        continue;
      }
      const stage = builder.build(raw, template, instance.name, scope, defaultExecutor);
      stages.push(stage);
      byName.set(stage.name, stage);
    }
  }
  const slurm = data['slurm'] === undefined ? undefined : checkSlurm(source, data['slurm'] as SlurmSettings, ['slurm'], builder.diagnostics);
  const headline = data['headline'] === undefined ? undefined : headlineMetrics(source, data['headline'] as Record<string, Goal>, byName, builder.diagnostics);
  if (builder.diagnostics.length) throw new DiagnosticError(builder.diagnostics);

  const where = (stage: string, field: 'deps' | 'outs' | 'checkpoints', index: number): SourceLocation | undefined => {
    const spec = byName.get(stage)!;
    // Metrics are graph outs too: an index past `outs` points into `metrics`.
    if (field === 'outs' && index >= spec.outs.length) return locate(source, ['stages', spec.template, 'metrics', index - spec.outs.length]);
    return locate(source, ['stages', spec.template, field, index]);
  };
  const graph: Graph = buildGraph(
    stages.map((s) => ({ name: s.name, deps: s.deps, outs: [...s.outs, ...s.metrics], checkpoints: s.checkpoints })),
    where,
  );

  const cache = (data['cache'] ?? {}) as { dir?: string; link?: LinkMode; remote?: { url: string; push?: boolean } };
  const pipeline: Pipeline = {
    file,
    path,
    workspace,
    lockFile: lockFileOf(path),
    cacheDir,
    linkMode: cache.link ?? 'reflink-or-copy',
    params,
    stages: graph.order.map((name) => byName.get(name)!),
    upstream: Object.fromEntries(graph.upstream),
    downstream: Object.fromEntries(graph.downstream),
  };
  if (slurm) pipeline.slurm = slurm;
  if (cache.remote) pipeline.remote = { url: cache.remote.url, push: cache.remote.push ?? false };
  if (headline) pipeline.headline = headline;
  const inputs = typeof data['params'] === 'string' ? [resolve(dirname(path), data['params'])] : [];
  return { pipeline, inputs };
}

