// Builds tiny DSB-layout folders for the data-stage tests: images and masks drawn from character grids.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeImage } from '../../stages/imaging/dataset.js';
import { writeBinaryMask } from '../../stages/imaging/mask-file.js';
import { grid } from '../imaging/grid.js';

export function tempDir(prefix = 'data-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes <root>/<id>/images/<id>.png (RGBA, width x height) and one mask PNG per grid into masksDir. */
export async function writeDsbImage(
  root: string,
  id: string,
  width: number,
  height: number,
  masks: Record<string, string[]>,
  masksRoot = root,
): Promise<void> {
  mkdirSync(join(root, id, 'images'), { recursive: true });
  const data = new Uint8Array(width * height * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256));
  await writeImage(join(root, id, 'images', `${id}.png`), { width, height, channels: 4, data });
  await writeMasks(masksRoot, id, masks);
}

export async function writeMasks(root: string, id: string, masks: Record<string, string[]>): Promise<void> {
  mkdirSync(join(root, id, 'masks'), { recursive: true });
  for (const [name, rows] of Object.entries(masks)) {
    const { data, width, height } = grid(rows);
    await writeBinaryMask(join(root, id, 'masks', name), { width, height, data });
  }
}
