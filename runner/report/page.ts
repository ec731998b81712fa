// The report: one self-contained HTML page (inline CSS and SVG, images as data: URIs, no script) built from
// experiment records and the files in their workspaces. Sections: the DAG, stage timings, the experiments
// table, one ablation bar chart per metric, training curves, and a gallery of the images stages declared.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Comparison } from '../experiments/compare.js';
import { formatDelta, formatValue } from '../experiments/compare-format.js';
import type { ExperimentRecord } from '../experiments/record.js';
import { extractCurves } from './curves.js';
import { dagSvg } from './dag-svg.js';
import { imageFiles, imagesDigest, thumbnails } from './gallery.js';
import { barChart, escapeXml as esc, lineChart, type Bar } from './svg.js';
import { durationText } from '../duration-text.js';

export interface ReportInput {
  title: string;
  workspace: string;
  records: ExperimentRecord[];
  baseline: ExperimentRecord;
  comparison: Comparison;
  /** Images per gallery folder (default 8). */
  imagesPerFolder?: number;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;padding:16px 28px;color:#222}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}.muted{color:#777}.meta{color:#555;margin:0 0 8px}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}tr.section td{background:#fafafa;font-weight:600;text-align:left}
td.best{font-weight:700;background:#eaf7ea}tr.headline td:first-child code{font-weight:700}.good{color:#1a7f37}.bad{color:#c62828}.scroll{overflow-x:auto}
.charts{display:flex;flex-wrap:wrap;gap:18px}.charts figure{margin:0}.charts figcaption{font-weight:600;margin-bottom:2px}
svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .marker{stroke:#555;stroke-dasharray:4 3}svg text{font:11px system-ui,sans-serif;fill:#333}
svg .label{font-size:12px}svg .legend{font-size:11px}svg .edge{fill:none;stroke:#999;stroke-width:1.4}
svg .node rect{fill:#eef3fb;stroke:#4a6fa5}svg .node.ran rect{fill:#e3f4e1;stroke:#3c8d40}svg .node.restored rect{fill:#e8f0fb;stroke:#4a6fa5}
svg .node.fresh rect{fill:#f3f3f3;stroke:#888}svg .node.failed rect,svg .node.skipped rect{fill:#fde8e8;stroke:#c62828}svg .node text{font-size:12px}
svg .bar.plain{fill:#6b9bd1}svg .bar.baseline{fill:#9e9e9e}svg .bar.best{fill:#3c8d40}svg .bar.failed{fill:#e57373}
.gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;width:240px}.gallery img{width:240px;height:auto;border:1px solid #ccc;display:block}
.gallery figcaption{font-size:11px;color:#555;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
`;

function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : durationText(ms);
}

function dagSection(baseline: ExperimentRecord): string {
  const nodes = Object.entries(baseline.stages).map(([name, s]) => ({
    name,
    upstream: s.upstream,
    status: s.status,
    title: `${name}: ${s.status}${s.computeMs !== undefined ? `, computed in ${seconds(s.computeMs)}` : ''}${s.failure ? ` (${s.failure})` : ''}`,
  }));
  return `<h2 id="dag">Pipeline</h2><p class="meta">Stages of <code>${esc(baseline.pipeline)}</code>, coloured by their status in <b>${esc(baseline.name)}</b>: green ran, blue restored from the run-cache, grey fresh, red failed or skipped.</p><div class="scroll">${dagSvg(nodes)}</div>`;
}

function timingsSection(records: readonly ExperimentRecord[], baseline: ExperimentRecord): string {
  const bars: Bar[] = Object.entries(baseline.stages).map(([name, s]) => {
    const ms = s.computeMs ?? s.durationMs;
    const runs = s.runsMs && s.runsMs.length > 1 ? ` over ${s.runsMs.length} runs` : '';
    return { label: name, value: ms / 1000, note: seconds(ms) + runs, kind: s.status === 'failed' ? 'failed' : 'plain' };
  });
  const stages = [...new Set(records.flatMap((r) => Object.keys(r.stages)))];
  const head = `<tr><th>stage</th>${records.map((r) => `<th>${esc(r.name)}</th>`).join('')}</tr>`;
  const rows = stages.map((stage) => `<tr><td>${esc(stage)}</td>${records.map((r) => {
    const s = r.stages[stage];
    return `<td title="${esc(s?.failure ?? '')}">${s ? `${esc(s.status)} ${seconds(s.durationMs)}` : '-'}</td>`;
  }).join('')}</tr>`);
  return `<h2 id="timings">Stage timings</h2><p class="meta">What each stage cost to compute (run-cache record, plus the earlier runs of a stage resumed from its checkpoints; a restored stage cost that once, then only its restore), in <b>${esc(baseline.name)}</b>; seconds.</p>${barChart(bars, { unit: ' s' })}
<h3>Per experiment: status and wall time spent</h3><div class="scroll"><table><thead>${head}</thead><tbody>${rows.join('')}</tbody></table></div>`;
}

function experimentsSection(comparison: Comparison): string {
  const exps = comparison.experiments;
  const head = `<tr><th></th>${exps.map((e) => `<th>${esc(e.name)}${e.baseline && e.name !== 'baseline' ? '<br><span class="muted">(baseline)</span>' : ''}<br><code class="muted">${esc(e.id)}</code>${e.status === 'failed' ? '<br><span class="bad">failed</span>' : ''}</th>`).join('')}</tr>`;
  const rows: string[] = [];
  if (comparison.params.length) {
    rows.push(`<tr class="section"><td colspan="${exps.length + 1}">params that differ</td></tr>`);
    for (const key of comparison.params) rows.push(`<tr><td><code>${esc(key)}</code></td>${exps.map((e) => `<td>${esc(formatValue(e.params[key]))}</td>`).join('')}</tr>`);
  }
  rows.push(`<tr class="section"><td colspan="${exps.length + 1}">metrics (delta against the baseline; best in bold)</td></tr>`);
  for (const metric of comparison.metrics) {
    const cells = exps.map((e) => {
      const cell = e.metrics[metric.name];
      if (!cell) return '<td class="muted">-</td>';
      let delta = '';
      if (cell.delta !== undefined && !e.baseline) {
        const better = metric.goal === 'max' ? cell.delta > 0 : cell.delta < 0;
        delta = ` <span class="${cell.delta === 0 || metric.goal === undefined ? 'muted' : better ? 'good' : 'bad'}">(${esc(formatDelta(cell.delta))})</span>`;
      }
      return `<td${cell.best ? ' class="best"' : ''}>${esc(formatValue(cell.value))}${delta}${cell.best ? ' ★' : ''}</td>`;
    });
    const goal = metric.goal === undefined ? '' : ` <span class="muted">${metric.goal === 'max' ? '↑' : '↓'}</span>`;
    rows.push(`<tr${metric.headline ? ' class="headline"' : ''}><td><code>${esc(metric.name)}</code>${goal}</td>${cells.join('')}</tr>`);
  }
  return `<h2 id="experiments">Experiments</h2><div class="scroll"><table><thead>${head}</thead><tbody>${rows.join('')}</tbody></table></div>`;
}

function ablationSection(comparison: Comparison): string {
  const charts: string[] = [];
  // Only ranked metrics are ablation results: where the pipeline names headline metrics, the others (counts a
  // stage keeps for bookkeeping) stay in the table.
  for (const metric of comparison.metrics) {
    if (metric.goal === undefined) continue;
    const bars: Bar[] = [];
    let reference: number | undefined;
    for (const e of comparison.experiments) {
      const cell = e.metrics[metric.name];
      if (typeof cell?.value !== 'number' || !Number.isFinite(cell.value)) continue;
      if (e.baseline) reference = cell.value;
      const note = `${formatValue(cell.value)}${cell.delta !== undefined && !e.baseline ? ` (${formatDelta(cell.delta)})` : ''}${cell.best ? ' ★' : ''}`;
      bars.push({ label: e.name, value: cell.value, note, kind: e.status === 'failed' ? 'failed' : cell.best ? 'best' : e.baseline ? 'baseline' : 'plain' });
    }
    if (bars.length === 0) continue;
    const options = reference !== undefined ? { reference } : {};
    charts.push(`<figure><figcaption><code>${esc(metric.name)}</code> <span class="muted">(${metric.goal === 'max' ? 'higher' : 'lower'} is better)</span></figcaption>${barChart(bars, options)}</figure>`);
  }
  const body = charts.length ? `<div class="charts">${charts.join('')}</div>` : '<p class="muted">No numeric metrics recorded: declare <code>metrics:</code> files on stages.</p>';
  return `<h2 id="ablations">Ablations</h2><p class="meta">One chart per metric: grey the baseline (dashed line), green the best.</p>${body}`;
}

function curvesSection(workspace: string, records: readonly ExperimentRecord[]): string {
  // The same file content in several experiments (restored from one cache entry) is drawn once.
  const seen = new Map<string, { title: string; chart: string; experiments: string[] }>();
  for (const record of records) {
    for (const plot of record.plots) {
      let text: string;
      try {
        text = readFileSync(join(workspace, record.workspace, plot.path), 'utf8');
      } catch {
        continue;
      }
      const existing = seen.get(text);
      if (existing) {
        existing.experiments.push(record.name);
        continue;
      }
      let curves;
      try {
        curves = extractCurves(JSON.parse(text));
      } catch {
        curves = undefined;
      }
      if (!curves) continue;
      const options = curves.best !== undefined ? { xLabel: curves.xLabel, marker: { x: curves.best, label: 'best' } } : { xLabel: curves.xLabel };
      const title = `${plot.stage}${curves.label && curves.label !== plot.stage ? ` (${curves.label})` : ''}: ${plot.path}`;
      seen.set(text, { title, chart: lineChart(curves.series, options), experiments: [record.name] });
    }
  }
  const figures = [...seen.values()].map((c) => `<figure><figcaption>${esc(c.title)}</figcaption><div class="muted">${esc(c.experiments.join(', '))}</div>${c.chart}</figure>`);
  const body = figures.length ? `<div class="charts">${figures.join('')}</div>` : '<p class="muted">No curves: a stage can declare <code>plots: [path/to/history.json]</code> (a JSON of per-epoch records).</p>';
  return `<h2 id="curves">Training curves</h2>${body}`;
}

async function gallerySection(workspace: string, records: readonly ExperimentRecord[], baseline: ExperimentRecord, perFolder: number): Promise<string> {
  const blocks: string[] = [];
  const shown = new Map<string, string>();
  for (const record of [baseline, ...records.filter((r) => r.id !== baseline.id)]) {
    for (const folder of record.images) {
      const dir = join(workspace, record.workspace, folder.path);
      const names = imageFiles(dir).slice(0, perFolder);
      if (names.length === 0) continue;
      const digest = imagesDigest(dir, names);
      const label = `${record.name}: ${folder.stage} ${folder.path}`;
      const same = shown.get(digest);
      if (same) {
        blocks.push(`<p class="muted">${esc(label)}: the same images as ${esc(same)}</p>`);
        continue;
      }
      shown.set(digest, record.name);
      const figures = (await thumbnails(dir, names)).map((t) => `<figure><img alt="${esc(t.name)}" src="${t.dataUri}"><figcaption title="${esc(t.name)}">${esc(t.name)}</figcaption></figure>`);
      blocks.push(`<details${record.id === baseline.id ? ' open' : ''}><summary>${esc(label)} (${figures.length} of ${imageFiles(dir).length})</summary><div class="gallery">${figures.join('')}</div></details>`);
    }
  }
  const body = blocks.length ? blocks.join('') : '<p class="muted">No images: a stage can declare <code>images: [folder]</code> (e.g. prediction overlays).</p>';
  return `<h2 id="gallery">Gallery</h2>${body}`;
}

export async function reportHtml(input: ReportInput): Promise<string> {
  const { records, baseline, comparison, workspace } = input;
  const profiles = [...new Set(records.map((r) => r.profile ?? '(none)'))].join(', ');
  const sections = [
    dagSection(baseline),
    timingsSection(records, baseline),
    experimentsSection(comparison),
    ablationSection(comparison),
    curvesSection(workspace, records),
    await gallerySection(workspace, records, baseline, input.imagesPerFolder ?? 8),
  ];
  const nav = ['dag:Pipeline', 'timings:Timings', 'experiments:Experiments', 'ablations:Ablations', 'curves:Curves', 'gallery:Gallery']
    .map((s) => s.split(':'))
    .map(([id, text]) => `<a href="#${id}">${text}</a>`)
    .join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(input.title)}</title><style>${STYLE}</style></head>
<body><h1>${esc(input.title)}</h1>
<p class="meta">${records.length} experiment${records.length === 1 ? '' : 's'} of <code>${esc([...new Set(records.map((r) => r.pipeline))].join(', '))}</code>, profile ${esc(profiles)}; baseline <b>${esc(baseline.name)}</b>. Generated ${esc(new Date().toISOString().slice(0, 19).replace('T', ' '))} UTC by <code>runner report</code>.</p>
<nav>${nav}</nav>
${sections.join('\n')}
</body></html>
`;
}
