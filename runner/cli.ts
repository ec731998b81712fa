#!/usr/bin/env node
// The `runner` command line: argument parsing (node:util parseArgs), --help for every command, and the one
// place user mistakes become printed diagnostics and exit code 2. Commands live in runner/commands/ and are
// imported only when used, so `runner status` doesn't pay for what `runner run` needs.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { describeUnexpected } from './failure.js';
import type { Values } from './commands/values.js';
import { DiagnosticError, didYouMean, formatDiagnostic } from './spec/diagnostics.js';

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { help: string; value?: string };

const common = {
  workspace: { type: 'string', value: 'DIR', help: 'workspace root (default: nearest ancestor of the pipeline holding .runner/, .git or package.json)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

const paramOptions = {
  set: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'override a param (value parsed as YAML: 1e-5 is a number); repeatable' },
  profile: { type: 'string', value: 'NAME', help: 'apply a named param overlay from the pipeline\'s profiles' },
} satisfies Record<string, OptionSpec>;

const remoteOptions = {
  remote: { type: 'string', value: 'URL', help: 'remote cache: http(s)://host/path, file:///path or s3://bucket/prefix (default: RUNNER_REMOTE, then the pipeline\'s cache.remote)' },
} satisfies Record<string, OptionSpec>;

interface CommandSpec {
  usage: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** How many positional arguments; -1: any number (passed on as a list). */
  positionals: number;
}

export const COMMANDS: Record<string, CommandSpec> = {
  run: {
    usage: 'runner run <pipeline> [options]',
    summary: 'Run what is stale, restore what the run-cache has, skip what is fresh.',
    positionals: 1,
    options: {
      ...paramOptions,
      jobs: { type: 'string', short: 'j', value: 'N', help: 'run up to N stages at once (default: number of cpus)' },
      only: { type: 'string', multiple: true, value: 'STAGE', help: 'run only this stage (a template name selects all its foreach items); repeatable' },
      until: { type: 'string', multiple: true, value: 'STAGE', help: 'run this stage and everything upstream of it; repeatable' },
      force: { type: 'string', multiple: true, value: 'STAGE', help: 'run this stage even if fresh or restorable; repeatable' },
      'dry-run': { type: 'boolean', help: 'print what would run, restore or be skipped; change nothing' },
      'keep-going': { type: 'boolean', help: 'after a failure, still run every stage that does not depend on it' },
      json: { type: 'boolean', help: 'print one JSON summary on stdout (per stage: status ran|restored|fresh|failed|skipped, durationMs)' },
      executor: { type: 'string', value: 'NAME', help: 'run every stage on this executor (choices: local, slurm)' },
      'slurm-partition': { type: 'string', value: 'NAME', help: 'Slurm partition for the jobs (sbatch --partition; overrides the pipeline\'s slurm:)' },
      'slurm-account': { type: 'string', value: 'NAME', help: 'Slurm account to charge (sbatch --account)' },
      'slurm-time': { type: 'string', value: 'DURATION', help: 'Slurm time limit of stages without a timeout (e.g. 4h)' },
      'slurm-arg': { type: 'string', multiple: true, value: 'ARG', help: 'extra sbatch argument, e.g. --slurm-arg=--qos=high; repeatable' },
      ...remoteOptions,
      push: { type: 'boolean', help: 'upload what this run ran or restored that the remote lacks (default: read-only)' },
      'no-remote': { type: 'boolean', help: 'use no remote cache, whatever the pipeline or RUNNER_REMOTE say' },
      ...common,
    },
  },
  status: {
    usage: 'runner status <pipeline> [options]',
    summary: 'Per stage: fresh, or stale with the reasons, and whether the run-cache can restore it.',
    positionals: 1,
    options: { ...paramOptions, json: { type: 'boolean', help: 'print JSON instead of text' }, ...common },
  },
  deps: {
    usage: 'runner deps <pipeline> <stage>… [options]',
    summary: 'The code closure of stages: files their JS/TS deps import, packages by version, what could not be followed.',
    positionals: -1,
    options: { ...paramOptions, json: { type: 'boolean', help: 'print JSON instead of text' }, ...common },
  },
  'check-deps': {
    usage: 'runner check-deps <pipeline> [stage]… [options]',
    summary: 'Run stages once under strace: workspace files read that no dep covers, outs written but not declared.',
    positionals: -1,
    options: { ...paramOptions, json: { type: 'boolean', help: 'print JSON instead of text' }, ...common },
  },
  dag: {
    usage: 'runner dag <pipeline> [options]',
    summary: 'Print the stage graph.',
    positionals: 1,
    options: { format: { type: 'string', value: 'text|mermaid|dot', help: 'output format (default: text)' }, ...paramOptions, ...common },
  },
  params: {
    usage: 'runner params <pipeline> [options]',
    summary: 'Print the effective params (after --profile and --set) as YAML.',
    positionals: 1,
    options: { ...paramOptions, json: { type: 'boolean', help: 'print JSON instead of YAML' }, ...common },
  },
  gc: {
    usage: 'runner gc [options]',
    summary: 'Delete cache objects that no lock file and no run-cache entry references.',
    positionals: 0,
    options: {
      'dry-run': { type: 'boolean', help: 'report what would be deleted; delete nothing' },
      json: { type: 'boolean', help: 'print JSON instead of text' },
      remote: { type: 'string', value: 'URL', help: 'collect the remote cache instead (file:// and s3://): drop objects no record names, and records naming missing objects' },
      ...common,
    },
  },
  push: {
    usage: 'runner push <pipeline> [--remote URL] [options]',
    summary: 'Upload every output and run record the lock file references to the remote cache.',
    positionals: 1,
    options: { ...remoteOptions, ...paramOptions, ...common },
  },
  pull: {
    usage: 'runner pull <pipeline> [--remote URL] [options]',
    summary: 'Download the lock file\'s outputs and run records from the remote cache and restore the workspace.',
    positionals: 1,
    options: { ...remoteOptions, ...paramOptions, ...common },
  },
  sweep: {
    usage: 'runner sweep <pipeline | sweep file> [--grid KEY=V1,V2]… [options]',
    summary: 'Run every param combination as an experiment in its own workspace, sharing unchanged stages.',
    positionals: 1,
    options: {
      grid: { type: 'string', multiple: true, value: 'KEY=V1,V2', help: 'sweep a param over these values (YAML values; every combination of all --grid flags); repeatable' },
      ...paramOptions,
      'no-baseline': { type: 'boolean', help: 'do not run the pipeline\'s own params as the "baseline" experiment' },
      only: { type: 'string', multiple: true, value: 'NAME[,NAME]', help: 'run only these named experiments of the sweep file (and the baseline); repeatable' },
      jobs: { type: 'string', short: 'j', value: 'N', help: 'run up to N stages at once inside each experiment' },
      'keep-going': { type: 'boolean', help: 'inside an experiment, after a failure still run what does not depend on it' },
      json: { type: 'boolean', help: 'print the experiment records and the comparison as JSON' },
      ...common,
    },
  },
  exp: {
    usage: 'runner exp list | show <id> | remove <id>… [options]',
    summary: 'List, show or remove recorded experiments (.runner/exps/).',
    positionals: -1,
    options: { json: { type: 'boolean', help: 'print JSON instead of text (list)' }, ...common },
  },
  compare: {
    usage: 'runner compare [id|name]… [options]',
    summary: 'Params that differ and every metric, with deltas against the baseline and the best marked.',
    positionals: -1,
    options: {
      baseline: { type: 'string', value: 'ID', help: 'experiment the deltas are taken against (default: the one named "baseline")' },
      json: { type: 'boolean', help: 'print JSON instead of a table' },
      markdown: { type: 'boolean', help: 'print a Markdown table' },
      metric: { type: 'string', multiple: true, value: 'PATTERN', help: 'only metrics whose name matches (* matches anything; e.g. "evaluate.*"); repeatable' },
      changed: { type: 'boolean', help: 'only metrics whose value differs between the experiments' },
      ...common,
    },
  },
  watch: {
    usage: 'runner watch start|stop|status [options]',
    summary: 'An opt-in file watcher daemon so a warm status skips walking unchanged dep directories.',
    positionals: -1,
    options: {
      dir: { type: 'string', value: 'DIR', help: 'the workspace (default: nearest ancestor of the current folder holding .runner/, .git or package.json)' },
      'idle-hours': { type: 'string', value: 'N', help: 'start: exit after N hours without a query (default: 12)' },
      json: { type: 'boolean', help: 'status: print JSON' },
      ...common,
    },
  },
  report: {
    usage: 'runner report [id|name]… [options]',
    summary: 'Write one self-contained HTML page: DAG, timings, experiments, curves, ablation charts, images.',
    positionals: -1,
    options: {
      out: { type: 'string', short: 'o', value: 'FILE', help: 'where to write the page (default: report.html)' },
      baseline: { type: 'string', value: 'ID', help: 'experiment the deltas are taken against (default: the one named "baseline")' },
      title: { type: 'string', value: 'TEXT', help: 'the page title (default: the pipeline file)' },
      metric: { type: 'string', multiple: true, value: 'PATTERN', help: 'only metrics whose name matches (* matches anything); repeatable' },
      'all-metrics': { type: 'boolean', help: 'also metrics with the same value in every experiment (left out by default)' },
      ...common,
    },
  },
};

export function commandHelp(name: string): string {
  const spec = COMMANDS[name]!;
  const lines = [`usage: ${spec.usage}`, '', spec.summary, '', 'options:'];
  for (const [flag, option] of Object.entries(spec.options)) {
    const short = option.short ? `-${option.short}, ` : '    ';
    lines.push(`  ${short}--${flag}${option.value ? ' ' + option.value : ''}`.padEnd(34) + ` ${option.help}`);
  }
  return lines.join('\n');
}

export function mainHelp(): string {
  const lines = ['usage: runner <command> [options]', '', 'Declarative YAML pipelines of content-hashed, cached subprocess stages.', '', 'commands:'];
  for (const [name, spec] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)} ${spec.summary}`);
  lines.push('', 'Run `runner <command> --help` for its options.', 'Exit codes: 0 all good, 1 a stage failed, 2 a usage, pipeline or system error (disk full, permissions).', 'RUNNER_DEBUG=1 adds the stack trace to an unexpected error.');
  return lines.join('\n');
}

export class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp() + '\n');
    return name === undefined ? 2 : 0;
  }
  const spec = COMMANDS[name];
  try {
    if (!spec) throw new UsageError(`unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}; commands: ${Object.keys(COMMANDS).join(', ')}`);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: spec.options, allowPositionals: true, strict: true });
    } catch (cause) {
      const message = (cause as Error).message.replace(/\. To specify a positional argument.*$/s, '');
      const flag = /'(--?[\w-]+)/.exec(message)?.[1];
      const names = Object.keys(spec.options).map((f) => `--${f}`);
      throw new UsageError(`${message}${flag && message.startsWith('Unknown option') ? didYouMean(flag, names) : ''}`);
    }
    const values = parsed.values as Values;
    // `runner watch start --help` and its siblings: the action's own help.
    if (name === 'watch' && parsed.positionals.length > 0) return await (await import('./watch/command.js')).watchCommand(parsed.positionals, values);
    if (values['help']) {
      process.stdout.write(commandHelp(name) + '\n');
      return 0;
    }
    if (spec.positionals >= 0 && parsed.positionals.length !== spec.positionals) {
      throw new UsageError(spec.positionals ? `expected one pipeline file, got ${parsed.positionals.length} arguments` : `unexpected argument "${parsed.positionals[0]}"`);
    }
    const pipeline = parsed.positionals[0] ?? '';
    switch (name) {
      case 'run':
        return await (await import('./commands/run.js')).runCommand(pipeline, values);
      case 'status':
        return await (await import('./commands/status.js')).statusCommand(pipeline, values);
      case 'deps':
        return await (await import('./commands/deps.js')).depsCommand(parsed.positionals, values);
      case 'check-deps':
        return await (await import('./commands/check-deps.js')).checkDepsCommand(parsed.positionals, values);
      case 'dag':
        return await (await import('./commands/dag.js')).dagCommand(pipeline, values);
      case 'params':
        return await (await import('./commands/params.js')).paramsCommand(pipeline, values);
      case 'gc':
        return await (await import('./commands/gc.js')).gcCommand(values);
      case 'push':
        return await (await import('./commands/push.js')).pushCommand(pipeline, values);
      case 'pull':
        return await (await import('./commands/pull.js')).pullCommand(pipeline, values);
      case 'sweep':
        return await (await import('./commands/sweep.js')).sweepCommand(pipeline, values);
      case 'exp':
        return await (await import('./commands/exp.js')).expCommand(parsed.positionals, values);
      case 'compare':
        return await (await import('./commands/compare.js')).compareCommand(parsed.positionals, values);
      case 'report':
        return await (await import('./commands/report.js')).reportCommand(parsed.positionals, values);
      case 'watch':
        return await (await import('./watch/command.js')).watchCommand(parsed.positionals, values);
    }
    return 2;
  } catch (cause) {
    if (cause instanceof DiagnosticError) {
      process.stderr.write(cause.diagnostics.map(formatDiagnostic).join('\n') + '\n');
      return 2;
    }
    if (cause instanceof UsageError) {
      process.stderr.write(`runner ${spec ? name + ': ' : ''}error: ${cause.message}\n${spec ? `Run \`runner ${name} --help\` for usage.\n` : ''}`);
      return 2;
    }
    reportUnexpected(cause, spec ? name : undefined);
    return 2;
  }
}

/** The error boundary: one line (file, what to do), never a stack trace unless RUNNER_DEBUG=1 asks for it. */
function reportUnexpected(cause: unknown, command: string | undefined): void {
  process.stderr.write(`runner ${command ? command + ': ' : ''}error: ${describeUnexpected(cause)}\n`);
  if (process.env['RUNNER_DEBUG'] === '1' && cause instanceof Error) process.stderr.write(`${cause.stack ?? ''}\n`);
}

// Errors thrown outside main's await chain (a timer's callback, a stream's 'error' event) end here.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (cause: unknown) => {
    reportUnexpected(cause, process.argv[2] !== undefined && COMMANDS[process.argv[2]] ? process.argv[2] : undefined);
    process.exit(2);
  });
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
