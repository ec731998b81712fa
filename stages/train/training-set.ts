// The samples a training phase sees, held in memory: the split's train ids of the main dataset plus every
// sample of the extra datasets (mosaics, external H&E pieces), and the validation ids. Decoding all PNGs once
// up front (a few hundred MB for the real set) keeps the step loop free of I/O.
import { StageError } from '../stage-error.js';
import { readIdList, readManifest, readSample, type Image8, type LabelMap } from '../imaging/dataset.js';

export interface TrainingSample {
  id: string;
  source: string;
  image: Image8;
  labels: LabelMap;
}

export interface DatasetSelection {
  /** Compact dataset directory. */
  dir: string;
  /** File of ids to take from it (one per line); all samples when absent. */
  idsFile?: string;
}

/** Loads the selected samples; an id missing from its dataset is a StageError naming both. */
export async function loadSamples(
  selections: readonly DatasetSelection[],
  onProgress?: (done: number, total: number) => void,
): Promise<TrainingSample[]> {
  const plan: Array<{ dir: string; id: string }> = [];
  for (const selection of selections) {
    const manifest = await readManifest(selection.dir);
    const known = new Set(manifest.map((info) => info.id));
    const ids = selection.idsFile ? await readIdList(selection.idsFile) : manifest.map((info) => info.id);
    const missing = ids.filter((id) => !known.has(id));
    if (missing.length > 0) {
      throw new StageError(
        `${selection.idsFile}: ${missing.length} id(s) not in ${selection.dir}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      );
    }
    for (const id of ids) plan.push({ dir: selection.dir, id });
  }
  const samples: TrainingSample[] = new Array(plan.length);
  let done = 0;
  // A few decodes in flight: sharp decodes on libuv's threads, so both cores help.
  const concurrency = 4;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plan.length) {
      const index = next++;
      const { dir, id } = plan[index]!;
      const sample = await readSample(dir, id);
      samples[index] = { id, source: sample.info.source, image: sample.image, labels: sample.labels };
      done += 1;
      onProgress?.(done, plan.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plan.length) }, worker));
  return samples;
}
