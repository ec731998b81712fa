// `runner report [ids…] [--out report.html] [--baseline id] [--title text]`: the experiments of a workspace as
// one self-contained HTML page (see runner/report/page.ts), written to a temp file and renamed into place.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Values } from './values.js';
import { compareExperiments } from '../experiments/compare.js';
import { displayPath } from '../spec/pipeline.js';
import { reportHtml } from '../report/page.js';
import { chooseExperiments } from './compare.js';
import { experimentsWorkspace } from './exp.js';

export async function reportCommand(refs: string[], values: Values): Promise<number> {
  const workspace = experimentsWorkspace(values);
  const { records, baseline } = chooseExperiments(workspace, refs, typeof values['baseline'] === 'string' ? values['baseline'] : undefined, 'report');
  // A metric equal in every experiment says nothing about the ablation: left out unless asked for.
  const patterns = values['metric'];
  const comparison = compareExperiments(records, baseline.id, {
    ...(Array.isArray(patterns) ? { metricPatterns: patterns as string[] } : {}),
    changedOnly: records.length > 1 && values['all-metrics'] !== true,
  });
  const title = typeof values['title'] === 'string' ? values['title'] : `Experiments: ${[...new Set(records.map((r) => r.pipeline))].join(', ')}`;
  const html = await reportHtml({ title, workspace, records, baseline, comparison });
  const out = resolve(typeof values['out'] === 'string' ? values['out'] : 'report.html');
  mkdirSync(dirname(out), { recursive: true });
  writeFileAtomic.sync(out, html);
  const size = statSync(out).size;
  process.stdout.write(`wrote ${displayPath(out)} (${records.length} experiments, ${(size / 1024).toFixed(0)} KiB)\n`);
  return 0;
}
