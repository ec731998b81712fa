// `runner report` on a sweep of the fake study pipeline: the page is self-contained, and in a real headless
// Chromium it loads without console errors or network requests, its charts have size, and a screenshot is taken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareExperiments } from '../../runner/experiments/compare.js';
import type { ExperimentRecord } from '../../runner/experiments/record.js';
import { extractCurves } from '../../runner/report/curves.js';
import { dagSvg, layers } from '../../runner/report/dag-svg.js';
import { reportHtml } from '../../runner/report/page.js';
import { cli, studyWorkspace } from './experiments-helpers.js';

const CHROMIUM = '/usr/bin/chromium';

let reportDir: Promise<string> | undefined;
/** One sweep (baseline + two thresholds) and its report, shared by the tests below. */
function sweptReport(): Promise<string> {
  reportDir ??= (async () => {
    const dir = await studyWorkspace();
    const sweep = cli(dir, ['sweep', 'pipelines/study.yaml', '--grid', 'post.threshold=0.2,0.5']);
    assert.equal(sweep.status, 0, sweep.stderr);
    const report = cli(dir, ['report', '--out', 'out/report.html']);
    assert.equal(report.status, 0, report.stderr);
    assert.match(report.stdout, /^wrote out\/report\.html \(3 experiments, \d+ KiB\)\n$/);
    return dir;
  })();
  return reportDir;
}

test('curves are found in any JSON holding an array of per-epoch records, losses preferred', () => {
  const curves = extractCurves({ phase: 'p1', bestEpoch: 2, history: [{ epoch: 1, train: { loss_total: 2, lr: 1 }, val: { loss_total: 3 } }, { epoch: 2, train: { loss_total: 1, lr: 1 }, val: { loss_total: 2 } }] });
  assert.deepEqual(curves?.series.map((s) => s.name), ['train.loss_total', 'val.loss_total']);
  assert.deepEqual(curves?.series[1]!.points, [{ x: 1, y: 3 }, { x: 2, y: 2 }]);
  assert.equal(curves?.best, 2);
  assert.equal(curves?.label, 'p1');
  assert.deepEqual(extractCurves([{ acc: 0.5 }, { acc: 0.7 }])?.series, [{ name: 'acc', points: [{ x: 1, y: 0.5 }, { x: 2, y: 0.7 }] }]);
  assert.equal(extractCurves({ score: 1 }), undefined);
});

test('the DAG puts each stage one layer after its deepest upstream stage', () => {
  const nodes = [{ name: 'a', upstream: [] }, { name: 'b', upstream: ['a'] }, { name: 'c', upstream: ['a', 'b'] }, { name: 'd', upstream: [] }];
  assert.deepEqual([...layers(nodes)], [['a', 0], ['b', 1], ['c', 2], ['d', 0]]);
  const svg = dagSvg(nodes);
  assert.equal(svg.match(/<g class="node/g)?.length, 4);
  assert.equal(svg.match(/class="edge"/g)?.length, 3);
});

test('the ablation charts are the headline metrics only, and a resumed stage costs all its runs', async () => {
  const record = (id: string, name: string, metrics: Record<string, number>): ExperimentRecord => ({
    schema: 1, id, name, pipeline: 'p.yaml', profile: null, overrides: {}, params: {}, paramsDigest: id, workspace: `.runner/exps/${id}`,
    status: 'ok', createdAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:01Z', durationMs: 1000, metrics, plots: [], images: [],
    stages: { train: { status: 'ran', durationMs: 60_000, computeMs: 180_000, runsMs: [70_000, 50_000, 60_000], upstream: [] } },
    headline: [{ name: 'evaluate.score', goal: 'max' }],
  });
  const records = [record('aaaaaaaaaa', 'baseline', { 'evaluate.score': 0.5, 'mosaic.tilesConsidered': 400 }), record('bbbbbbbbbb', 'other', { 'evaluate.score': 0.6, 'mosaic.tilesConsidered': 300 })];
  const html = await reportHtml({ title: 't', workspace: mkdtempSync(join(tmpdir(), 'report-unit-')), records, baseline: records[0]!, comparison: compareExperiments(records, 'aaaaaaaaaa') });
  const ablations = html.slice(html.indexOf('id="ablations"'), html.indexOf('<h2', html.indexOf('id="ablations"')));
  assert.match(ablations, /<code>evaluate\.score<\/code>/);
  assert.doesNotMatch(ablations, /tilesConsidered/, 'a bookkeeping count is no ablation result');
  assert.match(html, /<tr class="headline"><td><code>evaluate\.score<\/code>/);
  assert.match(html, /<td><code>mosaic\.tilesConsidered<\/code><\/td>/, 'shown in the table, with no goal');
  const timings = html.slice(html.indexOf('id="timings"'), html.indexOf('<h3', html.indexOf('id="timings"')));
  assert.match(timings, /3\.0 min over 3 runs/);
});

test('the report is one self-contained page holding every section', async () => {
  const dir = await sweptReport();
  const html = readFileSync(join(dir, 'out/report.html'), 'utf8');
  assert.doesNotMatch(html, /<script|<link|@import|url\((?!#)/i, 'no script, stylesheet or font to fetch');
  assert.deepEqual([...html.matchAll(/(?:src|href)="([^"#][^"]*)"/g)].map((m) => m[1]!.slice(0, 22)).filter((u) => !u.startsWith('data:image/jpeg;base64')), [], 'every image is a data: URI');
  for (const id of ['dag', 'timings', 'experiments', 'ablations', 'curves', 'gallery']) assert.match(html, new RegExp(`<h2 id="${id}">`));
  assert.equal(html.match(/<svg class="chart bar-chart"/g)?.length, 2, 'timings + one ablation chart per numeric metric that differs (score; best_val_loss is the same everywhere)');
  assert.equal(html.match(/<svg class="chart line-chart"/g)?.length, 1, 'one history, shared by the three experiments, drawn once');
  assert.equal(html.match(/<img /g)?.length, 2, 'the overlays are shown once: the other experiments have the same images');
  assert.match(html, /<td class="best">0\.5 <span class="good">\(\+0\.15\)<\/span> ★<\/td>/);
  assert.ok(statSync(join(dir, 'out/report.html')).size < 2_000_000);
  const all = cli(dir, ['report', '--out', 'out/all.html', '--all-metrics']);
  assert.equal(all.status, 0, all.stderr);
  assert.equal(readFileSync(join(dir, 'out/all.html'), 'utf8').match(/<svg class="chart bar-chart"/g)?.length, 3, '--all-metrics: best_val_loss too');
});

test('the report loads in headless Chromium with no console error or request, and its charts render', { skip: existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium)` }, async () => {
  const dir = await sweptReport();
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'runner-chromium-')), {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (message) => void (message.type() === 'error' && problems.push(message.text())));
    page.on('pageerror', (error) => void problems.push(String(error)));
    page.on('request', (request) => void (request.url().startsWith('file:') || request.url().startsWith('data:') || requests.push(request.url())));
    const url = `file://${join(dir, 'out/report.html')}`;
    await page.goto(url, { waitUntil: 'load' });
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, [], 'the page needs no network');
    const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((svg) => {
      const box = svg.getBoundingClientRect();
      return { kind: svg.getAttribute('class'), width: box.width, height: box.height, marks: svg.querySelectorAll('rect, polyline, path').length };
    }));
    assert.equal(charts.length, 4, 'dag, timings, one ablation chart, one curve chart');
    for (const chart of charts) assert.ok(chart.width > 100 && chart.height > 50 && chart.marks > 0, `${chart.kind} rendered: ${JSON.stringify(chart)}`);
    const images = await page.$$eval('img', (imgs) => imgs.map((img) => (img as unknown as { naturalWidth: number }).naturalWidth));
    assert.deepEqual(images, [320, 320], 'the thumbnails decode');
    const screenshot = join(dir, 'out/report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(statSync(screenshot).size > 10_000, 'a screenshot was written');
  } finally {
    await context.close();
  }
});
