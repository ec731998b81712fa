// What a stage program is: a name, documented flags, and a run function. Flag parsing, --help, and the
// translation of failures into exit codes live here so every stage behaves the same way.
import { parseArgs } from 'node:util';
import { StageError } from './stage-error.js';
import { stageEvents, type StageEvents } from './contract.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in --help and used when the flag is absent. */
  default?: string | boolean;
  multiple?: boolean;
  required?: boolean;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

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
    const value = spec.type === 'string' ? ' <value>' : '';
    const extra = spec.required ? ' (required)' : spec.default !== undefined ? ` (default: ${String(spec.default)})` : '';
    lines.push(`  --${name}${value}`.padEnd(30) + ` ${spec.description}${extra}`);
  }
  return lines.join('\n');
}

/** Parses argv against the stage's flags; a user mistake becomes a StageError. */
export function parseFlags(stage: StageProgram, argv: string[]): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(stage.flags)) {
    options[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) };
  }
  let values: FlagValues;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as FlagValues;
  } catch (error) {
    throw new StageError(`${(error as Error).message}\n\n${helpText(stage)}`);
  }
  for (const [name, spec] of Object.entries(stage.flags)) {
    if (values[name] === undefined && spec.default !== undefined) values[name] = spec.default;
    if (values[name] === undefined && spec.required) throw new StageError(`missing required flag --${name}`);
  }
  return values;
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
    throw error;
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

export function numberFlag(flags: FlagValues, name: string): number {
  const text = stringFlag(flags, name);
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new StageError(`flag --${name}: "${text}" is not a number`);
  return value;
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
