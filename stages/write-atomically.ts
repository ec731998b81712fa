// How every stage writes an output: at a temporary sibling path, renamed into place only when complete.
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a whole output (file or directory) at a temporary sibling path and renames it into place only when
 * `write` succeeded, so an interrupted or failed stage never leaves a half-written output behind.
 */
export async function writeAtomically<T>(finalPath: string, write: (tmpPath: string) => Promise<T>): Promise<T> {
  const tmp = join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(finalPath), { recursive: true });
  try {
    const result = await write(tmp);
    rmSync(finalPath, { recursive: true, force: true });
    renameSync(tmp, finalPath);
    return result;
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
}
