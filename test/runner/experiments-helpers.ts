// Fixtures for the sweep/compare/report tests: a four-stage pipeline shaped like an ablation study (prepare ->
// train -> predict -> evaluate), run by a fake stage program whose metrics are its own argv, so every
// experiment's metrics are known in advance. Each run appends the stage name to $RUNS_LOG.
import { join } from 'node:path';
import sharp from 'sharp';
import { makeWorkspace, runCli, type CliResult } from './helpers.js';

/**
 * node fake.mjs NAME [--out PATH]… [--metrics FILE] [--metric KEY=VALUE]… [--history FILE --epochs N]
 * [--images DIR]: writes each out ("dir/" makes a folder), a metrics JSON (dotted keys nested, values JSON),
 * a per-epoch history and copies fixtures/*.png into DIR.
 */
export const FAKE_STAGE = `import { appendFileSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
const [name, ...args] = process.argv.slice(2);
appendFileSync(process.env.RUNS_LOG ?? 'runs.log', name + '\\n');
const flag = (f) => args.flatMap((a, i) => (a === f ? [args[i + 1]] : []));
const put = (file, text) => { mkdirSync(dirname(file), { recursive: true }); writeFileSync(file, text); };
for (const out of flag('--out')) out.endsWith('/') ? put(out + 'part.txt', name + ' ' + args.join(' ')) : put(out, name + ' ' + args.join(' '));
const metrics = {};
for (const kv of flag('--metric')) {
  const [key, value] = kv.split('=');
  const parts = key.split('.');
  let node = metrics;
  for (const p of parts.slice(0, -1)) node = node[p] ??= {};
  node[parts.at(-1)] = JSON.parse(value);
}
for (const file of flag('--metrics')) put(file, JSON.stringify(metrics));
for (const file of flag('--history')) {
  const epochs = Number(flag('--epochs')[0] ?? 3);
  const history = Array.from({ length: epochs }, (_, i) => ({ epoch: i + 1, train: { loss_total: 2 / (i + 1) }, val: { loss_total: 2.5 / (i + 1) + 0.1 } }));
  put(file, JSON.stringify({ phase: name, bestEpoch: epochs, history }));
}
for (const dir of flag('--images')) {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync('fixtures')) copyFileSync(join('fixtures', f), join(dir, f));
}
`;

export const STUDY_PIPELINE = `params:
  train: {epochs: 3, lr: 0.001}
  predict: {tta: true}
  post: {threshold: 0.35, closing: true}
profiles:
  quick: {train: {epochs: 2}}
stages:
  prepare:
    cmd: node fake.mjs prepare --out data/prep/
    deps: [fake.mjs, data/raw]
    outs: [data/prep]
  train:
    cmd: node fake.mjs train --out models/m/ --history models/m/history.json --epochs \${train.epochs} --metrics metrics/train.json --metric best_val_loss=\${train.lr}
    deps: [fake.mjs, data/prep]
    params: [train]
    outs: [models/m]
    metrics: [metrics/train.json]
    plots: [models/m/history.json]
  predict:
    cmd: node fake.mjs predict --out preds/ --metric tta=\${predict.tta}
    deps: [fake.mjs, models/m]
    params: [predict]
    outs: [preds]
  evaluate:
    cmd: node fake.mjs evaluate --images eval/overlays --metrics metrics/eval.json --metric score=\${post.threshold} --metric per_modality.he=\${post.closing}
    deps: [fake.mjs, preds, fixtures]
    params: [post]
    outs: [eval/overlays]
    metrics: [metrics/eval.json]
    images: [eval/overlays]
`;

async function png(colour: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width: 320, height: 240, channels: 3, background: colour } }).png().toBuffer();
}

/** A workspace holding the study pipeline, the fake stage, raw data and two overlay PNGs. */
export async function studyWorkspace(): Promise<string> {
  const dir = makeWorkspace({ 'pipelines/study.yaml': STUDY_PIPELINE, 'fake.mjs': FAKE_STAGE, 'data/raw/a.txt': 'a\n' });
  const { writeFileSync, mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'fixtures'));
  writeFileSync(join(dir, 'fixtures', 'overlay-1.png'), await png({ r: 200, g: 40, b: 40 }));
  writeFileSync(join(dir, 'fixtures', 'overlay-2.png'), await png({ r: 40, g: 40, b: 200 }));
  return dir;
}

/** The CLI in `dir` with RUNS_LOG set to `dir/runs.log` (stages run in experiment folders, not in dir). */
export function cli(dir: string, args: string[]): CliResult {
  return runCli(dir, args, { RUNS_LOG: join(dir, 'runs.log') });
}
