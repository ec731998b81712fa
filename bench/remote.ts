// The remote cache's transfer rate against the physical reference, on a real server: `runner push` and
// `runner pull` of a stage whose out is the DSB2018 stage1_train folder (670 folders, ~30k files, ~190 MB) to
// nginx on localhost (docs/remote-cache.nginx.conf), against one tar stream of the same folder PUT and GET
// through the same server (`tar -c | PUT`, `GET | tar -x`). Goal: pull within 2x of the tar stream's GET.
// The machine may be shared: the pulls and the tar GETs are interleaved (which comes first alternates, after one
// unmeasured round of each), BENCH_REMOTE_REPEATS times (3), and
// the medians reported with every value and the load average before and after. Nothing is deleted until the
// end: removing a 30k-file tree on a filesystem mounted with `discard` (online TRIM, as on many VMs) keeps the
// disk busy for seconds afterwards and slows whichever measurement comes next.
// Data: ../shared/data/dsb2018 relative to the repository, or BENCH_DSB2018_DIR; skipped with a message
// when absent. The CLI is the built one (`npm run build` first), as a user runs it.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nginxBinary, startNginx } from '../test/cache/remote-helpers.js';
import type { BenchResult } from './run.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const runnerBin = join(repo, 'bin/runner.js');
// Absolute: the pipeline's stage runs in a temp workspace.
const dataDir = resolve(process.env['BENCH_DSB2018_DIR'] ?? join(repo, '../shared/data/dsb2018'));
const train = join(dataDir, 'stage1_train');

const PIPELINE = `stages:
  train-copy:
    cmd: [cp, -r, ${JSON.stringify(train)}, data/stage1_train]
    outs: [data/stage1_train]
`;

/** The same pipeline restoring by hardlink (`cache: {link: hardlink}`): one file made per out file, not two. */
const PIPELINE_HARDLINK = `${PIPELINE}cache:
  link: hardlink
`;

function newWorkspace(pipeline = PIPELINE): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-remote-'));
  mkdirSync(join(dir, '.runner'));
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'pipeline.yaml'), pipeline);
  return dir;
}

function runner(cwd: string, args: string[], env: Record<string, string> = {}): { seconds: number; stdout: string } {
  const t = performance.now();
  const child = spawnSync(process.execPath, [runnerBin, ...args], { cwd, encoding: 'utf8', timeout: 900_000, env: { ...process.env, ...env } });
  const seconds = (performance.now() - t) / 1000;
  if (child.status !== 0) throw new Error(`runner ${args.join(' ')} exited ${child.status}: ${child.stderr}${child.stdout}`);
  return { seconds, stdout: child.stdout };
}

function tarTarget(url: string): URL {
  return new URL(`cas/${'f'.repeat(64)}`, url);
}

/** `tar -c` of the folder streamed into one PUT (chunked). */
async function tarPut(url: string): Promise<{ put: number; bytes: number }> {
  const target = tarTarget(url);
  const t = performance.now();
  const bytes = await new Promise<number>((resolve, reject) => {
    const tar = spawn('tar', ['-c', '-C', dataDir, 'stage1_train'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let sent = 0;
    tar.stdout.on('data', (chunk: Buffer) => (sent += chunk.length));
    const req = request(target, { method: 'PUT', agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 || res.statusCode === 204 ? resolve(sent) : reject(new Error(`PUT: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    tar.stdout.pipe(req);
  });
  return { put: (performance.now() - t) / 1000, bytes };
}

/** One GET of the tar stream into `tar -x` in `dest` (an empty folder): seconds. */
async function tarGet(url: string, dest: string): Promise<number> {
  const target = tarTarget(url);
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    const tar = spawn('tar', ['-x', '-C', dest], { stdio: ['pipe', 'inherit', 'inherit'] });
    tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}`))));
    // A new connection each time: a kept-alive one may have been closed by nginx since (a reset on reuse).
    request(target, { agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET the tar stream: HTTP ${res.statusCode}`));
      res.pipe(tar.stdin);
    }).on('error', reject).end();
  });
  return (performance.now() - t) / 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const listed = (values: readonly number[]): string => values.map((v) => v.toFixed(1)).join(', ');

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(train)) return [{ name: 'remote cache push/pull', value: Number.NaN, unit: 's', note: `no ${train}: set BENCH_DSB2018_DIR or lay out ../shared/data/dsb2018` }];
  const binary = nginxBinary();
  if (!binary) return [{ name: 'remote cache push/pull', value: Number.NaN, unit: 's', note: 'nginx is not installed (apt-get install nginx-light)' }];
  spawnSync('npm', ['run', 'build'], { cwd: repo, encoding: 'utf8' });
  const nginx = await startNginx(binary);
  const made: string[] = [];
  const workspace = (pipeline = PIPELINE): string => {
    const dir = newWorkspace(pipeline);
    made.push(dir);
    return dir;
  };
  try {
    const a = workspace();
    runner(a, ['run', 'pipeline.yaml']);
    const files = Number(spawnSync('sh', ['-c', `find ${JSON.stringify(train)} -type f | wc -l`], { encoding: 'utf8' }).stdout.trim());
    const push = runner(a, ['push', 'pipeline.yaml', '--remote', nginx.url]);
    const pushedObjects = Number(/(\d+) objects \([^)]*\) uploaded/.exec(push.stdout)?.[1] ?? Number.NaN);
    const tarUp = await tarPut(nginx.url);
    const repeats = Number(process.env['BENCH_REMOTE_REPEATS'] ?? 3);
    const loadBefore = loadavg()[0]!;
    const pulls: number[] = [];
    const restores: number[] = [];
    const gets: number[] = [];
    const hardlinkPulls: number[] = [];
    let pulledObjects = Number.NaN;
    let mb = Number.NaN;
    // One pull and one tar GET first, not measured: right after the push's 30k files, the first round of five
    // runs in nine stalled (pull / tar 4.0 / 2.4 s, 5.9 / 2.1 s, 4.4 / 7.8 s, 3.0 / 5.1 s, 1.4 / 0.66 s against
    // 1.1-1.3 / 0.6-0.8 s in calm rounds; BENCHMARKS.md, "remote"), whichever of them happened to come first.
    const warmUp = workspace();
    copyFileSync(join(a, 'pipeline.lock'), join(warmUp, 'pipeline.lock'));
    spawnSync('sync');
    runner(warmUp, ['pull', 'pipeline.yaml', '--remote', nginx.url]);
    spawnSync('sync');
    await tarGet(nginx.url, workspace());
    for (let i = 0; i < repeats; i++) {
      // A fresh clone with an empty local cache and the tar stream's GET, the one or the other first by turns.
      const b = workspace();
      copyFileSync(join(a, 'pipeline.lock'), join(b, 'pipeline.lock'));
      const tarFirst = i % 2 === 1;
      // Each measurement starts with no dirty pages left by the one before (its write-back is not charged on).
      spawnSync('sync');
      if (tarFirst) {
        gets.push(await tarGet(nginx.url, workspace()));
        spawnSync('sync');
      }
      const pull = runner(b, ['pull', 'pipeline.yaml', '--remote', nginx.url]);
      pulls.push(pull.seconds);
      pulledObjects = Number(/(\d+) objects \([^)]*\) downloaded/.exec(pull.stdout)?.[1] ?? Number.NaN);
      mb = Number(/\(([\d.]+) MB\) downloaded/.exec(pull.stdout)?.[1] ?? Number.NaN);
      if (!tarFirst) {
        spawnSync('sync');
        gets.push(await tarGet(nginx.url, workspace()));
      }
      // The same pull into a third clone sharing b's local cache: nothing to download, so this is the restore's share.
      const c = workspace();
      copyFileSync(join(a, 'pipeline.lock'), join(c, 'pipeline.lock'));
      spawnSync('sync');
      restores.push(runner(c, ['pull', 'pipeline.yaml', '--remote', nginx.url], { RUNNER_CACHE_DIR: join(b, '.runner/cache') }).seconds);
      // A fresh clone with an empty cache again, restoring by hardlink.
      const h = workspace(PIPELINE_HARDLINK);
      copyFileSync(join(a, 'pipeline.lock'), join(h, 'pipeline.lock'));
      spawnSync('sync');
      hardlinkPulls.push(runner(h, ['pull', 'pipeline.yaml', '--remote', nginx.url]).seconds);
    }
    const pull = median(pulls);
    const get = median(gets);
    const ratios = pulls.map((p, i) => p / gets[i]!);
    const hardlinkRatios = hardlinkPulls.map((p, i) => p / gets[i]!);
    const load = `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after`;
    const note = `${files} files, ${mb.toFixed(0)} MB of objects, a ${(tarUp.bytes / 1e6).toFixed(0)} MB tar stream; nginx on 127.0.0.1, 16 connections`;
    return [
      { name: 'runner push (cold remote): seconds', value: push.seconds, unit: 's', command: 'node bin/runner.js push pipeline.yaml --remote http://127.0.0.1:PORT/', note },
      { name: 'runner push: objects/s', value: pushedObjects / push.seconds, unit: 'objects/s', note: `${pushedObjects} objects (HEAD + PUT each)` },
      { name: 'runner push: MB/s', value: mb / push.seconds, unit: 'MB/s' },
      { name: `runner pull (fresh clone, empty local cache): seconds, median of ${repeats}`, value: pull, unit: 's', command: 'node bin/runner.js pull pipeline.yaml --remote http://127.0.0.1:PORT/', note: `${listed(pulls)} s; the pack streamed into the store as one file and, in the same pass, each object (once it hashes to its name) into the workspace's temp tree, renamed into place once the whole pack verified; ${load}` },
      { name: 'runner pull: files/s', value: files / pull, unit: 'files/s', note: `${pulledObjects} objects downloaded (a folder's pack counts as one, docs/remote-cache.md)` },
      { name: `runner pull with every object already in the local cache (the restore alone): seconds, median of ${repeats}`, value: median(restores), unit: 's', command: 'RUNNER_CACHE_DIR=<b>/.runner/cache node bin/runner.js pull pipeline.yaml --remote …', note: `${listed(restores)} s; Store.restore reads 30k files out of the local pack (hashing each) into the workspace, their hashes feeding the stat cache` },
      { name: 'runner pull: MB/s', value: mb / pull, unit: 'MB/s' },
      { name: 'tar stream PUT: seconds', value: tarUp.put, unit: 's', command: 'tar -c stage1_train | PUT (chunked)' },
      { name: 'tar stream GET: MB/s of tar', value: tarUp.bytes / 1e6 / get, unit: 'MB/s' },
      { name: `tar stream GET + tar -x: seconds, median of ${repeats}`, value: get, unit: 's', command: 'GET | tar -x', note: `${listed(gets)} s, before or after the round's pull by turns` },
      // The worst round decides: a disk slow to create files slows the tar as much as the pull and hides our costs.
      { name: 'pull / tar GET (the worst of the paired rounds)', value: Math.max(...ratios), unit: 'x', target: '≤ 2x', ok: Math.max(...ratios) <= 2, note: `${ratios.map((r) => r.toFixed(2)).join(', ')}` },
      { name: 'pull / tar GET (the median of the paired rounds)', value: median(ratios), unit: 'x' },
      { name: `runner pull with \`cache: {link: hardlink}\` (fresh clone, empty local cache): seconds, median of ${repeats}`, value: median(hardlinkPulls), unit: 's', command: 'node bin/runner.js pull pipeline.yaml --remote …', note: `${listed(hardlinkPulls)} s; a folder pulled through a pack is written from its stream even so (a range of a file can't be linked); other objects are linked and hashed once made` },
      { name: 'hardlink pull / tar GET (the worst of the paired rounds)', value: Math.max(...hardlinkRatios), unit: 'x', target: '≤ 2x', ok: Math.max(...hardlinkRatios) <= 2, note: `${hardlinkRatios.map((r) => r.toFixed(1)).join(', ')}` },
      { name: 'push / tar PUT', value: push.seconds / tarUp.put, unit: 'x' },
    ];
  } finally {
    await nginx.stop();
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  }
}
