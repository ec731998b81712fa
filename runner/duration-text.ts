// How the runner writes a duration for a person: progress lines, failure reasons and the report alike.

/** `850 ms`, `12.3 s`, `2.5 min`. */
export function durationText(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}
