// `runner check-deps <pipeline> [stage]…`: runs each stage once under strace and lists the workspace files it
// read that no dep covers, and the files it wrote that are not declared outs. For code the import closure
// can't see (Python, shell, R…). The stage's outs are rewritten like a run's, but nothing is recorded: run
// the pipeline afterwards.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Values } from './values.js';
import { straceAvailable, traceFiles } from '../code-deps/file-trace.js';
import { fingerprint } from '../plan.js';
import { fail } from '../spec/diagnostics.js';
import { loadPipeline, type StageSpec } from '../spec/pipeline.js';
import { nestParams } from '../stage-run.js';
import { isWithin, runnerDirs } from '../workspace.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';
import { resolveNames } from './select.js';

/** Reads nobody declares: the runner's and git's folders, and installed packages (keyed by version instead). */
function ignored(path: string): boolean {
  return ['.runner', '.git', 'node_modules'].some((dir) => isWithin(path, dir) || path.includes(`/${dir}/`));
}

interface Finding {
  stage: string;
  exitCode: number | null;
  undeclaredReads: string[];
  undeclaredWrites: string[];
}

function stageEnv(workspace: string, stage: StageSpec, scratch: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...stage.env, RUNNER_STAGE: stage.name };
  env['PATH'] = [join(workspace, 'node_modules', '.bin'), process.env['PATH']].filter(Boolean).join(':');
  delete env['RUNNER_PARAMS'];
  delete env['RUNNER_EVENTS'];
  if (Object.keys(stage.params).length > 0) {
    const paramsFile = join(scratch, 'params.json');
    writeFileSync(paramsFile, JSON.stringify(nestParams(stage.params), null, 2) + '\n');
    env['RUNNER_PARAMS'] = paramsFile;
  }
  return env;
}

export async function checkDepsCommand(positionals: readonly string[], values: Values): Promise<number> {
  const [file, ...names] = positionals;
  if (file === undefined) fail('expected a pipeline file: runner check-deps <pipeline> [stage]…');
  if (!straceAvailable()) fail('check-deps runs stages under strace, which is not installed here (Debian: apt-get install strace)');
  const pipeline = await loadPipeline(file, loadOptions(values));
  const ctx = await openContext(pipeline);
  const selected = names.length ? resolveNames(pipeline, names, 'check-deps') : pipeline.stages.map((s) => s.name);
  const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
  const findings: Finding[] = [];
  for (const name of selected) {
    const stage = byName.get(name)!;
    const print = await fingerprint(ctx, stage);
    if (!print.ok) fail(`stage "${name}": dep missing: ${print.missingDep} (run its upstream stages first)`);
    const covered = [...stage.deps, ...Object.keys(print.code?.files ?? {})];
    const outs = [...stage.outs, ...stage.metrics, ...stage.checkpoints];
    const scratch = join(runnerDirs(pipeline.workspace).tmp, 'check-deps', name.replace(/[^A-Za-z0-9_.@=,+-]/g, '_'));
    mkdirSync(scratch, { recursive: true });
    for (const out of outs) mkdirSync(join(pipeline.workspace, out, '..'), { recursive: true });
    const argv = stage.shell ? ['/bin/sh', '-c', stage.argv[0]!] : stage.argv;
    if (!values['json']) process.stderr.write(`check-deps: running ${name} under strace\n`);
    const trace = await traceFiles(argv, { cwd: pipeline.workspace, env: stageEnv(pipeline.workspace, stage, scratch), traceFile: join(scratch, 'strace.txt') });
    const written = (path: string): boolean => trace.writes.has(path);
    findings.push({
      stage: name,
      exitCode: trace.exitCode,
      undeclaredReads: [...trace.reads].filter((p) => !ignored(p) && !written(p) && !covered.some((dep) => isWithin(p, dep)) && !outs.some((out) => isWithin(p, out))).sort(),
      // A temp file renamed into an out (or deleted) is gone by now: only what the stage left counts.
      undeclaredWrites: [...trace.writes].filter((p) => !ignored(p) && !outs.some((out) => isWithin(p, out)) && existsSync(join(pipeline.workspace, p))).sort(),
    });
  }
  ctx.statCache.save();
  const clean = findings.every((f) => f.undeclaredReads.length === 0 && f.undeclaredWrites.length === 0);
  if (values['json']) {
    process.stdout.write(JSON.stringify({ pipeline: pipeline.file, stages: findings }, null, 2) + '\n');
  } else {
    const lines: string[] = [];
    for (const f of findings) {
      lines.push(`${f.stage}: exit ${f.exitCode ?? 'signal'}${f.undeclaredReads.length || f.undeclaredWrites.length ? '' : ', every file it read is a dep, every file it wrote an out'}`);
      for (const path of f.undeclaredReads) lines.push(`    read, but no dep covers it: ${path}`);
      for (const path of f.undeclaredWrites) lines.push(`    wrote, but it is not a declared out: ${path}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  return clean ? 0 : 1;
}
