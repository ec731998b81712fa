// stages/program.ts: typed flags are checked once, by parseFlags, before a stage runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enumFlag, helpText, parseFlags, type StageProgram } from '../stages/program.js';
import { StageError } from '../stages/stage-error.js';

const stage: StageProgram = {
  name: 'demo',
  summary: 'a stage with one flag of each type',
  flags: {
    name: { type: 'string', required: true, description: 'a name' },
    rate: { type: 'number', min: 0, max: 1, default: 0.5, description: 'a rate' },
    count: { type: 'int', min: 1, default: 3, description: 'a count' },
    mode: { type: 'enum', values: ['fast', 'exact'], default: 'fast', description: 'a mode' },
    fill: { type: 'bool', default: true, description: 'whether to fill' },
    verbose: { type: 'boolean', description: 'say more' },
  },
  run: async () => {},
};

test('typed flags arrive as numbers, one of their values, or booleans; absent ones take their defaults', () => {
  assert.deepEqual({ ...parseFlags(stage, ['--name', 'a']) }, { name: 'a', rate: 0.5, count: 3, mode: 'fast', fill: true });
  const flags = parseFlags(stage, ['--name', 'a', '--rate', '0.25', '--count', '7', '--mode', 'exact', '--fill', 'false', '--verbose']);
  assert.deepEqual({ ...flags }, { name: 'a', rate: 0.25, count: 7, mode: 'exact', fill: false, verbose: true });
  assert.equal(enumFlag(flags, 'mode', ['fast', 'exact'] as const), 'exact');
});

test('a value that does not fit its flag is a StageError naming the flag and what it must be', () => {
  const cases: [string[], RegExp][] = [
    [['--rate', 'high'], /^flag --rate: "high" is not a number$/],
    [['--rate', ''], /^flag --rate: "" is not a number$/],
    [['--rate', '1.5'], /^flag --rate: 1\.5 must be within \[0, 1\]$/],
    [['--count', '2.5'], /^flag --count: 2\.5 must be a whole number >= 1$/],
    [['--count', '0'], /^flag --count: 0 must be a whole number >= 1$/],
    [['--mode', 'slow'], /^flag --mode: "slow" is not one of fast, exact$/],
    [['--fill', 'yes'], /^flag --fill: "yes" is not true or false$/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseFlags(stage, ['--name', 'a', ...args]), (error: unknown) => error instanceof StageError && message.test(error.message), args.join(' '));
  }
  assert.throws(() => parseFlags(stage, []), /missing required flag --name/);
});

test('--help shows what each typed flag takes', () => {
  const help = helpText(stage);
  assert.match(help, /--mode <fast\|exact> +a mode \(default: fast\)/);
  assert.match(help, /--count <int> +a count \(default: 3\)/);
  assert.match(help, /--fill <true\|false> +whether to fill \(default: true\)/);
  assert.match(help, /--verbose +say more/);
});
