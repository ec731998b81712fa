// What the predict stage reads: the images of a compact dataset (labels ignored), or a DSB-layout folder of bare
// images (<dir>/<id>/images/<id>.png, as stage1_test ships), optionally narrowed to the ids of an id list.
// Listing checks every path up front, so a missing file fails before the model is even loaded.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StageError } from '../stage-error.js';
import { checkSize, imagePath, readIdList, readImage, readManifest, type Image8 } from '../imaging/dataset.js';

export interface PredictInput {
  id: string;
  file: string;
  /** The size the dataset manifest promises (compact datasets only); checked when the image is read. */
  expected?: { width: number; height: number };
}

/** Keeps only the listed ids, in the list's order; an id that is not there is an error naming FILE:line. */
async function selectIds(inputs: PredictInput[], idsFile: string | undefined, where: string): Promise<PredictInput[]> {
  if (!idsFile) return inputs;
  const byId = new Map(inputs.map((input) => [input.id, input]));
  const seen = new Set<string>();
  const ids = await readIdList(idsFile);
  return ids.map((id, index) => {
    const input = byId.get(id);
    if (!input) throw new StageError(`${idsFile}:${index + 1}: no image "${id}" in ${where}`);
    if (seen.has(id)) throw new StageError(`${idsFile}:${index + 1}: id "${id}" appears twice`);
    seen.add(id);
    return input;
  });
}

/** The images of a compact dataset (fix-masks, strip-alpha, … output). */
export async function datasetInputs(dir: string, idsFile?: string): Promise<PredictInput[]> {
  const samples = await readManifest(dir);
  const inputs = samples.map((info) => ({ id: info.id, file: imagePath(dir, info.id), expected: { width: info.width, height: info.height } }));
  const selected = await selectIds(inputs, idsFile, join(dir, 'manifest.json'));
  for (const input of selected) {
    if (!existsSync(input.file)) throw new StageError(`${input.file}: not found (listed in ${join(dir, 'manifest.json')})`);
  }
  return selected;
}

/** The images of a DSB-layout folder: every sub-folder <id> holding images/<id>.png (sorted by id). */
export function imageFolderInputs(dir: string): PredictInput[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new StageError(`${dir}: not a directory (--images expects <dir>/<id>/images/<id>.png)`);
  const inputs: PredictInput[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    // statSync follows symbolic links, so a folder of links to image folders works too.
    if (!statSync(join(dir, name)).isDirectory()) continue;
    const file = join(dir, name, 'images', `${name}.png`);
    if (!existsSync(file)) throw new StageError(`${file}: not found (every folder in ${dir} needs images/<id>.png)`);
    inputs.push({ id: name, file });
  }
  if (inputs.length === 0) throw new StageError(`${dir}: no image folders (<id>/images/<id>.png) found`);
  return inputs;
}

/** The DSB-layout folder's images, narrowed to an id list when one is given. */
export async function imageFolderSelection(dir: string, idsFile?: string): Promise<PredictInput[]> {
  return selectIds(imageFolderInputs(dir), idsFile, dir);
}

/** Reads an input's image; a corrupt file or one of another size than its manifest says is a StageError naming it. */
export async function readInputImage(input: PredictInput): Promise<Image8> {
  const image = await readImage(input.file);
  if (input.expected) checkSize(input.file, image, input.expected);
  return image;
}
