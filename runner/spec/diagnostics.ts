// Everything a user can get wrong becomes a Diagnostic: a value with a message and, where it has one, a place
// in a file. Printed wireit-style, with the source line and a marker under the span:
//
//   pipelines/x.yaml:12:12 error: unknown stage "prep" in --only
//     12 |     deps: [prep]
//        |            ^^^^
import { readFileSync } from 'node:fs';

export interface SourceLocation {
  /** As the user named it (relative to the cwd where possible). */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based column of the span's first character. */
  col: number;
  /** 1-based column just past the span (exclusive), on the same line. */
  endCol: number;
}

export interface Diagnostic {
  severity: 'error' | 'warning';
  message: string;
  location?: SourceLocation;
}

/** Thrown to abandon loading a pipeline; carries every diagnostic found so far. Never shown as a stack trace. */
export class DiagnosticError extends Error {
  override readonly name = 'DiagnosticError';
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map((d) => d.message).join('\n'));
  }
}

export function error(message: string, location?: SourceLocation): Diagnostic {
  return location ? { severity: 'error', message, location } : { severity: 'error', message };
}

export function fail(message: string, location?: SourceLocation): never {
  throw new DiagnosticError([error(message, location)]);
}

/** Source texts already read, so printing many diagnostics of one file reads it once. */
const sources = new Map<string, string[] | undefined>();

export function rememberSource(file: string, text: string): void {
  sources.set(file, text.split(/\r?\n/));
}

function sourceLine(file: string, line: number): string | undefined {
  if (!sources.has(file)) {
    try {
      rememberSource(file, readFileSync(file, 'utf8'));
    } catch {
      sources.set(file, undefined);
    }
  }
  return sources.get(file)?.[line - 1];
}

export function formatDiagnostic(diagnostic: Diagnostic): string {
  const { location, severity, message } = diagnostic;
  if (!location) return `${severity}: ${message}`;
  const head = `${location.file}:${location.line}:${location.col} ${severity}: ${message}`;
  const text = sourceLine(location.file, location.line);
  if (text === undefined) return head;
  const number = String(location.line);
  const width = Math.max(1, Math.min(location.endCol, text.length + 1) - location.col);
  return [
    head,
    `  ${number} | ${text}`,
    `  ${' '.repeat(number.length)} | ${' '.repeat(Math.max(0, location.col - 1))}${'^'.repeat(width)}`,
  ].join('\n');
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** ` (did you mean "deps"?)` when a candidate is close enough, else ''. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const tolerance = Math.max(2, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= tolerance ? ` (did you mean "${best}"?)` : '';
}
