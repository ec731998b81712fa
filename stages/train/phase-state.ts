// What a training phase keeps between epochs so a killed phase resumes instead of starting over:
//
//   <checkpoints>/last/   weights + optimizer state + meta {runKey, epoch, history, best}  (every epoch)
//   <checkpoints>/best/   weights of the epoch with the lowest validation loss so far
//
// The runner never deletes a stage's declared `checkpoints:` paths. A resume is only taken when the saved
// runKey equals this run's (same flags, same inputs): a checkpoint of different data or params starts over.
// The epoch count is not in the key: every epoch's batches, augmentation and learning rate depend on the seed and
// the epoch's number only, so epoch k of a 12-epoch phase is epoch k of a 20-epoch one. Raising or lowering
// `epochs` therefore continues from the checkpoint (as Keras' initial_epoch), unless the checkpoint is already
// past the new end: then the phase starts over, since the weights of that earlier epoch are gone.
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
  /** 2: the key leaves out the epoch count. Absent (1): checkpoints written when it was in the key. */
  keyVersion?: number;
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

export interface ResumeOptions {
  /** The phase's epoch count now: a checkpoint past it cannot be continued. */
  epochs: number;
  /** The key a version-1 checkpoint would have for a given --epochs value (the flag's string). */
  legacyKey?: (epochs: string) => string;
  /** Why an existing checkpoint is not resumed. */
  log?: (message: string) => void;
}

/** Version-1 keys were taken with the epoch count the phase had then: tried for every count from the saved epoch up. */
const maxLegacyEpochs = 1000;

/** The resumable state in `checkpointsDir`, or undefined when there is none for this runKey and epoch count. */
export function resumableState(checkpointsDir: string | undefined, runKey: string, options: ResumeOptions): PhaseMeta | undefined {
  if (!checkpointsDir) return undefined;
  const last = join(checkpointsDir, 'last');
  if (!existsSync(join(last, 'model.json'))) return undefined;
  let meta: Partial<PhaseMeta>;
  try {
    meta = readCheckpointMeta(last) as unknown as Partial<PhaseMeta>;
  } catch {
    return undefined; // an unreadable checkpoint is no reason to fail: train from the start
  }
  if (typeof meta.epoch !== 'number' || !Array.isArray(meta.history)) return undefined;
  if (!sameRun(meta, runKey, options)) {
    options.log?.(`train: the checkpoint in ${last} is of another run (flags or inputs differ): starting over`);
    return undefined;
  }
  if (meta.epoch > options.epochs) {
    options.log?.(`train: the checkpoint in ${last} is at epoch ${meta.epoch}, past the ${options.epochs} epochs asked for: starting over`);
    return undefined;
  }
  return { ...(meta as PhaseMeta), runKey, keyVersion: 2 };
}

function sameRun(meta: Partial<PhaseMeta>, runKey: string, { legacyKey }: ResumeOptions): boolean {
  if (meta.keyVersion === 2) return meta.runKey === runKey;
  if (!legacyKey || typeof meta.epoch !== 'number') return false;
  for (let epochs = Math.max(1, meta.epoch); epochs <= maxLegacyEpochs; epochs++) {
    if (legacyKey(String(epochs)) === meta.runKey) return true;
  }
  return false;
}

/** Mean of each named loss over a list. */
export function meanLosses(list: Losses[]): Losses {
  const out: Record<string, number> = {};
  for (const losses of list) for (const [name, value] of Object.entries(losses)) out[name] = (out[name] ?? 0) + (value as number) / list.length;
  return out as unknown as Losses;
}
