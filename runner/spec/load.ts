// YAML with source positions: parses a file with the `yaml` package's parseDocument + LineCounter, so any
// later check (schema, interpolation, graph) can point at the exact key or value it is about.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import { fail, rememberSource, DiagnosticError, error, type SourceLocation } from './diagnostics.js';

export type YamlPath = ReadonlyArray<string | number>;

export interface SourceFile {
  /** Display path (as the user named it, relative to the cwd where possible). */
  file: string;
  text: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** The plain JS value of the document. */
  data: unknown;
}

export function loadYamlFile(file: string, absolutePath: string, what = 'pipeline'): SourceFile {
  let text: string;
  try {
    text = readFileSync(absolutePath, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    fail(code === 'ENOENT' ? `${what} file not found: ${file}` : `cannot read ${what} file ${file}: ${String(cause)}`);
  }
  return parseYamlText(file, text);
}

export function parseYamlText(file: string, text: string): SourceFile {
  rememberSource(file, text);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const source: SourceFile = { file, text, doc, lineCounter, data: undefined };
  if (doc.errors.length > 0) {
    throw new DiagnosticError(
      doc.errors.map((e) => error(`invalid YAML: ${e.message.split('\n')[0]}`, locateOffsets(source, e.pos[0], e.pos[1]))),
    );
  }
  source.data = doc.toJS({ maxAliasCount: 1000 });
  return source;
}

/** Location of the character range [start, end) of the file, clipped to its first line. */
export function locateOffsets(source: SourceFile, start: number, end: number): SourceLocation {
  const from = source.lineCounter.linePos(start);
  const to = source.lineCounter.linePos(Math.max(start + 1, end));
  const endCol = to.line === from.line ? to.col : (source.text.split('\n')[from.line - 1]?.length ?? from.col) + 1;
  return { file: source.file, line: from.line, col: from.col, endCol: Math.max(endCol, from.col + 1) };
}

/** The YAML node at `path` (and the pair's key node), as deep as the path goes. */
function walk(source: SourceFile, path: YamlPath): { node: Node | undefined; key: Node | undefined; complete: boolean } {
  let node = source.doc.contents as Node | null | undefined;
  let key: Node | undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(segment));
      if (!pair) return { node, key, complete: false };
      key = pair.key as Node;
      node = pair.value as Node | null;
      if (!node) return { node: key, key, complete: true };
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment]) {
      key = undefined;
      node = node.items[segment] as Node;
    } else {
      return { node: node ?? undefined, key, complete: false };
    }
  }
  return { node: node ?? undefined, key, complete: true };
}

/** Where the value (or, with part 'key', the key) at `path` is written; the nearest enclosing node if absent. */
export function locate(source: SourceFile, path: YamlPath, part: 'key' | 'value' = 'value'): SourceLocation {
  const { node, key } = walk(source, path);
  const target = part === 'key' && key ? key : node;
  if (!target?.range) return { file: source.file, line: 1, col: 1, endCol: 2 };
  return locateOffsets(source, target.range[0], target.range[1]);
}

/** Where `needle` occurs inside the value at `path` (e.g. a `${x}` inside a cmd string). */
export function locateText(source: SourceFile, path: YamlPath, needle: string): SourceLocation {
  const { node } = walk(source, path);
  if (node?.range) {
    const text = source.text.slice(node.range[0], node.range[2]);
    // Prefer the whole `${name}` when the needle is its start.
    const whole = needle.startsWith('${') ? text.indexOf(needle + '}') : -1;
    const at = whole >= 0 ? whole : text.indexOf(needle);
    const length = whole >= 0 ? needle.length + 1 : needle.length;
    if (at >= 0) return locateOffsets(source, node.range[0] + at, node.range[0] + at + length);
  }
  return locate(source, path);
}
