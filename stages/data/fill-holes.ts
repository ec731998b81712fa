// dsb2018 fill-holes: compact dataset -> compact dataset whose nuclei have no interior holes.
// Each nucleus takes the background pixels it encloses (see fillLabelHoles); nuclei keep area >= 1. Images
// are copied byte for byte, once checked (present, whole, the right size).
import { checkSize, imagePath, labelsPath, readLabels } from '../imaging/dataset.js';
import { checkImageFile } from './checked-source.js';
import { datasetMapStage } from '../imaging/map-dataset.js';
import { fillLabelHoles } from '../imaging/morphology.js';

export const stage = datasetMapStage(
  'fill-holes',
  "Fill each nucleus' interior holes (background not connected to the border) in a compact dataset.",
  async (inDir, info, writer) => {
    const file = labelsPath(inDir, info.id);
    const labels = await readLabels(file);
    checkSize(file, labels, info);
    await checkImageFile(imagePath(inDir, info.id), info);
    const result = fillLabelHoles(labels);
    const changed = result.filledPixels > 0 || result.droppedEmpty > 0;
    // Unchanged label maps are copied rather than re-encoded.
    await writer.addCopy(inDir, info, changed ? { labels: result.labels } : {});
    return {
      imagesChanged: changed ? 1 : 0,
      nucleiFilled: result.nucleiFilled,
      filledPixels: result.filledPixels,
      enclosedOtherPixels: result.enclosedOtherPixels,
      droppedEmpty: result.droppedEmpty,
      nuclei: result.labels.count,
    };
  },
);
