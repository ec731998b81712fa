// The flagship pipeline's code deps: each dsb2018 stage declares its entry (bin/dsb2018.js and its stage
// program's module), and the import closure does the rest. Complete: every workspace module Node loads when
// the program starts (`--help` loads its whole static graph) is in the closure. Tight: an edit in
// stages/evaluate/ leaves the training phases' keys as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CodeDeps } from '../../cache/types.js';
import { openContext } from '../../runner/commands/context.js';
import { presentCodeClosure } from '../../runner/plan.js';
import { loadPipeline, type Pipeline, type StageSpec } from '../../runner/spec/pipeline.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const recordLoads = fileURLToPath(new URL('./fixtures/record-loads.mjs', import.meta.url));

async function closures(pipeline: Pipeline): Promise<Map<string, { entries: string[]; code: CodeDeps }>> {
  const ctx = await openContext(pipeline);
  ctx.hashMemo = new Map();
  const result = new Map<string, { entries: string[]; code: CodeDeps }>();
  for (const stage of pipeline.stages) {
    const { entries, closure } = await presentCodeClosure(ctx, stage);
    assert.ok(closure, `stage ${stage.name} declares no JS/TS entry`);
    result.set(stage.name, { entries, code: closure.code });
  }
  return result;
}

/** The pipeline, its code (stages load runner/native-addon.ts too) and package.json in a temp workspace (node_modules linked): the tests write there. */
function copyOfRepo(): string {
  const copy = mkdtempSync(join(tmpdir(), 'dsb2018-code-'));
  for (const dir of ['bin', 'stages', 'runner', 'pipelines']) cpSync(join(repo, dir), join(copy, dir), { recursive: true });
  cpSync(join(repo, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(repo, 'node_modules'), join(copy, 'node_modules'));
  return copy;
}

/** `node bin/dsb2018.js <program> …` -> program. */
function programOf(stage: StageSpec): string {
  assert.equal(stage.argv[1], 'bin/dsb2018.js', `stage ${stage.name} is not a dsb2018 program`);
  return stage.argv[2]!;
}

test('complete: every workspace module a dsb2018 stage program loads is in its stage\'s closure', async () => {
  const copy = copyOfRepo();
  const pipeline = await loadPipeline(join(copy, 'pipelines/dsb2018.yaml'), { workspace: copy });
  const byStage = await closures(pipeline);
  const loadsByProgram = new Map<string, string[]>();
  const scratch = mkdtempSync(join(tmpdir(), 'dsb2018-loads-'));
  try {
    for (const stage of pipeline.stages) {
      const program = programOf(stage);
      if (!loadsByProgram.has(program)) {
        const out = join(scratch, `${program}.txt`);
        appendFileSync(out, '');
        const child = spawnSync(process.execPath, ['--import', pathToFileURL(recordLoads).href, 'bin/dsb2018.js', program, '--help'], {
          cwd: copy, encoding: 'utf8', env: { ...process.env, LOADS_OUT: out }, timeout: 120_000,
        });
        assert.equal(child.status, 0, `dsb2018 ${program} --help: ${child.stderr}`);
        const files = readFileSync(out, 'utf8').split('\n').filter((url) => url.startsWith('file:'))
          .map((url) => relative(copy, fileURLToPath(url)).split('\\').join('/'))
          .filter((path) => !path.startsWith('..') && !path.includes('node_modules/'));
        assert.ok(files.includes(`stages/cli.ts`), `${program}: the hook recorded nothing useful: ${files.join(', ')}`);
        loadsByProgram.set(program, [...new Set(files)]);
      }
      const { entries, code } = byStage.get(stage.name)!;
      const covered = new Set([...entries, ...Object.keys(code.files)]);
      const missing = loadsByProgram.get(program)!.filter((file) => !covered.has(file));
      assert.deepEqual(missing, [], `stage ${stage.name} loads modules its closure doesn't have`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(copy, { recursive: true, force: true });
  }
});

test('tight: editing a stages/evaluate file changes the evaluate stages\' closures and leaves the training phases\' as they were', async () => {
  const copy = copyOfRepo();
  try {
    const pipeline = await loadPipeline(join(copy, 'pipelines/dsb2018.yaml'), { workspace: copy });
    const before = await closures(pipeline);
    for (const phase of ['train-phase1', 'train-phase2', 'train-phase3']) {
      assert.deepEqual(Object.keys(before.get(phase)!.code.files).filter((f) => f.startsWith('stages/evaluate/')), [], `${phase} reaches stages/evaluate`);
      assert.ok('stages/model/mask-rcnn.ts' in before.get(phase)!.code.files, `${phase} must reach the model`);
    }
    appendFileSync(join(copy, 'stages/evaluate/metric.ts'), '\n// edited\n');
    const after = await closures((await loadPipeline(join(copy, 'pipelines/dsb2018.yaml'), { workspace: copy })));
    for (const phase of ['train-phase1', 'train-phase2', 'train-phase3', 'synth', 'split']) {
      assert.deepEqual(after.get(phase)!.code, before.get(phase)!.code, `${phase} changed`);
    }
    assert.notDeepEqual(after.get('evaluate')!.code, before.get('evaluate')!.code);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
