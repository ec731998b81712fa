// The shape shared by stages that turn one compact dataset into another sample by sample (strip-alpha,
// fill-holes): read the manifest, process samples a few at a time, report progress, write the output
// directory atomically with its report.
import { resolve } from 'node:path';
import PQueue from 'p-queue';
import { StageError } from '../stage-error.js';
import { type StageEvents } from '../contract.js';
import { writeAtomically } from '../write-atomically.js';
import { optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { DatasetWriter, readManifest, type SampleInfo } from './dataset.js';
import { reportFlag, writeStageReport } from './stage-report.js';

/** Counts a per-sample step returns; summed over the dataset into the report. */
export type SampleCounts = Record<string, number>;

export interface MapDatasetOptions {
  inDir: string;
  outDir: string;
  reportFile: string | undefined;
  events: StageEvents;
  /** Samples in flight at once: sharp decodes/encodes on its thread pool while JS works on another. */
  concurrency?: number;
  /** Processes one sample: reads it from inDir, adds it to the writer, returns its counts. */
  step(info: SampleInfo, writer: DatasetWriter): Promise<SampleCounts>;
}

/**
 * Runs `work` on every item, `concurrency` at a time. On the first failure no new item starts, and the
 * failure is rethrown only after the items in flight have finished, so that the caller's writeAtomically
 * can remove its temporary output without a straggler writing into it afterwards.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const queue = new PQueue({ concurrency });
  let failure: { error: unknown } | undefined;
  for (const item of items) {
    void queue.add(async () => {
      if (failure) return;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
        queue.clear();
      }
    });
  }
  await queue.onIdle();
  if (failure) throw failure.error;
}

/** Runs `step` over every sample; returns the summed report (also written, and emitted as a metric). */
export async function mapDataset(options: MapDatasetOptions): Promise<SampleCounts> {
  const inDir = resolve(options.inDir);
  const outDir = resolve(options.outDir);
  if (inDir === outDir) throw new StageError(`--in and --out are the same directory (${inDir})`);
  const samples = await readManifest(inDir);
  if (samples.length === 0) throw new StageError(`${inDir}/manifest.json: the dataset has no samples`);
  const totals: SampleCounts = { images: 0 };
  await writeAtomically(outDir, async (tmp) => {
    const writer = new DatasetWriter(tmp);
    let done = 0;
    options.events.progress(0, samples.length, 'image');
    await forEachConcurrently(samples, options.concurrency ?? 3, async (info) => {
      const counts = await options.step(info, writer);
      for (const [key, value] of Object.entries(counts)) totals[key] = (totals[key] ?? 0) + value;
      totals['images']!++;
      options.events.progress(++done, samples.length, 'image');
    });
    await writer.finish();
    await writeStageReport(options.reportFile, tmp, totals, options.events);
  });
  return totals;
}

/**
 * A stage program with flags --in, --out and --report that maps a compact dataset sample by sample; `step`
 * gets the input directory with each sample.
 */
export function datasetMapStage(
  name: string,
  summary: string,
  step: (inDir: string, info: SampleInfo, writer: DatasetWriter) => Promise<SampleCounts>,
): StageProgram {
  return {
    name,
    summary,
    flags: {
      in: { type: 'string', required: true, description: 'compact dataset to read' },
      out: { type: 'string', required: true, description: 'compact dataset to write' },
      report: reportFlag,
    },
    async run(flags, { events }) {
      const inDir = stringFlag(flags, 'in');
      await mapDataset({
        inDir,
        outDir: stringFlag(flags, 'out'),
        reportFile: optionalStringFlag(flags, 'report'),
        events,
        step: (info, writer) => step(inDir, info, writer),
      });
    },
  };
}
