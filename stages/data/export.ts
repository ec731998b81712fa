// dsb2018 export: compact dataset -> DSB layout, `<out>/<id>/images/<id>.png` and one 0/255 PNG per nucleus in
// `<out>/<id>/masks/<id>_<label>.png` (label zero-padded to 4 digits so that sorted order is label order).
import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import { optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { imagePath, labelsPath, readIdList, readLabels, readManifest } from '../imaging/dataset.js';
import { writeBinaryMask } from '../imaging/mask-file.js';
import { reportFlag, writeStageReport } from '../imaging/stage-report.js';
import { forEachConcurrently } from '../imaging/map-dataset.js';

export const stage: StageProgram = {
  name: 'export',
  summary: 'Write a compact dataset (or the ids of --ids) back in the DSB layout: one PNG per nucleus.',
  flags: {
    in: { type: 'string', required: true, description: 'compact dataset to read' },
    out: { type: 'string', required: true, description: 'DSB-layout directory to write' },
    ids: { type: 'string', description: 'file of ids to export, one per line (default: all)' },
    report: reportFlag,
  },
  async run(flags, { events }) {
    const inDir = resolve(stringFlag(flags, 'in'));
    const samples = await readManifest(inDir);
    const idsFile = optionalStringFlag(flags, 'ids');
    let chosen = samples;
    if (idsFile !== undefined) {
      const wanted = await readIdList(idsFile);
      const known = new Set(samples.map((s) => s.id));
      const unknown = wanted.filter((id) => !known.has(id));
      if (unknown.length > 0) {
        throw new StageError(`${idsFile}: ${unknown.length} id(s) not in ${inDir}: ${unknown.slice(0, 5).join(', ')}`);
      }
      const set = new Set(wanted);
      chosen = samples.filter((s) => set.has(s.id));
    }
    if (chosen.length === 0) throw new StageError(`nothing to export from ${inDir}`);
    const totals = { images: 0, masks: 0 };
    await writeAtomically(resolve(stringFlag(flags, 'out')), async (tmp) => {
      await forEachConcurrently(chosen, 3, async (info) => {
        const labels = await readLabels(labelsPath(inDir, info.id));
        const folder = join(tmp, info.id);
        await mkdir(join(folder, 'images'), { recursive: true });
        await mkdir(join(folder, 'masks'), { recursive: true });
        await copyFile(imagePath(inDir, info.id), join(folder, 'images', `${info.id}.png`));
        const size = labels.width * labels.height;
        for (let label = 1; label <= labels.count; label++) {
          const data = new Uint8Array(size);
          let area = 0;
          for (let p = 0; p < size; p++) if (labels.data[p] === label) (data[p] = 1), area++;
          if (area === 0) continue;
          const name = `${info.id}_${String(label).padStart(4, '0')}.png`;
          await writeBinaryMask(join(folder, 'masks', name), { width: labels.width, height: labels.height, data });
          totals.masks++;
        }
        totals.images++;
        events.progress(totals.images, chosen.length, 'image');
      });
      await writeStageReport(optionalStringFlag(flags, 'report'), tmp, totals, events);
    });
  },
};
