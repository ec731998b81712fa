// What a stage program is: a name, documented flags, and a run function. Flag parsing, --help, and the
// translation of failures into exit codes live here so every stage behaves the same way.
import { parseArgs } from 'node:util';
import { describeUnexpected } from './unexpected-error.js';
import { StageError } from './stage-error.js';
import { stageEvents, type StageEvents } from './contract.js';

/**
 * A flag and what its value must be. parseFlags checks every typed flag once, so a stage reads a value that
 * is already right: `number`/`int` (with optional bounds) become numbers, `enum` one of its values, `bool` the
 * words true|false (a param's value on a command line), `boolean` a flag given without a value.
 */
export type FlagSpec = { description: string; required?: boolean } & (
  | { type: 'string'; default?: string; multiple?: boolean }
  | { type: 'boolean'; default?: boolean }
  | { type: 'bool'; default?: boolean }
  | { type: 'number' | 'int'; default?: number; min?: number; max?: number }
  | { type: 'enum'; values: readonly string[]; default?: string }
);

export type FlagValues = Record<string, string | boolean | number | string[] | undefined>;

/** A stage that wants its declared params reads them itself (contract.ts' stageParams): nothing reads RUNNER_PARAMS for every stage. */
export interface StageContext {
  events: StageEvents;
}

export interface StageProgram {
  name: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  run(flags: FlagValues, context: StageContext): Promise<void>;
}

export function helpText(stage: StageProgram): string {
  const lines = [`usage: dsb2018 ${stage.name} [flags]`, '', stage.summary, '', 'flags:'];
  for (const [name, spec] of Object.entries(stage.flags)) {
    const value = spec.type === 'boolean' ? '' : spec.type === 'enum' ? ` <${spec.values.join('|')}>` : spec.type === 'bool' ? ' <true|false>' : ` <${spec.type === 'string' ? 'value' : spec.type}>`;
    const extra = spec.required ? ' (required)' : spec.default !== undefined ? ` (default: ${String(spec.default)})` : '';
    lines.push(`  --${name}${value}`.padEnd(30) + ` ${spec.description}${extra}`);
  }
  return lines.join('\n');
}

/** Parses argv against the stage's flags; a user mistake becomes a StageError. */
export function parseFlags(stage: StageProgram, argv: string[]): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(stage.flags)) {
    options[name] = spec.type === 'boolean' ? { type: 'boolean' } : { type: 'string', ...(spec.type === 'string' && spec.multiple ? { multiple: true } : {}) };
  }
  let values: FlagValues;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as FlagValues;
  } catch (error) {
    throw new StageError(`${(error as Error).message}\n\n${helpText(stage)}`);
  }
  for (const [name, spec] of Object.entries(stage.flags)) {
    const given = values[name];
    if (given === undefined && spec.required) throw new StageError(`missing required flag --${name}`);
    if (typeof given === 'string') values[name] = typedValue(name, spec, given);
    else if (given === undefined && spec.default !== undefined) values[name] = spec.default;
  }
  return values;
}

/** A typed flag's value from its text; a value that does not fit is a StageError naming the flag. */
function typedValue(name: string, spec: FlagSpec, text: string): string | boolean | number {
  switch (spec.type) {
    case 'string':
    case 'boolean':
      return text;
    case 'bool':
      if (text === 'true' || text === 'false') return text === 'true';
      throw new StageError(`flag --${name}: "${text}" is not true or false`);
    case 'enum':
      if (spec.values.includes(text)) return text;
      throw new StageError(`flag --${name}: "${text}" is not one of ${spec.values.join(', ')}`);
    case 'number':
    case 'int': {
      const value = Number(text);
      if (text.trim() === '' || !Number.isFinite(value)) throw new StageError(`flag --${name}: "${text}" is not a number`);
      const whole = spec.type === 'int';
      const inRange = (spec.min === undefined || value >= spec.min) && (spec.max === undefined || value <= spec.max);
      if (inRange && (!whole || Number.isInteger(value))) return value;
      const range = spec.min !== undefined && spec.max !== undefined ? `within [${spec.min}, ${spec.max}]` : spec.min !== undefined ? `>= ${spec.min}` : spec.max !== undefined ? `<= ${spec.max}` : '';
      throw new StageError(`flag --${name}: ${text} must be ${[whole ? 'a whole number' : '', range].filter(Boolean).join(' ')}`);
    }
  }
}

/** Runs a stage program on argv; returns the process exit code. */
export async function runStageProgram(stage: StageProgram, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText(stage) + '\n');
    return 0;
  }
  try {
    const flags = parseFlags(stage, argv);
    await stage.run(flags, { events: stageEvents() });
    return 0;
  } catch (error) {
    if (error instanceof StageError) {
      process.stderr.write(`dsb2018 ${stage.name}: error: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`dsb2018 ${stage.name}: error: ${describeUnexpected(error)}\n`);
    if (process.env['RUNNER_DEBUG'] === '1' && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
    return 1;
  }
}

/** Typed flag accessors: a wrong type or a non-number is a StageError naming the flag. */
export function stringFlag(flags: FlagValues, name: string): string {
  const value = flags[name];
  if (typeof value !== 'string') throw new StageError(`flag --${name} needs a value`);
  return value;
}

export function optionalStringFlag(flags: FlagValues, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value : undefined;
}

/** A typed number flag's value, undefined when it was not given and has no default. */
export function optionalNumberFlag(flags: FlagValues, name: string): number | undefined {
  return flags[name] === undefined ? undefined : numberFlag(flags, name);
}

export function numberFlag(flags: FlagValues, name: string): number {
  const given = flags[name];
  if (typeof given === 'number') return given;
  const text = stringFlag(flags, name);
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new StageError(`flag --${name}: "${text}" is not a number`);
  return value;
}

/** An `enum` flag's value, typed as one of `values` (the same list its FlagSpec declares). */
export function enumFlag<T extends string>(flags: FlagValues, name: string, values: readonly T[]): T {
  const value = stringFlag(flags, name);
  if (!(values as readonly string[]).includes(value)) throw new StageError(`flag --${name}: "${value}" is not one of ${values.join(', ')}`);
  return value as T;
}

export function booleanFlag(flags: FlagValues, name: string): boolean {
  const value = flags[name];
  if (typeof value === 'string') {
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw new StageError(`flag --${name}: "${value}" is not true or false`);
  }
  return value === true;
}
