// classes.csv, the modality of each DSB2018 image: `filename,foreground,background` with filename `<id>.png`;
// an image's class is foreground + background (e.g. "whiteblack"). Read by fix-masks, split and evaluate.
import { readFile } from 'node:fs/promises';
import { StageError } from '../stage-error.js';
import { parseCsv } from './csv-table.js';

/** Image id -> class label; a missing column or an empty cell is a StageError naming file:line. */
export async function readClasses(file: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new StageError(`${file}: cannot read classes file (${(error as Error).message.split('\n')[0]})`);
  }
  const classes = new Map<string, string>();
  for (const { line, fields } of parseCsv(text, file, ['filename', 'foreground', 'background'])) {
    const [name, foreground, background] = [fields['filename'], fields['foreground'], fields['background']];
    if (!name || !foreground || !background) throw new StageError(`${file}:${line}: expected filename,foreground,background`);
    classes.set(name.replace(/\.png$/i, ''), foreground + background);
  }
  return classes;
}
