// `${a.b}` references and the shell-like splitting of a string `cmd`. The split happens BEFORE interpolation,
// so every interpolated value lands inside one argv element whatever characters it contains: a param value of
// `x; rm -rf /` is one argument, never a command.
import { didYouMean } from './diagnostics.js';

/** A `${…}` that names nothing; the caller turns it into a located Diagnostic. */
export class UnknownReference extends Error {
  constructor(readonly reference: string, readonly detail: string) {
    super(detail);
  }
}

export type Lookup = (name: string) => { found: true; value: unknown } | { found: false; candidates: string[] };

const REFERENCE = /\$\{\s*([^}]*?)\s*\}/g;

/** Splits like a POSIX shell's word splitting: quotes and backslashes group; no globs, variables or pipes. */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new SyntaxError(`unterminated ${quote === '"' ? 'double' : 'single'} quote in cmd`);
  if (inWord) words.push(word);
  return words;
}

function show(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value);
}

/** The `${…}` names used in a text. */
export function references(text: string): string[] {
  return [...text.matchAll(REFERENCE)].map((m) => m[1]!);
}

/** How an interpolated value is written into a text: as it is, or quoted as one word for /bin/sh. */
export type Quoting = 'none' | 'shell';

/** `${raw:name}`: the value pasted into a shell cmd unquoted, for a param that holds shell syntax on purpose. */
const RAW_PREFIX = 'raw:';

/** Characters that mean nothing to /bin/sh anywhere in a word: such a value needs no quotes. */
const SHELL_SAFE = /^[A-Za-z0-9_.,:\/@%+-]+$/;

/** POSIX single-quote quoting: '…' keeps every character literal; a ' inside becomes '\'' . */
export function shellQuote(text: string): string {
  return SHELL_SAFE.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The `${` of a reference with no closing `}` (not a `$${` escape), or -1. */
function unterminated(text: string): number {
  for (let at = text.indexOf('${'); at >= 0; at = text.indexOf('${', at + 2)) {
    if (at > 0 && text[at - 1] === '$') continue;
    if (text.indexOf('}', at) < 0) return at;
  }
  return -1;
}

/**
 * Replaces every `${name}` in `text`. A text that is exactly one `${name}` yields the raw value (a list stays a
 * list); inside a longer text a list or object is an error, since there is no one right way to spell it.
 * `$${` escapes a literal `${`. With quoting 'shell' (a `shell: true` cmd) every value is one shell word:
 * quoted, lists and maps as their JSON; `${raw:name}` pastes the value as it is.
 */
export function interpolate(text: string, lookup: Lookup, quoting: Quoting = 'none'): unknown {
  const open = unterminated(text);
  if (open >= 0) {
    const rest = text.slice(open + 2);
    throw new UnknownReference(rest, `\${${rest} has no closing "}"; write $\${ for a literal \${`);
  }
  const whole = /^\$\{\s*([^}]*?)\s*\}$/.exec(text);
  if (whole && quoting === 'none') return resolve(stripRaw(whole[1]!), lookup);
  return text.replace(/\$?\$\{\s*([^}]*?)\s*\}/g, (match, name: string) => {
    if (match.startsWith('$$')) return match.slice(1);
    const value = resolve(stripRaw(name), lookup);
    if (quoting === 'shell') return name.startsWith(RAW_PREFIX) ? show(value) : shellQuote(show(value));
    if (typeof value === 'object' && value !== null) {
      throw new UnknownReference(name, `\${${name}} is a ${Array.isArray(value) ? 'list' : 'map'}; it can only stand alone as a whole value`);
    }
    return show(value);
  });
}

/** `raw:a.b` -> `a.b`: outside a shell cmd nothing is quoted, so the raw form means the plain one. */
function stripRaw(name: string): string {
  return name.startsWith(RAW_PREFIX) ? name.slice(RAW_PREFIX.length).trim() : name;
}

/** interpolate() for places that need text (argv elements, paths, env values): lists/maps become JSON. */
export function interpolateText(text: string, lookup: Lookup, quoting: Quoting = 'none'): string {
  return show(interpolate(text, lookup, quoting));
}

function resolve(name: string, lookup: Lookup): unknown {
  const result = lookup(name);
  if (result.found) return result.value;
  throw new UnknownReference(name, `unknown reference \${${name}}${suggest(name, result.candidates)}`);
}

function suggest(name: string, candidates: string[]): string {
  return candidates.length ? didYouMean(name, candidates) : '';
}

/** A Lookup over nested params plus optional extra roots (e.g. `item` in a foreach stage). */
export function scopeLookup(params: Record<string, unknown>, extra: Record<string, unknown> = {}): Lookup {
  return (name) => {
    const parts = name.split('.');
    const head = parts[0]!;
    const rootHasExtra = Object.hasOwn(extra, head);
    let value: unknown = rootHasExtra ? extra : params;
    for (const part of parts) {
      if (value !== null && typeof value === 'object' && Object.hasOwn(value, part)) {
        value = (value as Record<string, unknown>)[part];
      } else {
        return { found: false, candidates: [...leafPaths(params), ...Object.keys(extra)] };
      }
    }
    return { found: true, value };
  };
}

/** Every dotted path in a nested object, maps included (`train`, `train.lr`, …). */
export function leafPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const paths: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    paths.push(path, ...leafPaths(child, path));
  }
  return paths;
}
