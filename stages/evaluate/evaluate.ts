// `dsb2018 evaluate --pred DIR --truth DATASET_DIR [--ids val.txt] [--classes classes.csv] --metrics FILE
//   --overlays DIR --overlay-count 12 [--overlay-modalities a,b] --submission FILE [--submission-only [--images DIR]]`
// Scores predictions against a compact dataset's label maps with the Kaggle metric (metric.ts): overall, per
// image and per modality; draws overlay pictures for a sample of images spread over the score range; writes
// the predictions as a Kaggle submission. With --submission-only (the stage-1 test images, whose labels are
// not public) it only writes the submission, and prediction-only overlays when --images (the DSB-layout folder
// predict read, e.g. stage1_test) or --truth gives the images. --overlay-modalities draws every image of those
// modalities instead of a sample: the test images' hardest modalities, judged by eye where no label exists.
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, numberFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { imagePath, readIdList, readImage, readManifest, readSample, type SampleInfo } from '../imaging/dataset.js';
import { decodeInstances, readImagePredictions, readPredictionsManifest, type PredictionsEntry } from '../predict/predictions.js';
import { imageFolderInputs } from '../predict/predict-inputs.js';
import { cropsFromLabels } from './crop-mask.js';
import { datasetScore, scoreImage } from './metric.js';
import { overlayIndexHtml, writeOverlay, type OverlayEntry } from './overlay.js';
import { submissionCsv } from './submission.js';
import { readClasses } from '../imaging/classes-csv.js';

export interface ImageResult {
  id: string;
  modality: string;
  predicted: number;
  score?: number;
  truth?: number;
  /** TP / (TP + FP + FN) at IoU thresholds 0.50 … 0.95. */
  precisions?: number[];
  /** Nuclei found: predictions matched to a true nucleus at IoU > 0.5. */
  found?: number;
  /** Sum of the found nuclei's IoUs (their mean over `found`: how well they are outlined). */
  matchedIoUSum?: number;
}

/**
 * Where a score comes from, over a set of images: nuclei true, predicted and found at IoU > 0.5 (misses are
 * truth - found, false positives predicted - found), and the found ones' mean IoU (the outlines' quality, which
 * the higher thresholds weigh). Ablations read these to tell "finds more nuclei" from "outlines them better".
 */
export interface DetectionSummary {
  truth: number;
  predicted: number;
  found: number;
  /** Mean IoU of the found nuclei (0 when none is found). */
  matchedIoU: number;
}

export interface EvaluationReport extends Partial<DetectionSummary> {
  score?: number;
  images: number;
  modalities: Record<string, { score?: number; images: number } & Partial<DetectionSummary>>;
  perImage: ImageResult[];
}

/** Up to `count` results spread evenly over the score range (worst, …, median, …, best), or over the ids. */
export function pickOverlaySample(results: readonly ImageResult[], count: number): ImageResult[] {
  if (count <= 0 || results.length === 0) return [];
  const ordered = [...results].sort((a, b) => (a.score ?? 0) - (b.score ?? 0) || (a.id < b.id ? -1 : 1));
  if (count >= ordered.length) return ordered;
  const picked = new Set<number>();
  for (let k = 0; k < count; k++) picked.add(count === 1 ? 0 : Math.round((k * (ordered.length - 1)) / (count - 1)));
  return [...picked].map((index) => ordered[index]!);
}

interface EvaluateOptions {
  pred: string;
  truth?: string;
  ids?: string;
  classes?: string;
  submissionOnly: boolean;
  /** DSB-layout folder of the images (<id>/images/<id>.png): prediction-only overlays in submission-only mode. */
  images?: string;
  overlays?: string;
  overlayCount: number;
  /** Overlays of every image of these modalities instead of a sample over the score range. */
  overlayModalities?: string[];
  submission?: string;
  metrics?: string;
}

/** Runs the evaluation and writes its outputs (each atomically); returns the report. */
export async function evaluate(options: EvaluateOptions, onImage: (done: number, total: number) => void = () => {}): Promise<EvaluationReport> {
  const manifest = await readPredictionsManifest(options.pred);
  const byId = new Map(manifest.map((entry) => [entry.id, entry]));
  let entries: PredictionsEntry[] = manifest;
  if (options.ids) {
    const idsFile = options.ids;
    entries = (await readIdList(idsFile)).map((id, index) => {
      const entry = byId.get(id);
      if (!entry) throw new StageError(`${idsFile}:${index + 1}: image "${id}" has no predictions in ${options.pred}`);
      return entry;
    });
  }
  if (!options.submissionOnly && !options.truth) throw new StageError('missing required flag --truth (or pass --submission-only)');
  if (options.images && !options.submissionOnly) throw new StageError('--images is for --submission-only (scoring reads the images of --truth)');
  if (options.overlayModalities && !options.overlays) throw new StageError('--overlay-modalities needs --overlays (the folder to draw them in)');
  // Read only when there is something to look up: a test stage with no images (predict's --if-missing empty)
  // leaves no predictions, and then an absent image folder or classes file is no error.
  const imageFiles = options.images && entries.length > 0 ? new Map(imageFolderInputs(options.images).map((input) => [input.id, input.file])) : undefined;
  const truthInfo = options.truth ? new Map((await readManifest(options.truth)).map((info) => [info.id, info])) : undefined;
  if (truthInfo && options.truth) checkTruthCovers(entries, truthInfo, options.truth);
  const classes = options.classes && entries.length > 0 ? await readClasses(options.classes) : undefined;
  const modalityOf = (id: string): string => classes?.get(id) ?? truthInfo?.get(id)?.modality ?? 'unknown';

  const results: ImageResult[] = [];
  const rows: Array<{ id: string; rles: number[][] }> = [];
  for (const [index, entry] of entries.entries()) {
    const image = await readImagePredictions(options.pred, entry.id, entry);
    rows.push({ id: entry.id, rles: image.instances.map((instance) => instance.rle) });
    const result: ImageResult = { id: entry.id, modality: modalityOf(entry.id), predicted: image.instances.length };
    if (!options.submissionOnly) {
      const sample = await readSample(options.truth!, entry.id, truthInfo!.get(entry.id));
      const truth = cropsFromLabels(sample.labels);
      const predicted = decodeInstances(image, `${options.pred}/${entry.id}.json`).map((instance) => instance.mask);
      const scored = scoreImage(truth, predicted, image.width, image.height);
      Object.assign(result, {
        score: scored.score, truth: scored.truthCount, precisions: scored.precisions,
        predicted: scored.predictionCount, found: scored.truePositives[0]!, matchedIoUSum: scored.matchedIoUSum,
      });
    }
    results.push(result);
    onImage(index + 1, entries.length);
  }

  const report = summarise(results, options.submissionOnly);
  if (options.metrics) await writeAtomically(options.metrics, (tmp) => writeFile(tmp, JSON.stringify(report, null, 1) + '\n'));
  if (options.submission) await writeAtomically(options.submission, (tmp) => writeFile(tmp, submissionCsv(rows)));
  if (options.overlays) await writeOverlays(options, results, imageFiles);
  return report;
}

function checkTruthCovers(entries: readonly PredictionsEntry[], truth: Map<string, SampleInfo>, truthDir: string): void {
  for (const entry of entries) {
    const info = truth.get(entry.id);
    if (!info) throw new StageError(`${join(truthDir, 'manifest.json')}: no sample "${entry.id}" (it has predictions)`);
    if (info.width !== entry.width || info.height !== entry.height) {
      throw new StageError(`image "${entry.id}": predictions are ${entry.width}x${entry.height}, ${truthDir} says ${info.width}x${info.height}`);
    }
  }
}

/** Found, missed and false nuclei and the found ones' mean IoU over scored images. */
export function detectionSummary(results: readonly ImageResult[]): DetectionSummary {
  let truth = 0;
  let predicted = 0;
  let found = 0;
  let iouSum = 0;
  for (const result of results) {
    truth += result.truth!;
    predicted += result.predicted;
    found += result.found!;
    iouSum += result.matchedIoUSum!;
  }
  return { truth, predicted, found, matchedIoU: found > 0 ? iouSum / found : 0 };
}

function summarise(results: readonly ImageResult[], submissionOnly: boolean): EvaluationReport {
  const modalities: EvaluationReport['modalities'] = {};
  for (const name of [...new Set(results.map((result) => result.modality))].sort()) {
    const members = results.filter((result) => result.modality === name);
    modalities[name] = { images: members.length, ...(submissionOnly ? {} : { score: datasetScore(members.map((m) => m.score!)), ...detectionSummary(members) }) };
  }
  const scored = !submissionOnly && results.length > 0;
  return {
    ...(scored ? { score: datasetScore(results.map((result) => result.score!)), ...detectionSummary(results) } : {}),
    images: results.length, modalities, perImage: [...results],
  };
}

/** The images to draw: every image of the listed modalities, else a sample spread over the score range. */
function overlayPicks(options: EvaluateOptions, results: readonly ImageResult[]): ImageResult[] {
  if (!options.overlayModalities) return pickOverlaySample(results, options.overlayCount);
  const wanted = new Set(options.overlayModalities);
  return results.filter((result) => wanted.has(result.modality)).sort((a, b) => (a.modality < b.modality ? -1 : a.modality > b.modality ? 1 : a.id < b.id ? -1 : 1));
}

async function writeOverlays(options: EvaluateOptions, results: readonly ImageResult[], imageFiles: Map<string, string> | undefined): Promise<void> {
  const dir = options.overlays!;
  await writeAtomically(dir, async (tmp) => {
    await mkdir(tmp, { recursive: true });
    const entries: OverlayEntry[] = [];
    // Without the images (submission-only, no --images and no --truth) there is nothing to draw on: an empty index.
    const picked = options.truth || imageFiles ? overlayPicks(options, results) : [];
    for (const result of picked) {
      const image = await readImagePredictions(options.pred, result.id);
      const predicted = decodeInstances(image).map((instance) => instance.mask);
      let truth: ReturnType<typeof cropsFromLabels> = [];
      let pixels;
      if (options.submissionOnly) {
        const file = imageFiles ? imageFiles.get(result.id) : imagePath(options.truth!, result.id);
        if (!file) throw new StageError(`${options.images}: no image folder for "${result.id}" (it has predictions)`);
        pixels = await readImage(file);
      } else {
        const sample = await readSample(options.truth!, result.id);
        pixels = sample.image;
        truth = cropsFromLabels(sample.labels);
      }
      const file = `${result.id}.png`;
      await writeOverlay(join(tmp, file), pixels, truth, predicted);
      entries.push({ id: result.id, file, modality: result.modality, predicted: result.predicted, ...(result.score !== undefined ? { score: result.score, truth: result.truth! } : {}) });
    }
    await writeFile(join(tmp, 'index.json'), JSON.stringify(entries, null, 1) + '\n');
    await writeFile(join(tmp, 'index.html'), overlayIndexHtml(entries, `Predictions ${options.pred}`));
  });
}

export const stage: StageProgram = {
  name: 'evaluate',
  summary:
    'Scores predictions against a compact dataset with the Kaggle DSB2018 metric (overall, per image, per ' +
    'modality), draws overlay pictures (truth red, predictions blue) for a sample of images, and writes a ' +
    'Kaggle submission CSV. --submission-only skips scoring (for test images without labels).',
  flags: {
    pred: { type: 'string', required: true, description: 'predictions directory (predict or postprocess output)' },
    truth: { type: 'string', description: 'compact dataset with the true label maps (required unless --submission-only; then only its images are used, for overlays)' },
    ids: { type: 'string', description: 'id list (one per line) to evaluate; default: every image with predictions' },
    classes: { type: 'string', description: 'classes.csv (filename,foreground,background): modality = foreground+background; default: the dataset manifest\'s modality field' },
    metrics: { type: 'string', description: 'write {score, images, modalities, perImage} to this JSON file' },
    overlays: { type: 'string', description: 'write overlay PNGs and index.html/index.json to this directory' },
    'overlay-count': { type: 'int', min: 0, default: 12, description: 'how many overlay pictures (spread over the score range)' },
    'overlay-modalities': { type: 'string', description: 'comma-separated modalities (foreground+background, e.g. purpleyellow): overlays of every image of these instead of a sample' },
    images: { type: 'string', description: 'with --submission-only: DSB-layout folder of the images (<id>/images/<id>.png, e.g. stage1_test) for prediction-only overlays' },
    submission: { type: 'string', description: 'write the predictions as a Kaggle submission CSV (ImageId,EncodedPixels)' },
    'submission-only': { type: 'boolean', default: false, description: 'no scoring: only the submission (and prediction-only overlays)' },
  },
  async run(flags, context) {
    const overlayCount = numberFlag(flags, 'overlay-count');
    const optional = (name: string): string | undefined => optionalStringFlag(flags, name);
    const options: EvaluateOptions = {
      pred: stringFlag(flags, 'pred'),
      submissionOnly: booleanFlag(flags, 'submission-only'),
      overlayCount,
    };
    for (const [key, flag] of [['truth', 'truth'], ['ids', 'ids'], ['classes', 'classes'], ['images', 'images'], ['overlays', 'overlays'], ['submission', 'submission'], ['metrics', 'metrics']] as const) {
      const value = optional(flag);
      if (value !== undefined) options[key] = value;
    }
    const modalities = optional('overlay-modalities');
    if (modalities !== undefined) {
      const list = modalities.split(',').map((m) => m.trim()).filter(Boolean);
      if (list.length === 0) throw new StageError('--overlay-modalities: expected a comma-separated list of modalities, e.g. purpleyellow,purplewhite');
      options.overlayModalities = list;
    }
    const report = await evaluate(options, (done, total) => context.events.progress(done, total, 'image'));
    const summary: Record<string, number> = { images: report.images };
    if (report.score !== undefined) summary['score'] = report.score;
    for (const [name, modality] of Object.entries(report.modalities)) if (modality.score !== undefined) summary[`score_${name}`] = modality.score;
    context.events.metric(summary);
    if (report.score !== undefined) process.stdout.write(`score: ${report.score.toFixed(6)} over ${report.images} images\n`);
  },
};
