// `dsb2018 score --submission sub.csv --solution solution.csv [--json] [--metrics FILE]`: the Kaggle DSB2018
// score of any submission against a solution file in the released format (see submission.ts and metric.ts).
import { writeFile } from 'node:fs/promises';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { cropFromRle } from './crop-mask.js';
import { datasetScore, scoreImage } from './metric.js';
import { readSolution, readSubmission, type CsvImage } from './submission.js';

export interface ScoreReport {
  score: number;
  /** The score over the images of each Usage value of the solution (Public, Private), when it has one. */
  usage: Record<string, number>;
  images: Array<{ id: string; score: number; truth: number; predicted: number; usage?: string }>;
}

/** Scores a submission file against a solution file. */
export async function scoreFiles(submissionFile: string, solutionFile: string): Promise<ScoreReport> {
  const solution = await readSolution(solutionFile);
  const submission = await readSubmission(submissionFile, solution);
  const images: ScoreReport['images'] = [];
  for (const truth of [...solution.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const predicted = submission.get(truth.id)!;
    const { score } = scoreImage(crops(truth), crops(predicted), truth.width, truth.height);
    images.push({ id: truth.id, score, truth: truth.rles.length, predicted: predicted.rles.length, ...(truth.usage ? { usage: truth.usage } : {}) });
  }
  const usage: Record<string, number> = {};
  for (const name of [...new Set(images.flatMap((image) => (image.usage ? [image.usage] : [])))].sort()) {
    usage[name] = datasetScore(images.filter((image) => image.usage === name).map((image) => image.score));
  }
  return { score: datasetScore(images.map((image) => image.score)), usage, images };
}

function crops(image: CsvImage) {
  return image.rles.map((runs, k) => cropFromRle(runs, image.width, image.height, image.rows[k]!));
}

export const stage: StageProgram = {
  name: 'score',
  summary:
    'Scores a Kaggle-format submission (ImageId,EncodedPixels) against a solution file ' +
    '(ImageId,EncodedPixels,Height,Width,Usage) with the DSB2018 metric: mean over images of the mean over IoU ' +
    'thresholds 0.50..0.95 of TP / (TP + FP + FN). Prints "score: <value>".',
  flags: {
    submission: { type: 'string', required: true, description: 'the submission CSV to score' },
    solution: { type: 'string', required: true, description: 'the solution CSV (Kaggle released format)' },
    json: { type: 'boolean', default: false, description: 'print the score, per-Usage scores and per-image scores as JSON' },
    metrics: { type: 'string', description: 'also write {score, usage} to this JSON file' },
  },
  async run(flags, context) {
    const report = await scoreFiles(stringFlag(flags, 'submission'), stringFlag(flags, 'solution'));
    const summary = { score: report.score, ...Object.fromEntries(Object.entries(report.usage).map(([k, v]) => [`score_${k.toLowerCase()}`, v])) };
    context.events.metric(summary);
    const metricsFile = optionalStringFlag(flags, 'metrics');
    if (metricsFile) await writeAtomically(metricsFile, (tmp) => writeFile(tmp, JSON.stringify(summary, null, 1) + '\n'));
    if (booleanFlag(flags, 'json')) process.stdout.write(JSON.stringify(report, null, 1) + '\n');
    else process.stdout.write(`score: ${report.score.toFixed(6)}\n`);
  },
};
