// What a person sees during `runner run`: on a TTY one live progress bar per running stage (fed by the
// stage's events), otherwise plain lines. Both print one line per finished stage. Written to stderr, so
// `--json` keeps stdout for the summary.
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { StageEvent } from './events.js';
import { describeFailure } from './failure.js';
import type { StageResult } from './stage-run.js';
import { durationText } from './duration-text.js';

export interface Reporter {
  starting(stage: string, reasons: string[]): void;
  event(stage: string, event: StageEvent): void;
  finished(stage: string, result: StageResult): void;
  close(): void;
}

function logTail(file: string | undefined, lines = 10): string[] {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(1).slice(-lines);
}

/** The line printed when a stage is done. */
export function finishedLine(stage: string, result: StageResult, workspace: string): string {
  switch (result.status) {
    case 'ran':
      return `✓ ${stage} ran in ${durationText(result.durationMs)}`;
    case 'restored':
      return `↺ ${stage} restored from run-cache`;
    case 'fresh':
      return `· ${stage} fresh`;
    case 'skipped':
      return `- ${stage} skipped: ${result.failure ? describeFailure(result.failure) : ''}`;
    case 'failed': {
      // A stage that wrote nothing has no log (the spawn helper creates it at the first byte).
      const log = !result.logFile ? '' : existsSync(result.logFile) ? ` (log: ${relative(workspace, result.logFile)})` : ' (it wrote no output)';
      const tail = logTail(result.logFile).map((line) => `    | ${line}`);
      return [`✗ ${stage} failed: ${result.failure ? describeFailure(result.failure) : ''}${log}`, ...tail].join('\n');
    }
  }
}

class PlainReporter implements Reporter {
  private readonly lastProgress = new Map<string, number>();
  constructor(private readonly out: NodeJS.WritableStream, private readonly workspace: string) {}

  starting(stage: string, reasons: string[]): void {
    this.out.write(`▶ ${stage}${reasons.length ? ` (${reasons.join('; ')})` : ''}\n`);
  }

  event(stage: string, event: StageEvent): void {
    if (event.type === 'log') this.out.write(`  [${stage}] ${event.message}\n`);
    if (event.type === 'progress') {
      // At most one line every 5 s per stage, plus the last.
      const now = Date.now();
      if (event.done < event.total && now - (this.lastProgress.get(stage) ?? 0) < 5000) return;
      this.lastProgress.set(stage, now);
      const eta = event.etaSeconds === undefined ? '' : `, ${durationText(event.etaSeconds * 1000)} left`;
      this.out.write(`  [${stage}] ${event.label ? event.label + ' ' : ''}${event.done}/${event.total} ${event.unit}${eta}\n`);
    }
  }

  finished(stage: string, result: StageResult): void {
    this.out.write(finishedLine(stage, result, this.workspace) + '\n');
  }

  close(): void {}
}

type MultiBar = import('cli-progress').MultiBar;
type SingleBar = import('cli-progress').SingleBar;

class TtyReporter implements Reporter {
  private readonly bars = new Map<string, SingleBar>();
  constructor(private readonly multibar: MultiBar, private readonly workspace: string) {}

  starting(stage: string): void {
    this.bars.set(stage, this.multibar.create(1, 0, { stage, unit: '' }));
  }

  event(stage: string, event: StageEvent): void {
    const bar = this.bars.get(stage);
    if (event.type === 'log') this.multibar.log(`  [${stage}] ${event.message}\n`);
    if (event.type === 'progress' && bar) {
      bar.setTotal(Math.max(1, event.total));
      const eta = event.etaSeconds === undefined ? '' : ` (${durationText(event.etaSeconds * 1000)} left)`;
      bar.update(event.done, { stage, unit: `${event.label ? event.label + ' ' : ''}${event.unit}${eta}` });
    }
  }

  finished(stage: string, result: StageResult): void {
    const bar = this.bars.get(stage);
    if (bar) this.multibar.remove(bar), this.bars.delete(stage);
    this.multibar.log(finishedLine(stage, result, this.workspace) + '\n');
  }

  close(): void {
    this.multibar.stop();
  }
}

export async function createReporter(workspace: string, stream: NodeJS.WriteStream = process.stderr): Promise<Reporter> {
  if (!stream.isTTY) return new PlainReporter(stream, workspace);
  // Only a terminal pays for loading cli-progress.
  const { MultiBar, Presets } = await import('cli-progress');
  const multibar = new MultiBar(
    { format: ' {bar} {stage} {value}/{total} {unit} | {duration_formatted}', clearOnComplete: true, hideCursor: true, stream, autopadding: true },
    Presets.shades_classic,
  );
  return new TtyReporter(multibar, workspace);
}
