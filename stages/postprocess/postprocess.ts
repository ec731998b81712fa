// `dsb2018 postprocess --in preds --out preds2 [flags]`: the recipe's mask clean-up (see clean-masks.ts) on
// every image of a predictions directory; the output is a predictions directory whose masks do not overlap.
import { writeFile } from 'node:fs/promises';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, enumFlag, numberFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import {
  PredictionsWriter,
  decodeInstances,
  encodeInstances,
  readImagePredictions,
  readPredictionsManifest,
} from '../predict/predictions.js';
import { addCleanStats, cleanMasks, defaultCleanOptions, emptyCleanStats, type CleanOptions, type CleanStats, type PiecesRule } from './clean-masks.js';

const piecesRules: readonly PiecesRule[] = ['largest', 'delete', 'keep'];

/** The clean-up options from the stage's flags; a bad value is a StageError naming the flag. */
export function cleanOptionsFromFlags(flags: Parameters<StageProgram['run']>[0]): CleanOptions {
  return {
    minArea: numberFlag(flags, 'min-area'),
    fillHoles: booleanFlag(flags, 'fill-holes'),
    closing: booleanFlag(flags, 'closing'),
    removeOverlap: booleanFlag(flags, 'remove-overlap'),
    pieces: enumFlag(flags, 'pieces', piecesRules),
  };
}

/** Post-processes a predictions directory into another; returns the summed statistics. */
export async function postprocessDirectory(
  inDir: string,
  outDir: string,
  options: CleanOptions,
  onImage: (done: number, total: number) => void = () => {},
): Promise<CleanStats & { images: number }> {
  const manifest = await readPredictionsManifest(inDir);
  const total = emptyCleanStats();
  await writeAtomically(outDir, async (tmp) => {
    const writer = new PredictionsWriter(tmp);
    for (const [index, entry] of manifest.entries()) {
      const image = await readImagePredictions(inDir, entry.id, entry);
      const { instances, stats } = cleanMasks(decodeInstances(image), image.width, image.height, options);
      addCleanStats(total, stats);
      await writer.add({ ...image, instances: encodeInstances(instances, image.width, image.height) });
      onImage(index + 1, manifest.length);
    }
    await writer.finish();
  });
  return { ...total, images: manifest.length };
}

export const stage: StageProgram = {
  name: 'postprocess',
  summary:
    'Cleans predicted masks the recipe\'s way: drop masks of area <= min-area; by score, highest first: fill holes, ' +
    'closing with a 3x3 cross, remove pixels claimed by higher-scoring masks, keep the largest piece; drop small ' +
    'masks again. Output: a predictions directory with non-overlapping masks.',
  flags: {
    in: { type: 'string', required: true, description: 'predictions directory to read' },
    out: { type: 'string', required: true, description: 'predictions directory to write (replaced atomically)' },
    'min-area': { type: 'int', min: 0, default: defaultCleanOptions.minArea, description: 'drop masks with at most this many pixels (before and after)' },
    'fill-holes': { type: 'bool', default: true, description: 'fill holes in each mask' },
    closing: { type: 'bool', default: true, description: 'dilate then erode each mask with a 3x3 cross' },
    'remove-overlap': { type: 'bool', default: true, description: 'remove pixels kept by higher-scoring masks' },
    pieces: { type: 'enum', values: piecesRules, default: defaultCleanOptions.pieces, description: 'a mask left in several pieces: largest (keep it) | delete (the original code) | keep (all)' },
    metrics: { type: 'string', description: 'write the step counts (masks dropped, pixels filled, …) to this JSON file' },
  },
  async run(flags, context) {
    const options = cleanOptionsFromFlags(flags);
    const started = performance.now();
    const stats = await postprocessDirectory(stringFlag(flags, 'in'), stringFlag(flags, 'out'), options, (done, total) =>
      context.events.progress(done, total, 'image'),
    );
    const seconds = (performance.now() - started) / 1000;
    const metrics = { ...stats, secondsPerImage: stats.images > 0 ? seconds / stats.images : 0 };
    context.events.metric(metrics);
    const metricsFile = optionalStringFlag(flags, 'metrics');
    if (metricsFile) await writeAtomically(metricsFile, (tmp) => writeFile(tmp, JSON.stringify(metrics, null, 1) + '\n'));
  },
};
