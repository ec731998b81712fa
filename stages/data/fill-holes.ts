// dsb2018 fill-holes: compact dataset -> compact dataset whose nuclei have no interior holes.
// Each nucleus takes the background pixels it encloses (see fillLabelHoles); nuclei keep area >= 1. Images
// are copied byte for byte.
import { optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { labelsPath, readLabels } from '../imaging/dataset.js';
import { mapDataset } from '../imaging/map-dataset.js';
import { fillLabelHoles } from '../imaging/morphology.js';
import { reportFlag } from '../imaging/stage-report.js';
import { StageError } from '../contract.js';

export const stage: StageProgram = {
  name: 'fill-holes',
  summary: "Fill each nucleus' interior holes (background not connected to the border) in a compact dataset.",
  flags: {
    in: { type: 'string', required: true, description: 'compact dataset to read' },
    out: { type: 'string', required: true, description: 'compact dataset to write' },
    report: reportFlag,
  },
  async run(flags, { events }) {
    const inDir = stringFlag(flags, 'in');
    await mapDataset({
      inDir,
      outDir: stringFlag(flags, 'out'),
      reportFile: optionalStringFlag(flags, 'report'),
      events,
      async step(info, writer) {
        const file = labelsPath(inDir, info.id);
        const labels = await readLabels(file);
        if (labels.width !== info.width || labels.height !== info.height) {
          throw new StageError(`${file}: is ${labels.width}x${labels.height}, the manifest says ${info.width}x${info.height}`);
        }
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
    });
  },
};
