// The validated pipeline model: YAML -> schema check -> params (profile, --set) -> foreach/matrix expansion ->
// interpolation -> path checks -> graph (build.ts does it; imported only when the spec cache misses). Every user
// mistake on the way is a located Diagnostic; what comes out is plain data, cached by spec-cache.ts.
import { readFileSync } from 'node:fs';
import { relative, resolve, join, dirname, basename, extname } from 'node:path';
import { findWorkspace, runnerDirs } from '../workspace.js';
import { didYouMean, fail } from './diagnostics.js';
import { readSpecCache, specCacheKey, writeSpecCache } from './spec-cache.js';
import type { HeadlineMetric } from './headline.js';

// Kept here rather than imported from schema.ts, so a cached load never loads the schema module.
export const EXECUTORS = ['local', 'slurm'] as const;
export const LINK_MODES = ['reflink-or-copy', 'hardlink', 'copy'] as const;
export type Params = Record<string, unknown>;

export type ExecutorName = (typeof EXECUTORS)[number];
export type LinkMode = (typeof LINK_MODES)[number];

export interface Resources {
  cpus: number;
  gpus: number;
  memoryBytes: number;
}

/** sbatch options (`slurm:` in the pipeline or a stage, `--slurm-*` flags); see runner/executors/slurm.ts. */
export interface SlurmSettings {
  partition?: string;
  account?: string;
  /** Default time limit for stages without `timeout` (a duration like `timeout`'s). */
  time?: string | number;
  /** Extra sbatch arguments, one argv element each. */
  args?: string[];
  /** How often squeue is asked about the run's jobs (a duration, default 5s). */
  poll?: string | number;
  /** sbatch calls per second at most (each submits up to `arraySize` stages as one job array). */
  submitRate?: number;
  arraySize?: number;
}

export interface StageSpec {
  name: string;
  /** The key under `stages:` this stage came from (differs from name for foreach/matrix instances). */
  template: string;
  desc?: string;
  /** The interpolated command as recorded in the lock file: argv list, or the shell string. */
  cmd: string | string[];
  /** What is spawned: argv (argv[0] is the program), or [script] for a shell stage. */
  argv: string[];
  shell: boolean;
  deps: string[];
  /** Deps declared `optional: true`: absent ones are hashed as absent instead of failing the stage. */
  optionalDeps: string[];
  /** JS/TS deps declared `imports: false`: their own content enters the key, their import closure doesn't. */
  importsNotFollowed: string[];
  outs: string[];
  metrics: string[];
  checkpoints: string[];
  /** Report hints (runner report): JSON files of per-epoch records, and image folders. Not in the key. */
  plots?: string[];
  images?: string[];
  /** Declared param name (as written, e.g. `train` or `prep.size`) -> its effective value. */
  params: Record<string, unknown>;
  env: Record<string, string>;
  resources: Resources;
  retries: number;
  timeoutMs?: number;
  executor: ExecutorName;
  slurm?: SlurmSettings;
}

export interface Pipeline {
  /** Display path of the pipeline file. */
  file: string;
  path: string;
  workspace: string;
  lockFile: string;
  cacheDir: string;
  linkMode: LinkMode;
  /** `cache: {remote: …}`: a remote cache shared between machines. */
  remote?: { url: string; push: boolean };
  params: Params;
  /** In graph order: every stage after its upstream stages. */
  stages: StageSpec[];
  upstream: Record<string, string[]>;
  downstream: Record<string, string[]>;
  slurm?: SlurmSettings;
  /** The metrics `compare` and the report lead with and rank (the pipeline's `headline:`). */
  headline?: HeadlineMetric[];
}

export interface LoadOptions {
  profile?: string;
  sets?: readonly string[];
  executor?: string;
  workspace?: string;
}

/** `pipelines/x.yaml` -> `pipelines/x.lock` */
export function lockFileOf(pipelinePath: string): string {
  return join(dirname(pipelinePath), basename(pipelinePath, extname(pipelinePath)) + '.lock');
}

export function displayPath(absolute: string): string {
  const rel = relative(process.cwd(), absolute);
  return rel && !rel.startsWith('..') ? rel : absolute;
}

export function checkExecutor(name: string | undefined): ExecutorName | undefined {
  if (name === undefined) return undefined;
  if (!(EXECUTORS as readonly string[]).includes(name)) {
    fail(`unknown executor "${name}" in --executor${didYouMean(name, EXECUTORS)}; choices: ${EXECUTORS.join(', ')}`);
  }
  return name as ExecutorName;
}

export async function loadPipeline(pipelineArg: string, options: LoadOptions = {}): Promise<Pipeline> {
  const path = resolve(pipelineArg);
  const executor = checkExecutor(options.executor);
  const workspace = findWorkspace(path, options.workspace);
  let bytes: Buffer | undefined;
  try {
    bytes = readFileSync(path);
  } catch {
    bytes = undefined; // build() reports the missing file
  }
  const specs = runnerDirs(workspace).specs;
  const key = bytes ? specCacheKey(bytes, path, workspace, options) : undefined;
  const cached = key ? readSpecCache(specs, key) : undefined;
  if (cached) return { ...cached, file: displayPath(path) };
  const { buildPipeline } = await import('./build.js');
  const { pipeline, inputs } = await buildPipeline(path, workspace, executor, options);
  if (key) writeSpecCache(specs, key, pipeline, inputs);
  return pipeline;
}
