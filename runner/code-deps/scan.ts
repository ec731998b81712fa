// One source file's imports, found by es-module-lexer (a real lexer of JS and TypeScript, the one Vite uses):
// `import`, `export … from`, `import type`, `import('literal')`, and `import(new URL('literal',
// import.meta.url).href)` (the pattern bundlers resolve too). `require('literal')` is found by a pattern over
// the text: the lexer knows only ES modules, and a stray match in a comment can only add a dep, never hide one.
import { init, parse } from 'es-module-lexer';

export interface ScannedImport {
  specifier: string;
  /** 1-based line of the import in its file. */
  line: number;
}

/** An import whose target can't be known without running the code (`import(name)`). */
export interface DynamicImport {
  line: number;
  /** The argument as written. */
  expression: string;
}

export type Scan =
  | { ok: true; imports: ScannedImport[]; dynamic: DynamicImport[] }
  | { ok: false; line: number; message: string };

let ready: Promise<void> | undefined;

/** The lexer is WebAssembly, compiled once per process, and only by a pipeline that has JS/TS deps. */
export function scannerReady(): Promise<void> {
  ready ??= init();
  return ready;
}

function lineAt(source: string, index: number): number {
  let line = 1;
  for (let i = source.indexOf('\n'); i !== -1 && i < index; i = source.indexOf('\n', i + 1)) line++;
  return line;
}

const URL_OF_MODULE = /^new\s+URL\(\s*(['"])([^'"\n]+)\1\s*,\s*import\.meta\.url\s*\)(?:\.href)?$/;
const REQUIRE = /\brequire\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g;

/** The imports of one file (call scannerReady first). A syntax error is a value naming the line. */
export function scanImports(source: string): Scan {
  let imports: ReturnType<typeof parse>[0];
  try {
    [imports] = parse(source);
  } catch (error) {
    const idx = (error as { idx?: number }).idx;
    return { ok: false, line: typeof idx === 'number' ? lineAt(source, idx) : 1, message: (error as Error).message };
  }
  const found: ScannedImport[] = [];
  const dynamic: DynamicImport[] = [];
  for (const entry of imports) {
    if (entry.type === 'import-meta') continue;
    if (entry.type === 'dynamic') {
      if (entry.probablyTypeOnly && entry.specifier !== undefined) {
        found.push({ specifier: entry.specifier, line: lineAt(source, entry.start) });
        continue;
      }
      if (entry.specifier !== undefined && !entry.glob) {
        found.push({ specifier: entry.specifier, line: lineAt(source, entry.start) });
        continue;
      }
      const from = source[entry.dynamicStart] === '(' ? entry.dynamicStart + 1 : entry.dynamicStart;
      const expression = source.slice(from, entry.importEnd - 1).trim();
      const url = URL_OF_MODULE.exec(expression);
      if (url) found.push({ specifier: url[2]!, line: lineAt(source, entry.start) });
      else dynamic.push({ line: lineAt(source, entry.start), expression });
      continue;
    }
    found.push({ specifier: entry.specifier, line: lineAt(source, entry.start) });
  }
  if (source.includes('require')) {
    for (const match of source.matchAll(REQUIRE)) found.push({ specifier: match[2]!, line: lineAt(source, match.index) });
  }
  return { ok: true, imports: found, dynamic };
}
