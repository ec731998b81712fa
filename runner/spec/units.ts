// Durations (`timeout: 2h`) and sizes (`memory: 4GB`) as a person writes them.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest duration accepted: 10 years. Longer is a typo, and past 2^53 ms sums stop being exact. */
export const MAX_DURATION_MS = 3650 * DURATION_UNITS['d']!;
export const MAX_DURATION_TEXT = '3650d';

/** Milliseconds as written, with no upper bound; undefined when unreadable or negative. */
function durationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.replace(/\s+/g, '')) return undefined;
  return parts.reduce((total, p) => total + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
}

/**
 * Milliseconds for `90`, `30s`, `1h30m`, `500ms`; a bare number is seconds. undefined when unreadable, negative
 * or longer than MAX_DURATION_MS (durationProblem() says which).
 */
export function parseDuration(value: string | number): number | undefined {
  const ms = durationMs(value);
  return ms !== undefined && Number.isFinite(ms) && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** The longest delay given to one Node timer: 24 days, under its 2^31-1 ms (~24.8 days); past that it fires at once. */
export const MAX_TIMER_MS = 24 * DURATION_UNITS['d']!;
export const MAX_TIMER_TEXT = '24d';

/** Why parseDuration() refused a value, for the diagnostic: unreadable, or too long. */
export function durationProblem(value: string | number): string {
  return durationMs(value) !== undefined ? `is longer than the maximum, ${MAX_DURATION_TEXT}` : 'is not a duration like 90s, 30m or 2h';
}

const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** The largest size accepted: 1 PiB (sizes are whole bytes, exact below 2^53). */
export const MAX_SIZE_BYTES = 2 ** 50;
export const MAX_SIZE_TEXT = '1PiB';

/** Bytes as written, with no upper bound; undefined when unreadable or negative. */
function sizeBytes(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!match) return undefined;
  const unit = SIZE_UNITS[(match[2] || 'b').toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

/**
 * Bytes for `4GB`, `512MiB`, `2G` (binary), or a bare number of bytes. undefined when unreadable, negative or
 * larger than MAX_SIZE_BYTES (sizeProblem() says which).
 */
export function parseSize(value: string | number): number | undefined {
  const bytes = sizeBytes(value);
  return bytes !== undefined && bytes <= MAX_SIZE_BYTES ? bytes : undefined;
}

/** Why parseSize() refused a value, for the diagnostic: unreadable, or too large. */
export function sizeProblem(value: string | number): string {
  return sizeBytes(value) !== undefined ? `is larger than the maximum, ${MAX_SIZE_TEXT}` : 'is not a size like 4GB or 512MiB';
}
