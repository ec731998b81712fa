// What a training phase keeps between epochs so a killed phase resumes instead of starting over:
//
//   <checkpoints>/last/   weights + optimizer state + meta {runKey, epoch, history, best}  (every epoch)
//   <checkpoints>/best/   weights of the epoch with the lowest validation loss so far
//
// The runner never deletes a stage's declared `checkpoints:` paths. A resume is only taken when the saved
// runKey equals this run's (same flags, same inputs): a checkpoint of different data or params starts over.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpointMeta } from '../model/checkpoint.js';
import type { Losses } from '../model/mask-rcnn.js';

export interface EpochRecord {
  epoch: number;
  /** Mean of each loss over the epoch's steps. */
  train: Losses;
  /** Mean of each loss over the validation list (absent without validation ids). */
  val?: Losses;
  seconds: number;
  steps: number;
}

export interface PhaseMeta {
  runKey: string;
  /** Last finished epoch (1-based). */
  epoch: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestValLoss: number | null;
}

/** sha256 over the run's flags and the bytes of the inputs that define it (manifests, id lists, init weights' index). */
export function phaseRunKey(flags: Record<string, unknown>, inputFiles: string[]): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(Object.keys(flags).sort().map((k) => [k, flags[k]])));
  for (const file of [...inputFiles].sort()) {
    hash.update(`\0${file}\0`);
    hash.update(existsSync(file) ? readFileSync(file) : 'absent');
  }
  return hash.digest('hex');
}

/** The resumable state in `checkpointsDir`, or undefined when there is none for this runKey. */
export function resumableState(checkpointsDir: string | undefined, runKey: string): PhaseMeta | undefined {
  if (!checkpointsDir) return undefined;
  const last = join(checkpointsDir, 'last');
  if (!existsSync(join(last, 'model.json'))) return undefined;
  try {
    const meta = readCheckpointMeta(last) as unknown as Partial<PhaseMeta>;
    if (meta.runKey !== runKey || typeof meta.epoch !== 'number' || !Array.isArray(meta.history)) return undefined;
    return meta as PhaseMeta;
  } catch {
    return undefined; // an unreadable checkpoint is no reason to fail: train from the start
  }
}

/** Mean of each named loss over a list. */
export function meanLosses(list: Losses[]): Losses {
  const out: Record<string, number> = {};
  for (const losses of list) for (const [name, value] of Object.entries(losses)) out[name] = (out[name] ?? 0) + (value as number) / list.length;
  return out as unknown as Losses;
}
