// Experiment records: one JSON file per experiment, `.runner/exps/<id>.json` in the main workspace, beside the
// experiment's own workspace `.runner/exps/<id>/`. Written temp + rename, so a reader never sees half a record.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { canonicalJson } from '../../cache/fingerprint.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import { runnerDirs } from '../workspace.js';
import type { HeadlineMetric } from '../spec/headline.js';
import type { Overrides } from './grid.js';

export const RECORD_SCHEMA = 1;

export interface StageOutcome {
  status: string;
  /** How long this experiment spent on the stage (a restore is quick). */
  durationMs: number;
  /**
   * What computing the stage cost, restored or not: the run-cache record's duration (its last run) plus the
   * earlier runs this experiment made of it that did not finish (interrupted, then resumed from checkpoints).
   */
  computeMs?: number;
  /** Wall time of each run of the stage this experiment made until one finished (more than one: resumed). */
  runsMs?: number[];
  upstream: string[];
  failure?: string;
}

export interface ExperimentRecord {
  schema: number;
  id: string;
  name: string;
  /** Workspace-relative path of the pipeline file. */
  pipeline: string;
  profile: string | null;
  /** The params this experiment sets on top of the pipeline (and profile): dotted name -> value. */
  overrides: Overrides;
  /** Every effective param as a dotted leaf (for "params that differ"). */
  params: Record<string, unknown>;
  paramsDigest: string;
  /** Workspace-relative folder holding this experiment's outs. */
  workspace: string;
  status: 'ok' | 'failed';
  createdAt: string;
  finishedAt: string;
  durationMs: number;
  /** Stages in graph order. */
  stages: Record<string, StageOutcome>;
  /** `<stage>.<dotted key>` -> value, from every stage's `metrics:` files. */
  metrics: Record<string, unknown>;
  /** Report hints declared by stages (`plots:`, `images:`), relative to the experiment's workspace. */
  plots: { stage: string; path: string }[];
  images: { stage: string; path: string }[];
  /** The pipeline's headline metrics when it declares some (records written before they existed have none). */
  headline?: HeadlineMetric[];
}

export function expsDir(workspace: string): string {
  return join(runnerDirs(workspace).root, 'exps');
}

/** sha256 of the canonical JSON of the effective params. */
export function paramsDigest(params: unknown): string {
  return createHash('sha256').update(canonicalJson(params)).digest('hex');
}

/**
 * An experiment is what it computes: the same pipeline with the same effective params is the same experiment
 * (and lands in the same folder), however the params were reached (profile, --set, sweep file).
 */
export function experimentId(pipeline: string, digest: string): string {
  return createHash('sha256').update(`${pipeline}\n${digest}`).digest('hex').slice(0, 10);
}

export function writeRecord(workspace: string, record: ExperimentRecord): void {
  const dir = expsDir(workspace);
  mkdirSync(dir, { recursive: true });
  writeFileAtomic.sync(join(dir, `${record.id}.json`), JSON.stringify(record, null, 2) + '\n');
}

export function readRecord(workspace: string, id: string): ExperimentRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(join(expsDir(workspace), `${id}.json`), 'utf8')) as ExperimentRecord;
    return record.schema === RECORD_SCHEMA ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Every readable record, oldest first. */
export function listRecords(workspace: string): ExperimentRecord[] {
  const dir = expsDir(workspace);
  if (!existsSync(dir)) return [];
  const records: ExperimentRecord[] = [];
  for (const name of readdirSync(dir)) {
    if (!/^[0-9a-f]{10}\.json$/.test(name)) continue;
    const record = readRecord(workspace, name.slice(0, -5));
    if (record) records.push(record);
  }
  return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}

/**
 * Experiment folders with no record: a sweep stopped before that experiment finished. Rerunning the sweep (or
 * any sweep reaching the same params) resumes in the folder, from its stages' checkpoints.
 */
export function listUnrecorded(workspace: string): string[] {
  const dir = expsDir(workspace);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => /^[0-9a-f]{10}$/.test(name) && !existsSync(join(dir, `${name}.json`))).sort();
}

/** An experiment named by id, id prefix (4+ characters) or name (the newest of that name). */
export function resolveRecord(records: readonly ExperimentRecord[], ref: string, flag: string): ExperimentRecord {
  const exact = records.find((r) => r.id === ref);
  if (exact) return exact;
  const named = records.filter((r) => r.name === ref);
  if (named.length) return named[named.length - 1]!;
  const prefixed = ref.length >= 4 ? records.filter((r) => r.id.startsWith(ref)) : [];
  if (prefixed.length === 1) return prefixed[0]!;
  if (prefixed.length > 1) fail(`${flag}: "${ref}" matches several experiments (${prefixed.map((r) => r.id).join(', ')}); give more of the id`);
  const known = records.map((r) => r.name);
  fail(`${flag}: no experiment "${ref}"${didYouMean(ref, known)}${records.length ? `; experiments: ${[...new Set(known)].join(', ')}` : '; none recorded yet (run `runner sweep` first)'}`);
}

/** Deletes an experiment's record and its workspace. */
export function removeRecord(workspace: string, id: string): void {
  rmSync(join(expsDir(workspace), `${id}.json`), { force: true });
  rmSync(join(expsDir(workspace), id), { recursive: true, force: true });
}
