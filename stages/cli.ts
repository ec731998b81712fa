// `dsb2018 <stage> [flags]`: the DSB2018 stage programs behind one command. Each stage lives in its own
// module, loaded only when asked for, and exports `stage: StageProgram` (see ./program.ts).
import { describeUnexpected } from './unexpected-error.js';
import { runStageProgram, type StageProgram } from './program.js';

/** Stage name -> module path (relative to this file). */
const stages: Record<string, string> = {
  'fix-masks': './data/fix-masks.js',
  'strip-alpha': './data/strip-alpha.js',
  'fill-holes': './data/fill-holes.js',
  split: './data/split.js',
  external: './data/external.js',
  mosaic: './data/mosaic.js',
  synth: './data/synth.js',
  export: './data/export.js',
  train: './train/train.js',
  predict: './predict/predict.js',
  postprocess: './postprocess/postprocess.js',
  evaluate: './evaluate/evaluate.js',
  score: './evaluate/score.js',
};

function usage(): string {
  return [
    'usage: dsb2018 <stage> [flags]   (dsb2018 <stage> --help for its flags)',
    '',
    'stages:',
    ...Object.keys(stages).map((name) => `  ${name}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const modulePath = stages[name];
  if (!modulePath) {
    process.stderr.write(`dsb2018: unknown stage "${name}"\n\n${usage()}\n`);
    return 2;
  }
  const module = (await import(modulePath)) as { stage: StageProgram };
  return runStageProgram(module.stage, rest);
}

// The error boundary of every stage program: one line naming the problem, the stack only with RUNNER_DEBUG=1.
function reportUnexpected(cause: unknown): void {
  const stage = process.argv[2] ?? '';
  process.stderr.write(`dsb2018 ${stage ? stage + ': ' : ''}error: ${describeUnexpected(cause)}\n`);
  if (process.env['RUNNER_DEBUG'] === '1' && cause instanceof Error) process.stderr.write(`${cause.stack ?? ''}\n`);
}

for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (cause: unknown) => {
    reportUnexpected(cause);
    process.exit(1);
  });
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (cause) {
  reportUnexpected(cause);
  process.exitCode = 1;
}
