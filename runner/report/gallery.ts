// Images for the report's gallery: the first few image files of a folder, downscaled with sharp and embedded
// as data: URIs, so the page is one file that opens offline and stays a few MB at most.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const IMAGE = /\.(png|jpe?g|webp|tiff?|gif)$/i;

export interface Thumbnail {
  name: string;
  dataUri: string;
}

/** Image files of `dir` (not recursive), sorted by name; [] when the folder is missing. */
export function imageFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => IMAGE.test(name) && statSync(join(dir, name)).isFile()).sort();
  } catch {
    return [];
  }
}

/** sha256 over the names and bytes of these files: the same images in two experiments are shown once. */
export function imagesDigest(dir: string, names: readonly string[]): string {
  const hash = createHash('sha256');
  for (const name of names) hash.update(name).update('\0').update(readFileSync(join(dir, name)));
  return hash.digest('hex');
}

/** Each image at most `width` px wide as JPEG (an unreadable image is skipped, not fatal). */
export async function thumbnails(dir: string, names: readonly string[], width = 360): Promise<Thumbnail[]> {
  const { default: sharp } = await import('sharp');
  const result: Thumbnail[] = [];
  for (const name of names) {
    try {
      const jpeg = await sharp(join(dir, name)).resize({ width, withoutEnlargement: true }).flatten({ background: '#ffffff' }).jpeg({ quality: 82 }).toBuffer();
      result.push({ name, dataUri: `data:image/jpeg;base64,${jpeg.toString('base64')}` });
    } catch {
      // not an image sharp can read: leave it out of the gallery
    }
  }
  return result;
}
