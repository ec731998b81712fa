// Where a V8 CPU profile of a GPU run spent its samples (self time by function), from the `.cpuprofile` or
// `.cpuprofile.xz` that `node --cpu-prof` wrote (gpu-run.sh profiles the recipe's Mask R-CNN run; this is how
// tfjs' NMS showed up at a quarter of the run, docs/backend.md).
//   node --import tsx bench/device/cpu-profile-top.ts OUT/prof/CPU.*.cpuprofile.xz [rows]
// Several files (a process and its worker threads each write one): each is read on its own.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { execFileSync } from 'node:child_process';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const rows = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 30);
const files = args.filter((arg) => !/^\d+$/.test(arg));
if (files.length === 0) {
  console.error('usage: cpu-profile-top.ts PROFILE(.cpuprofile[.xz])... [rows]');
  process.exit(2);
}
for (const file of files) {
  const text = file.endsWith('.xz') ? execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 30 }).toString('utf8') : readFileSync(file, 'utf8');
  const profile = JSON.parse(text) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(id)!;
    const name = `${frame.functionName || '(anonymous)'} ${basename(frame.url) || '(native)'}:${frame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    total += us;
  });
  console.log(`\n${basename(file)}: self time by function (ms, of ${(total / 1000).toFixed(0)} ms sampled)`);
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    console.log(`${(us / 1000).toFixed(0).padStart(8)}  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}
