// Timing helpers shared by the benchmarks: the median of repeated runs after a warm-up.

/** The middle value (the upper one of an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds of `fn`, the median of `repeat` runs after one warm-up run (JIT, kernel compilation, caches). */
export function timeIt(repeat: number, fn: () => unknown): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** timeIt for a function that awaits (the model's entry points): each run's time is until its promise settles. */
export async function timeItAsync(repeat: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}
