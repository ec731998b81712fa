// The DSB2018 data chain (fix-masks -> strip-alpha -> fill-holes) over the real stage1_train, in images/s,
// against bench/data_chain_peer.py doing the same steps with OpenCV + SciPy on two processes. Also checks the
// full-data count (670 images in, 664 out), which is too slow for the default test suite.
//
// Run: `npm run bench -- data` (DATA_CHAIN_LIMIT=N runs the first N image folders only).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dsb2018Data } from './dsb2018-data.js';
import type { BenchResult } from './run.js';

const data = dsb2018Data;
const cli = fileURLToPath(new URL('../bin/dsb2018.js', import.meta.url));
const peer = fileURLToPath(new URL('./data_chain_peer.py', import.meta.url));

async function timed(file: string, args: string[]): Promise<{ seconds: number; stdout: string }> {
  const start = process.hrtime.bigint();
  const result = await execa(file, args, { reject: false });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed:\n${result.stderr}`);
  return { seconds, stdout: String(result.stdout) };
}

export async function run(): Promise<BenchResult[]> {
  const train = join(data, 'stage1_train');
  const fixes = join(data, 'stage1_train_fixes');
  if (!existsSync(train)) {
    return [{ name: 'data chain', value: 0, unit: 'images/s', note: `skipped: real DSB2018 data not found at ${data}` }];
  }
  const work = mkdtempSync(join(tmpdir(), 'data-chain-'));
  try {
    const limit = Number(process.env['DATA_CHAIN_LIMIT'] ?? 0);
    let input = train;
    if (limit > 0) {
      // A subset as symlinks to the image folders (fix-masks follows them).
      input = join(work, 'subset');
      mkdirSync(input);
      for (const id of readdirSync(train).sort().slice(0, limit)) symlinkSync(join(train, id), join(input, id));
    }
    const imagesIn = readdirSync(input).length;
    const fix = await timed(process.execPath, [cli, 'fix-masks', '--in', input, '--fixes', fixes, '--out', join(work, 'fixed')]);
    const strip = await timed(process.execPath, [cli, 'strip-alpha', '--in', join(work, 'fixed'), '--out', join(work, 'rgb')]);
    const fill = await timed(process.execPath, [cli, 'fill-holes', '--in', join(work, 'rgb'), '--out', join(work, 'filled')]);
    const report = JSON.parse(readFileSync(join(work, 'fixed', 'report.json'), 'utf8')) as { imagesWritten: number; nuclei: number };
    const ours = fix.seconds + strip.seconds + fill.seconds;

    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const peerArgs = [peer, input, fixes, join(work, 'peer'), ...(limit > 0 ? [String(limit)] : [])];
    const theirs = await timed(python, peerArgs);
    const ratio = theirs.seconds / ours;
    const results: BenchResult[] = [
      {
        name: `fix-masks -> strip-alpha -> fill-holes, ${imagesIn} stage1_train images (3 CLI runs, start-up included)`,
        value: imagesIn / ours,
        unit: 'images/s',
        note: `fix-masks ${fix.seconds.toFixed(1)} s, strip-alpha ${strip.seconds.toFixed(1)} s, fill-holes ${fill.seconds.toFixed(1)} s`,
      },
      {
        name: 'Python peer: OpenCV imread/imwrite + scipy binary_fill_holes, 2 processes',
        value: imagesIn / theirs.seconds,
        unit: 'images/s',
        command: `python3 bench/data_chain_peer.py ${limit > 0 ? '<subset>' : 'stage1_train'} stage1_train_fixes <out>`,
        note: `${theirs.seconds.toFixed(1)} s including interpreter start-up`,
      },
      { name: 'throughput vs the Python peer', value: ratio, unit: 'x', target: '≥ 2x', ok: ratio >= 2 },
    ];
    if (limit === 0) {
      results.push({
        name: 'images after fix-masks (670 in, 6 removed)',
        value: report.imagesWritten,
        unit: 'images',
        target: '= 664',
        ok: report.imagesWritten === 664,
      });
    }
    return results;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
