// A file a data stage copies byte for byte (without decoding it) is still checked first: it exists, decodes to
// the end, and has the size the manifest gives. Otherwise a truncated or missing file would be carried into
// the next dataset with exit 0, to fail far from its cause.
import { access } from 'node:fs/promises';
import { StageError } from '../stage-error.js';
import { checkSize, readImage, readLabels, type SampleInfo } from '../imaging/dataset.js';

async function mustExist(file: string, what: string, id: string): Promise<void> {
  try {
    await access(file);
  } catch {
    throw new StageError(`${file}: missing (the ${what} of sample "${id}" in the manifest); rebuild the dataset that wrote it`);
  }
}

/** Checks the label map a stage is about to copy unchanged. */
export async function checkLabelsFile(file: string, info: SampleInfo): Promise<void> {
  await mustExist(file, 'label map', info.id);
  checkSize(file, await readLabels(file), info);
}

/** Checks the image a stage is about to copy unchanged. */
export async function checkImageFile(file: string, info: SampleInfo): Promise<void> {
  await mustExist(file, 'image', info.id);
  checkSize(file, await readImage(file), info);
}
