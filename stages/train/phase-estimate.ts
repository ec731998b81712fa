// How long the rest of a training phase will take, said early: the recipe's ResNet-101 at 512 on a CPU backend
// (wasm: ~60 s a step on 2 cores) means weeks, and a new user should learn that after a few steps, not after
// a day. The estimate never stops the phase; it names the way out.
import { formatEta } from '../contract.js';

/** Steps timed before the first estimate (the first steps also pay for kernel compilation and warm-up). */
const WARM_UP_STEPS = 3;
/** A phase estimated past this on a CPU backend gets the warning. */
const ABSURD_SECONDS = 2 * 86400;
const CPU_BACKENDS = new Set(['wasm', 'cpu', 'tfjs-node']);

export interface PhaseEstimate {
  /** Call after each step; returns the seconds left, once known. */
  stepDone(): number | undefined;
}

export function phaseEstimate(options: {
  backend: string;
  phase: string;
  /** Steps this run of the phase will take (what is left after a resume). */
  totalSteps: number;
  log: (message: string) => void;
  now?: () => number;
}): PhaseEstimate {
  const now = options.now ?? Date.now;
  let done = 0;
  let timedFrom: number | undefined;
  return {
    stepDone() {
      done += 1;
      if (timedFrom === undefined) {
        timedFrom = now(); // the first step pays for compilation and warm-up: time from its end
        return undefined;
      }
      const perStep = (now() - timedFrom) / 1000 / (done - 1);
      const left = perStep * (options.totalSteps - done);
      if (done === WARM_UP_STEPS) {
        options.log(`train: ${perStep.toFixed(1)} s a step on ${options.backend}: ${options.phase} needs about ${formatEta(left)} more (${options.totalSteps - done} steps)`);
        if (left > ABSURD_SECONDS && CPU_BACKENDS.has(options.backend)) {
          options.log(
            `train: warning: ${formatEta(left)} for one phase is not a practical run on ${options.backend}. ` +
              'On a CPU use the cpu profile (`--profile cpu`: a half-width ResNet50 on 256 px windows, hours), or run this on a GPU ' +
              '(`--set train.backend=webgpu`, or tfjs-node-gpu where it installs). Training goes on.',
          );
        }
      }
      return done >= WARM_UP_STEPS ? left : undefined;
    },
  };
}
