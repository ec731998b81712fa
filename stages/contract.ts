// The stage side of the runner's stage contract — the only thing a stage knows about the runner.
//
//   argv             from the pipeline's `cmd`, one element per param value (never re-split)
//   RUNNER_PARAMS    path of a JSON file holding the stage's declared params (optional)
//   RUNNER_EVENTS    path of a JSONL file the stage appends events to (optional):
//                      {"progress": {"done": 3, "total": 25, "unit": "epoch", "eta": 1200}}   (eta: seconds, optional)
//                      {"metric": {"val_loss": 0.41}}
//                      {"log": "text"}
//   exit code        0 only when every declared output is complete
//
// Outside the runner (no RUNNER_EVENTS) progress and logs go to stderr so a person sees them.
import { appendFileSync, readFileSync, existsSync } from 'node:fs';

export type EventRecord =
  | { progress: { done: number; total: number; unit: string; label?: string; eta?: number } }
  | { metric: Record<string, unknown> }
  | { log: string };

export interface StageEvents {
  /** `eta`: the stage's own estimate of the seconds left, where it has one. */
  progress(done: number, total: number, unit: string, label?: string, eta?: number): void;
  metric(values: Record<string, unknown>): void;
  log(message: string): void;
}

/** Events written to RUNNER_EVENTS when the runner gave one, else to stderr for a person. */
export function stageEvents(env: NodeJS.ProcessEnv = process.env): StageEvents {
  const file = env['RUNNER_EVENTS'];
  const emit = (record: EventRecord): void => {
    if (file) appendFileSync(file, JSON.stringify(record) + '\n');
  };
  let lastPrinted = 0;
  return {
    progress(done, total, unit, label, eta) {
      const known = eta !== undefined && Number.isFinite(eta);
      if (file) return emit({ progress: { done, total, unit, ...(label ? { label } : {}), ...(known ? { eta: Math.round(eta) } : {}) } });
      // Throttled plain line for a person running the stage by hand.
      const now = Date.now();
      if (done === total || now - lastPrinted > 1000) {
        lastPrinted = now;
        process.stderr.write(`${label ? label + ' ' : ''}${done}/${total} ${unit}${known ? `, ${formatEta(eta)} left` : ''}\n`);
      }
    },
    metric(values) {
      if (file) emit({ metric: values });
      else process.stderr.write(`metric ${JSON.stringify(values)}\n`);
    },
    log(message) {
      if (file) emit({ log: message });
      process.stderr.write(message + '\n');
    },
  };
}

/** Seconds as a person reads a wait: "45 s", "12 min", "3.4 h", "2.1 days". */
export function formatEta(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

/** The stage's declared params from RUNNER_PARAMS, or {} when run by hand. */
export function stageParams(env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const file = env['RUNNER_PARAMS'];
  if (!file || !existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}
