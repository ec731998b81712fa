// How the runner writes a duration for a person: progress lines, failure reasons and the report alike.

/** `850 ms`, `12.3 s`, `2.5 min`, `3.4 h`, `2.1 days` (a training phase's time left can be any of them). */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return ms < 172_800_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${(ms / 86_400_000).toFixed(1)} days`;
}
