// `dsb2018 mosaic`: finds training images that are tiles of one larger image, by border continuity, and
// writes each 2x2 set as one mosaic sample with the nuclei cut by the seams joined again.
//
//   <out>/manifest.json, images/, labels/   compact dataset, ids mosaic_<k>, source "mosaic"
//   <out>/mosaics.csv                        mosaic_id,tile_0,tile_1,tile_2,tile_3 (TL, TR, BL, BR)
//   <out>/report.json                        counts, and why candidates were rejected (or --report FILE)
//
// Only the ids in --ids are looked at: the pipeline passes the training ids, so no validation tile can end
// up inside a training mosaic.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, numberFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { checkSize, DatasetWriter, imagePath, labelsPath, readIdList, readImage, readManifest, readSample, type SampleInfo } from '../imaging/dataset.js';
import { checkLabelsFile } from './checked-source.js';
import { reportFlag, writeEmptyDataset, writeStageReport } from '../imaging/stage-report.js';
import { findSeams, tileEdges, type TileEdges } from './mosaic-borders.js';
import { chooseMosaics } from './mosaic-search.js';
import { mergeMosaicLabels, stackImages } from './mosaic-merge.js';

/** The samples to consider: all of the manifest, or those named in the id list (each must exist). */
async function selectSamples(inDir: string, idsFile: string | undefined): Promise<SampleInfo[]> {
  const manifest = await readManifest(inDir);
  if (idsFile === undefined) return manifest;
  const byId = new Map(manifest.map((info) => [info.id, info]));
  const ids = await readIdList(idsFile);
  return ids.map((id, line) => {
    const info = byId.get(id);
    if (!info) throw new StageError(`${idsFile}:${line + 1}: id "${id}" is not in ${join(inDir, 'manifest.json')}`);
    return info;
  });
}

function positiveNumber(flags: Parameters<typeof numberFlag>[0], name: string): number {
  const value = numberFlag(flags, name);
  if (!(value > 0)) throw new StageError(`flag --${name}: ${value} is not a positive number`);
  return value;
}

export const stage: StageProgram = {
  name: 'mosaic',
  summary:
    'Finds sets of 4 images that tile one larger image (matching borders), stacks them 2x2 and joins the ' +
    'nuclei cut by the seams; writes a compact dataset (mosaic_<k>) and mosaics.csv.',
  flags: {
    in: { type: 'string', description: 'input compact dataset (after fill-holes)', required: true },
    ids: { type: 'string', description: 'id list (train.txt): only these samples may become tiles (default: all)' },
    out: { type: 'string', description: 'output compact dataset directory', required: true },
    enabled: { type: 'bool', default: true, description: 'false: write an empty dataset (an ablation without mosaics)' },
    'max-seam-ratio': {
      type: 'string',
      description: 'largest seam difference / typical inner line-to-line difference for a seam to count',
      default: '1.5',
    },
    'min-margin': {
      type: 'string',
      description: 'how many times worse the second-best partner of an edge must score for a match to count',
      default: '2',
    },
    report: reportFlag,
  },
  async run(flags, { events }) {
    const inDir = stringFlag(flags, 'in');
    const out = stringFlag(flags, 'out');
    if (!booleanFlag(flags, 'enabled')) {
      await writeEmptyDataset(out, optionalStringFlag(flags, 'report'), { mosaics: 0, disabled: 1 }, events, 'mosaic: disabled (--enabled false): writing an empty dataset');
      return;
    }
    const maxSeamRatio = positiveNumber(flags, 'max-seam-ratio');
    const minMargin = positiveNumber(flags, 'min-margin');
    if (minMargin < 1) throw new StageError(`flag --min-margin: ${minMargin} is below 1`);
    const samples = await selectSamples(inDir, optionalStringFlag(flags, 'ids'));

    // Phase 1: border lines of every candidate tile (only the borders stay in memory).
    const tiles: TileEdges[] = [];
    for (const [index, info] of samples.entries()) {
      const file = imagePath(inDir, info.id);
      const image = await readImage(file);
      checkSize(file, image, info);
      // Every label map is checked now, not only those of the tiles chosen later: a damaged input dataset
      // fails here rather than passing with exit 0 because its damaged sample happened to be no tile.
      await checkLabelsFile(labelsPath(inDir, info.id), info);
      tiles.push(tileEdges(info.id, image, info.modality));
      events.progress(index + 1, samples.length, 'image', 'borders');
    }
    const seams = findSeams(tiles, { maxSeamRatio, minMargin });
    const search = chooseMosaics(seams, maxSeamRatio);
    // Deterministic numbering: by the top-left tile's id.
    const chosen = search.mosaics
      .map((m) => ({ ...m, ids: m.tiles.map((t) => tiles[t]!.id) }))
      .sort((p, q) => (p.ids[0]! < q.ids[0]! ? -1 : 1));

    await writeAtomically(out, async (tmp) => {
      const writer = new DatasetWriter(tmp);
      const rows = ['mosaic_id,tile_0,tile_1,tile_2,tile_3'];
      let mergedAcrossSeams = 0;
      const digits = Math.max(2, String(chosen.length - 1).length);
      for (const [k, mosaic] of chosen.entries()) {
        const id = `mosaic_${String(k).padStart(digits, '0')}`;
        const parts = await Promise.all(mosaic.ids.map((tileId) => readSample(inDir, tileId, samples.find((s) => s.id === tileId))));
        const [a, b, c, d] = parts as [typeof parts[0], typeof parts[0], typeof parts[0], typeof parts[0]];
        const image = stackImages([a.image, b.image, c.image, d.image]);
        const { labels, merged } = mergeMosaicLabels([a.labels, b.labels, c.labels, d.labels]);
        mergedAcrossSeams += merged;
        await writer.add({
          info: {
            id,
            width: image.width,
            height: image.height,
            channels: image.channels,
            nuclei: labels.count,
            overlapPixels: parts.reduce((sum, part) => sum + part.info.overlapPixels, 0),
            source: 'mosaic',
            ...(a.info.modality !== undefined ? { modality: a.info.modality } : {}),
          },
          image,
          labels,
        });
        rows.push([id, ...mosaic.ids].join(','));
        events.progress(k + 1, chosen.length, 'mosaic', 'stacking');
      }
      await writer.finish();
      await writeFile(join(tmp, 'mosaics.csv'), rows.join('\n') + '\n');
      const edgeCounts: Record<string, number> = {};
      for (const direction of ['right', 'below'] as const) {
        for (const [verdict, count] of Object.entries(seams.verdicts[direction])) edgeCounts[`edges_${direction}_${verdict}`] = count;
      }
      const rejectedCounts: Record<string, number> = {};
      for (const [reason, count] of Object.entries(search.rejected)) rejectedCounts[`candidates_rejected_${reason}`] = count;
      await writeStageReport(
        optionalStringFlag(flags, 'report'),
        tmp,
        {
          tilesConsidered: samples.length,
          mosaics: chosen.length,
          mosaicsWithFourAcceptedSeams: chosen.filter((m) => m.acceptedSeams === 4).length,
          tilesUsed: 4 * chosen.length,
          candidates: search.candidates,
          ...rejectedCounts,
          ...edgeCounts,
          nucleiMergedAcrossSeams: mergedAcrossSeams,
          maxSeamRatio,
          minMargin,
        },
        events,
      );
    });
  },
};
