// dsb2018 strip-alpha: compact dataset -> compact dataset whose images are all 8-bit RGB.
// RGBA loses its alpha channel (the DSB images are opaque, as the original's `[:, :, :3]` assumed); grey is
// repeated into R, G and B. Label maps are copied byte for byte, once checked (present, whole, the right size).
import sharp from 'sharp';
import { checkSize, imagePath, labelsPath, readImage, type Image8 } from '../imaging/dataset.js';
import { checkLabelsFile } from './checked-source.js';
import { datasetMapStage } from '../imaging/map-dataset.js';

sharp.cache(false);

/** An RGB copy of the image: alpha dropped, grey repeated into three channels. [h*w*c] -> [h*w*3]. */
export function toRgb(image: Image8): Image8 {
  const { width, height, channels, data } = image;
  if (channels === 3) return image;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, s = 0, d = 0; p < width * height; p++, s += channels, d += 3) {
    rgb[d] = data[s]!;
    rgb[d + 1] = data[channels === 1 ? s : s + 1]!;
    rgb[d + 2] = data[channels === 1 ? s : s + 2]!;
  }
  return { width, height, channels: 3, data: rgb };
}

export const stage = datasetMapStage(
  'strip-alpha',
  'Convert every image of a compact dataset to 8-bit RGB (drop alpha, expand grey); labels are copied.',
  async (inDir, info, writer) => {
    const file = imagePath(inDir, info.id);
    const image = await readImage(file);
    checkSize(file, image, info);
    await checkLabelsFile(labelsPath(inDir, info.id), info);
    await writer.addCopy(inDir, info, { image: toRgb(image) });
    return { alphaDropped: image.channels === 4 ? 1 : 0, greyExpanded: image.channels === 1 ? 1 : 0 };
  },
);
