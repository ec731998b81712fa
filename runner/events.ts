// Tails a stage's RUNNER_EVENTS file (JSON lines it appends: progress, metric, log). Read by polling the file,
// not from the process, so events work the same for a stage running on another machine of a shared disk.
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';

export type StageEvent =
  | { type: 'progress'; done: number; total: number; unit: string; label?: string; etaSeconds?: number }
  | { type: 'metric'; values: Record<string, unknown> }
  | { type: 'log'; message: string }
  | { type: 'invalid'; line: string };

export function parseEventLine(line: string): StageEvent {
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    const progress = record['progress'] as Record<string, unknown> | undefined;
    if (progress && typeof progress['done'] === 'number' && typeof progress['total'] === 'number') {
      const event: StageEvent = { type: 'progress', done: progress['done'], total: progress['total'], unit: String(progress['unit'] ?? '') };
      if (typeof progress['label'] === 'string') event.label = progress['label'];
      if (typeof progress['eta'] === 'number' && Number.isFinite(progress['eta']) && progress['eta'] >= 0) event.etaSeconds = progress['eta'];
      return event;
    }
    const metric = record['metric'];
    if (metric !== null && typeof metric === 'object' && !Array.isArray(metric)) return { type: 'metric', values: metric as Record<string, unknown> };
    if (typeof record['log'] === 'string') return { type: 'log', message: record['log'] };
  } catch {
    // fall through: reported as invalid, never fatal to the stage
  }
  return { type: 'invalid', line };
}

export class EventsTail {
  private offset = 0;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string,
    private readonly onEvent: (event: StageEvent) => void,
  ) {}

  start(intervalMs = 250): void {
    this.timer = setInterval(() => this.poll(), intervalMs);
    this.timer.unref();
  }

  /** Stops polling and delivers whatever the file still holds (a last line without newline included). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.poll();
    if (this.partial.trim()) this.onEvent(parseEventLine(this.partial));
    this.partial = '';
  }

  poll(): void {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return; // the stage hasn't written any event yet
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return;
      const buffer = Buffer.alloc(size - this.offset);
      const read = readSync(fd, buffer, 0, buffer.length, this.offset);
      this.offset += read;
      const lines = (this.partial + buffer.subarray(0, read).toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.onEvent(parseEventLine(line));
    } finally {
      closeSync(fd);
    }
  }
}
