// The report convention shared by the data stages: a small JSON file of counts, written to `--report FILE`
// or, by default, to `<out>/report.json` inside the stage's (atomically written) output directory, and the
// same counts emitted as one metric event so the runner can show and record them.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type StageEvents } from '../contract.js';
import { writeAtomically } from '../write-atomically.js';
import type { FlagSpec } from '../program.js';

/** The `--report` flag every data stage declares. */
export const reportFlag: FlagSpec = {
  type: 'string',
  description: 'where to write the JSON report of counts (default: <out>/report.json)',
};

/**
 * Writes the report and emits its numeric fields as a metric event. Call inside writeAtomically(out, tmp => …)
 * with tmpOut = that temporary directory, so the default report lands with the rest of the output.
 */
export async function writeStageReport(
  reportFile: string | undefined,
  tmpOut: string,
  report: Record<string, unknown>,
  events: StageEvents,
): Promise<void> {
  const text = JSON.stringify(report, null, 2) + '\n';
  if (reportFile === undefined) await writeFile(join(tmpOut, 'report.json'), text);
  else await writeAtomically(reportFile, (tmp) => writeFile(tmp, text));
  const metrics: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(report)) if (typeof value === 'number') metrics[key] = value;
  events.metric(metrics);
}

/**
 * Writes an empty compact dataset (with its report) to `out`: what a stage produces when it is switched off for
 * an ablation or its optional input is absent, so the stages downstream run unchanged.
 */
export async function writeEmptyDataset(
  out: string,
  reportFile: string | undefined,
  report: Record<string, unknown>,
  events: StageEvents,
  why: string,
): Promise<void> {
  events.log(why);
  const { DatasetWriter } = await import('./dataset.js');
  await writeAtomically(out, async (tmp) => {
    await new DatasetWriter(tmp).finish();
    await writeStageReport(reportFile, tmp, report, events);
  });
}
