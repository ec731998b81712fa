// `npm run bench -- webgpu`: the figures of the last runs on the lent GPU (bench/device/webgpu-diagnose.ts and
// bench/device/webgpu-maskrcnn.ts; they cannot run here: no GPU), read from their recorded JSON files, so
// BENCHMARKS.md shows them next to the CPU figures. To record new ones, bundle and run the two scripts on the
// lent machine as docs/backend.md describes and copy their $OUT JSON over bench/device/*.h100.json.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './run.js';

type Timing = { medianMs: number; allMs?: number[] };
type Counter = { calls: number; ms: number; usPerCall: number };
type TargetStep = Timing & { batch: number; size: number; dispatchesPerStep: number };
type ProgramTimes = Record<string, { count: number; ms: number }>;

function recorded<T>(name: string): T | undefined {
  const file = fileURLToPath(new URL(`./device/${name}`, import.meta.url));
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

interface Diagnose {
  started: string;
  unet?: Record<string, Timing | number>;
  fusedAdam?: { worstRelativeVsTfAdam?: number; step?: Timing; dispatchesPerStep?: number; error?: string };
  fusedBatchNorm?: Record<string, Timing & { batch: number; size: number; dispatchesPerStep: number; writeBuffersPerStep?: number }>;
  kernelCheck?: { worstMaxAbsRelative: number; rows: unknown[] };
  targets?: Record<string, TargetStep | { totalKernelMs: number; top: Record<string, { count: number; ms: number }> } | { totalProgramMs: number; dispatches: number; top: Record<string, { count: number; ms: number }> }>;
  /** The run that re-measured the later sections (the other sections keep the first run's figures). */
  latestRun?: { started: string };
  targetsRepeats?: Array<{ started: string; context: string; targets: Record<string, TargetStep> }>;
  kernelTestsOnGpu?: { started: string; pass: number; fail: number; tap: string };
  torchSameRun?: { command: string; resnet50B2S512Ms: number; unetB4S256Ms: number };
  fixes: Record<string, Timing>;
  split: Record<string, { median: number }>;
  callsPerStep: { counters: Record<string, Counter> };
  beforeFixes?: { callsPerStep: { counters: Record<string, Counter> }; torchResnet50StepMs: number };
}

interface MaskRcnnRun {
  started: string;
  agreement: { worstRelative: number };
  'resnet50-classifier'?: Timing;
  earlierLease?: {
    started: string;
    note: string;
    'resnet50-classifier': Timing;
    'recipe-resnet101-512-b2'?: { trainStepMs: { median: number }; overlappedStepMs: number; totalProgramMs: number; topPrograms: ProgramTimes };
  };
  hostNms?: {
    started: string;
    'recipe-resnet101-512-b2': HostNmsCase;
    'resnet50-512-b2': HostNmsCase;
    cpuProfile: { beforeMs: Record<string, number>; afterMs: Record<string, number> };
  };
  [name: string]: unknown;
}
type HostNmsCase = { trainStepMs: { median: number; all: number[] }; overlappedStepMs: number; inferenceMs: { median: number } };

/** The four largest entries of a GPU-time table, for a note. */
const topOf = (top: ProgramTimes): string => Object.entries(top).slice(0, 4).map(([name, t]) => `${name} ${t.ms.toFixed(1)} ms`).join(', ');

export async function run(): Promise<BenchResult[]> {
  const rows: BenchResult[] = [];
  const diagnose = recorded<Diagnose>('webgpu-diagnose.h100.json');
  if (diagnose) {
    const on = `one H100, Dawn/Vulkan, driver 580.159; bench/device/webgpu-diagnose.ts, ${diagnose.started.slice(0, 16)}Z`;
    const fixes = Object.entries(diagnose.fixes);
    fixes.forEach(([name, timing], i) => {
      const last = i === fixes.length - 1;
      rows.push({
        name: `webgpu ResNet-50 B=2 512x512 Adam train step (trainOnBatch), ${name}`,
        value: timing.medianMs,
        unit: 'ms',
        note: i === 0 ? on : `same run, fixes switched on one after another${last ? ' (the issue\'s targets: the rows "everything fused" below)' : ''}`,
      });
    });
    if (diagnose.beforeFixes) rows.push({ name: 'PyTorch fp32 ResNet-50 B=2 512 train step, same card', value: diagnose.beforeFixes.torchResnet50StepMs, unit: 'ms', command: 'python3 bench/device/torch_resnet50_step.py', note: 'same lease, earlier call' });
    const split = diagnose.split;
    for (const [key, label] of [['forwardGpu', 'forward only (training mode)'], ['gradsGpu', 'forward + backward (tf.variableGrads)'], ['applyGpu', 'Adam update of 161 variables']] as const) {
      const part = split[key];
      if (part) rows.push({ name: `webgpu ResNet-50 step, all fixes: ${label}`, value: part.median, unit: 'ms', note: 'until a read-back resolves' });
    }
    const after = diagnose.callsPerStep.counters;
    const before = diagnose.beforeFixes?.callsPerStep.counters ?? {};
    for (const [key, label] of [['device.createBuffer', 'GPU buffers created'], ['queue.submit', 'queue submits'], ['tfjs runWebGPUProgram (whole dispatch, JS side)', 'dispatches']] as const) {
      rows.push({ name: `webgpu ResNet-50 step: ${label} per step`, value: after[key]?.calls ?? 0, unit: '', note: `before the fixes: ${before[key]?.calls ?? 0} (${before[key]?.ms ?? 0} ms)` });
    }
    const fused = diagnose.fusedAdam;
    if (fused?.worstRelativeVsTfAdam !== undefined) rows.push({ name: 'webgpu fused Adam (bench/device/fused-adam.ts) vs tf.train.adam, 3 steps, worst relative difference', value: fused.worstRelativeVsTfAdam, unit: '', target: '≤ 1e-4', ok: fused.worstRelativeVsTfAdam <= 1e-4 });
    if (fused?.step) rows.push({ name: 'webgpu ResNet-50 B=2 512 step, all fixes + fused Adam (stock batch norm, stock conv gradients)', value: fused.step.medianMs, unit: 'ms', note: `${fused.dispatchesPerStep ?? '?'} dispatches per step` });
    for (const [name, r] of Object.entries(diagnose.fusedBatchNorm ?? {})) {
      const unet = name.startsWith('unet');
      const target = unet ? 60 : 150;
      const label = `${unet ? 'small residual U-Net' : 'ResNet-50'} B=${r.batch} ${r.size} step, all fixes + fused Adam + fused batch norm${name.includes('shared uniforms') ? ' + shared uniforms' : ''}`;
      rows.push({ name: `webgpu ${label}`, value: r.medianMs, unit: 'ms', target: `≤ ${target} ms`, ok: r.medianMs <= target, note: `${r.dispatchesPerStep} dispatches, ${r.writeBuffersPerStep ?? '?'} queue.writeBuffer calls per step` });
    }
    for (const [name, timing] of Object.entries(diagnose.unet ?? {})) {
      if (typeof timing === 'number') continue; // batch, size, params
      const last = name === 'all fixes';
      rows.push({ name: `webgpu small residual U-Net B=4 256 train step, ${name}`, value: timing.medianMs, unit: 'ms', ...(last ? { target: '≤ 60 ms', ok: timing.medianMs <= 60 } : {}) });
    }
    if (diagnose.kernelCheck) rows.push({ name: `webgpu conv gradients (every route we register) vs the cpu backend on the GPU, ${diagnose.kernelCheck.rows.length} cases, worst max-abs-relative`, value: diagnose.kernelCheck.worstMaxAbsRelative, unit: '', target: '≤ 1e-4', ok: diagnose.kernelCheck.worstMaxAbsRelative <= 1e-4 });
    const targetsOn = diagnose.latestRun ? `one H100, driver 580.159; bash bench/device/gpu-run.sh (bench/device/webgpu-diagnose.ts), ${diagnose.latestRun.started.slice(0, 16)}Z` : on;
    for (const [name, r] of Object.entries(diagnose.targets ?? {})) {
      if ('totalKernelMs' in r) {
        rows.push({ name: `webgpu ${name} (engine kernels, tf.profile; not our own WGSL programs)`, value: r.totalKernelMs, unit: 'ms', note: topOf(r.top) });
        continue;
      }
      if ('totalProgramMs' in r) {
        rows.push({ name: `webgpu ${name} (every dispatch timestamped, ours included)`, value: r.totalProgramMs, unit: 'ms', note: `${r.dispatches} dispatches; ${topOf(r.top)}` });
        continue;
      }
      const unet = name.startsWith('unet');
      const target = unet ? 60 : 150;
      const route = name.split(', ').slice(1).join(', ');
      const isDefault = route === 'patches'; // the route the stages use; the other is kept for comparison
      // The same step measured again on other leases and processes: the step is bound by the host's JavaScript,
      // so the machine and how warm the process's JIT is move it more than the GPU does.
      const repeats = (diagnose.targetsRepeats ?? []).map((repeat) => repeat.targets[name] ? `${repeat.targets[name]!.medianMs.toFixed(1)} ms (${repeat.context})` : undefined).filter(Boolean);
      rows.push({
        name: `webgpu ${unet ? 'small residual U-Net' : 'ResNet-50'} B=${r.batch} ${r.size} step, everything fused, conv gradients: ${route}${isDefault ? ' (default)' : ''}`,
        value: r.medianMs, unit: 'ms',
        ...(isDefault ? { target: `≤ ${target} ms`, ok: r.medianMs <= target && (diagnose.targetsRepeats ?? []).every((repeat) => (repeat.targets[name]?.medianMs ?? 0) <= target) } : {}),
        note: `${r.dispatchesPerStep} dispatches per step; ${targetsOn}, after the kernel check's 106 s in the process${repeats.length > 0 ? `; repeats: ${repeats.join('; ')}` : ''}`,
      });
    }
    const torch = diagnose.torchSameRun;
    if (torch) {
      rows.push({ name: 'PyTorch fp32 ResNet-50 B=2 512 train step, same card, same run as the targets', value: torch.resnet50B2S512Ms, unit: 'ms', command: torch.command });
      rows.push({ name: 'PyTorch fp32 small residual U-Net B=4 256 train step, same card, same run as the targets', value: torch.unetB4S256Ms, unit: 'ms' });
    }
    const tests = diagnose.kernelTestsOnGpu;
    if (tests) rows.push({ name: 'webgpu kernel tests (test/model/webgpu-kernels.test.ts) run on the H100, failed of all', value: tests.fail, unit: `of ${tests.pass + tests.fail}`, target: '0', ok: tests.fail === 0, note: `${tests.tap}, ${tests.started.slice(0, 16)}Z` });
    const dispatch = after['tfjs runWebGPUProgram (whole dispatch, JS side)'];
    if (dispatch) rows.push({ name: 'webgpu: JS time per dispatch (tfjs + Dawn calls), all fixes', value: dispatch.usPerCall, unit: 'µs', note: `${dispatch.ms} ms per step: what is left between 352 ms and the GPU's own time` });
  }
  const maskRcnn = recorded<MaskRcnnRun>('webgpu-maskrcnn.h100.json');
  if (maskRcnn) {
    const on = `one H100; bench/device/webgpu-maskrcnn.ts, ${maskRcnn.started.slice(0, 16)}Z`;
    rows.push({ name: 'webgpu Mask R-CNN losses vs the cpu backend (tiny config, 2 images), worst relative difference', value: maskRcnn.agreement.worstRelative, unit: '', target: '≤ 1e-4', ok: maskRcnn.agreement.worstRelative <= 1e-4, note: on });
    const classifier = maskRcnn['resnet50-classifier'];
    if (classifier) rows.push({ name: 'webgpu ResNet-50 B=2 512 train step, backend configured as the stages do (selectBackend)', value: classifier.medianMs, unit: 'ms', note: `all: ${classifier.allMs?.join(', ')} ms` });
    for (const [key, label] of [
      ['small-256', 'small backbone at 256, 1 image (the cpu profile network)'],
      ['resnet50-512-b2', 'ResNet-50 at 512, 2 images'],
      ['recipe-resnet101-512-b2', 'the recipe: ResNet-101 at 512, 2 images'],
    ] as const) {
      const c = maskRcnn[key] as { trainStepMs: { median: number }; inferenceMs: { median: number } } | undefined;
      if (!c) continue;
      rows.push({ name: `webgpu Mask R-CNN train step (trainStepAsync), ${label}`, value: c.trainStepMs.median, unit: 'ms', ...(key === 'recipe-resnet101-512-b2' ? { note: 'the original: 1.8 s per step on a P100; PyTorch on this card: 57 ms (issue 9)' } : {}) });
      const extra = c as { overlappedStepMs?: number; stepProfile?: { dispatchesPerStep: number; totalKernelMs: number; topKernels: ProgramTimes; totalProgramMs?: number; topPrograms?: ProgramTimes } };
      if (extra.overlappedStepMs !== undefined) rows.push({ name: `webgpu Mask R-CNN train step in the train stage's loop (each step queued while the last one's losses are read), ${label}`, value: extra.overlappedStepMs, unit: 'ms' });
      if (extra.stepProfile) {
        const profile = extra.stepProfile;
        rows.push({ name: `webgpu Mask R-CNN train step, ${label}: GPU time of engine kernels (tf.profile)`, value: profile.totalKernelMs, unit: 'ms', note: `${profile.dispatchesPerStep} dispatches; ${topOf(profile.topKernels)}` });
        if (profile.totalProgramMs !== undefined && profile.topPrograms) rows.push({ name: `webgpu Mask R-CNN train step, ${label}: GPU time of every dispatch (ours included)`, value: profile.totalProgramMs, unit: 'ms', note: topOf(profile.topPrograms) });
      }
      rows.push({ name: `webgpu Mask R-CNN inference of 1 image (detectAsync), ${label.split(',')[0]}`, value: c.inferenceMs.median, unit: 'ms' });
    }
    const latest = maskRcnn.hostNms;
    if (latest) {
      const note = `latest code (NMS by stages/model/greedy-nms.ts), ${latest.started.slice(0, 16)}Z`;
      for (const [key, label] of [['recipe-resnet101-512-b2', 'the recipe: ResNet-101 at 512, 2 images'], ['resnet50-512-b2', 'ResNet-50 at 512, 2 images']] as const) {
        const c = latest[key];
        rows.push({ name: `webgpu Mask R-CNN train step (trainStepAsync), ${label}, host NMS`, value: c.trainStepMs.median, unit: 'ms', note: `all: ${c.trainStepMs.all.map((v) => v.toFixed(0)).join(', ')} ms; ${note}` });
        rows.push({ name: `webgpu Mask R-CNN train step in the train stage's loop, ${label}, host NMS`, value: c.overlappedStepMs, unit: 'ms' });
        rows.push({ name: `webgpu Mask R-CNN inference of 1 image (detectAsync), ${label.split(',')[0]}, host NMS`, value: c.inferenceMs.median, unit: 'ms' });
      }
      const before = latest.cpuProfile.beforeMs;
      rows.push({ name: 'webgpu Mask R-CNN recipe run (model build, 4 steps, 3 inferences): CPU time in NMS, tfjs\' host implementation → ours', value: latest.cpuProfile.afterMs['greedy-nms visit']!, unit: 'ms', note: `${before['intersectionOverUnion (tfjs NMS)']! + before['nonMaxSuppressionImpl_']!} ms before; whole process ${before['total']} → ${latest.cpuProfile.afterMs['total']} ms of CPU samples (node --cpu-prof)` });
    }
    const earlier = maskRcnn.earlierLease;
    const before = earlier?.['recipe-resnet101-512-b2'];
    if (earlier && before) {
      const note = `${earlier.note}, ${earlier.started.slice(0, 16)}Z`;
      rows.push({ name: 'webgpu Mask R-CNN train step (trainStepAsync), the recipe, earlier lease', value: before.trainStepMs.median, unit: 'ms', note: `in the train stage's loop ${before.overlappedStepMs.toFixed(0)} ms; the ResNet-50 classifier there ${earlier['resnet50-classifier'].medianMs.toFixed(0)} ms (the later lease's GPU ran the same matMuls ~2x slower: compare one program's GPU time across leases, not steps); ${note}` });
      rows.push({ name: 'webgpu Mask R-CNN train step, the recipe, earlier lease: GPU time of every dispatch (ours included)', value: before.totalProgramMs, unit: 'ms', note: topOf(before.topPrograms) });
      const now = (maskRcnn['recipe-resnet101-512-b2'] as { stepProfile?: { topPrograms?: ProgramTimes } } | undefined)?.stepProfile?.topPrograms?.['SumOfSquaresProgram'];
      const then = before.topPrograms['SumOfSquaresProgram'];
      if (now && then) rows.push({ name: 'webgpu sums of squares (clip factor + weight decay) in one recipe step: GPU time, one workgroup a term → up to 128', value: now.ms, unit: 'ms', note: `${then.ms.toFixed(1)} ms before (${then.count} dispatches either way)` });
    }
  }
  return rows;
}
