// dsb2018 split: a compact dataset's ids -> train.txt / val.txt, stratified by imaging modality.
//
// Each class (foreground + background colour from classes.csv, e.g. "whiteblack"; or SampleInfo.modality,
// else SampleInfo.source, when no --classes file is given) sends round(n * fraction) of its ids to validation,
// chosen by a seeded shuffle (seedrandom), so every class keeps its share within one image and the same seed
// always gives the same lists. With the fixed stage1_train (664 ids) and 0.1 this gives 597 / 67.
// --holdout sends every id of the named classes to validation instead: the held-out-modality experiment (how
// well does training generalise to a stain it never saw?).
import { writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import seedrandom from 'seedrandom';
import { StageError } from '../stage-error.js';
import { shuffled } from '../shuffled.js';
import { writeAtomically } from '../write-atomically.js';
import { numberFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { readClasses } from '../imaging/classes-csv.js';
import { idListText, readManifest } from '../imaging/dataset.js';
import { reportFlag, writeStageReport } from '../imaging/stage-report.js';

export interface Split {
  train: string[];
  val: string[];
  /** class -> [train count, val count] */
  perClass: Record<string, [number, number]>;
}

/**
 * Stratified split: per class (in sorted class order, ids sorted first), round(n * fraction) to validation;
 * every id of a held-out class to validation.
 */
export function stratifiedSplit(classOf: ReadonlyMap<string, string>, valFraction: number, seed: string, holdout: ReadonlySet<string> = new Set()): Split {
  const byClass = new Map<string, string[]>();
  for (const [id, label] of classOf) byClass.set(label, [...(byClass.get(label) ?? []), id]);
  const random = seedrandom(seed);
  const train: string[] = [];
  const val: string[] = [];
  const perClass: Record<string, [number, number]> = {};
  for (const label of [...byClass.keys()].sort()) {
    const ids = shuffled(byClass.get(label)!.sort(), random);
    const valCount = holdout.has(label) ? ids.length : Math.round(ids.length * valFraction);
    val.push(...ids.slice(0, valCount));
    train.push(...ids.slice(valCount));
    perClass[label] = [ids.length - valCount, valCount];
  }
  return { train: train.sort(), val: val.sort(), perClass };
}

export const stage: StageProgram = {
  name: 'split',
  summary: 'Split a compact dataset into train.txt and val.txt, stratified by imaging modality, reproducibly.',
  flags: {
    in: { type: 'string', required: true, description: 'compact dataset whose ids are split' },
    classes: {
      type: 'string',
      description: 'classes.csv (filename,foreground,background); without it: SampleInfo.modality, else source',
    },
    'val-fraction': { type: 'string', default: '0.1', description: 'share of each class sent to validation' },
    seed: { type: 'string', default: '0', description: 'seed of the shuffle (same seed, same lists)' },
    holdout: { type: 'string', default: '', description: 'comma-separated classes sent to validation whole (none in training), e.g. purplepurple' },
    out: { type: 'string', required: true, description: 'directory to write train.txt, val.txt (and report.json)' },
    report: reportFlag,
  },
  async run(flags, { events }) {
    const inDir = resolve(stringFlag(flags, 'in'));
    const fraction = numberFlag(flags, 'val-fraction');
    if (!(fraction >= 0 && fraction < 1)) throw new StageError(`flag --val-fraction: ${fraction} is not in [0, 1)`);
    const seed = stringFlag(flags, 'seed');
    const samples = await readManifest(inDir);
    if (samples.length === 0) throw new StageError(`${join(inDir, 'manifest.json')}: the dataset has no samples`);
    const classesFile = optionalStringFlag(flags, 'classes');
    const classOf = new Map<string, string>();
    if (classesFile !== undefined) {
      const classes = await readClasses(classesFile);
      const missing = samples.map((s) => s.id).filter((id) => !classes.has(id));
      if (missing.length > 0) {
        const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, … (${missing.length} in all)` : '');
        throw new StageError(`${classesFile}: no class for ${missing.length} id(s) of ${inDir}: ${shown}`);
      }
      for (const sample of samples) classOf.set(sample.id, classes.get(sample.id)!);
    } else {
      for (const sample of samples) classOf.set(sample.id, sample.modality ?? sample.source);
    }
    const holdout = new Set(stringFlag(flags, 'holdout').split(',').map((c) => c.trim()).filter((c) => c !== ''));
    const known = new Set(classOf.values());
    const unknown = [...holdout].filter((c) => !known.has(c));
    if (unknown.length > 0) throw new StageError(`flag --holdout: no class ${unknown.join(', ')} in ${inDir} (classes: ${[...known].sort().join(', ')})`);
    const split = stratifiedSplit(classOf, fraction, seed, holdout);
    events.progress(samples.length, samples.length, 'image');
    const outDir = resolve(stringFlag(flags, 'out'));
    await writeAtomically(outDir, async (tmp) => {
      await mkdir(tmp, { recursive: true });
      await writeFile(join(tmp, 'train.txt'), idListText(split.train));
      await writeFile(join(tmp, 'val.txt'), idListText(split.val));
      const report: Record<string, unknown> = { images: samples.length, train: split.train.length, val: split.val.length };
      for (const [label, [train, val]] of Object.entries(split.perClass)) {
        report[`train_${label}`] = train;
        report[`val_${label}`] = val;
      }
      await writeStageReport(optionalStringFlag(flags, 'report'), tmp, report, events);
    });
  },
};
