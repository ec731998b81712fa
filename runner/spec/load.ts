// YAML with source positions: parses a file with the `yaml` package's parseDocument + LineCounter, so any
// later check (schema, interpolation, graph) can point at the exact key or value it is about.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isAlias, isMap, isPair, isSeq, isScalar, type Document, type Node } from 'yaml';
import { fail, rememberSource, DiagnosticError, error, type Diagnostic, type SourceLocation } from './diagnostics.js';

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

/** How many nodes the aliases of one document may expand to: a "billion laughs" file stops here. */
const MAX_ALIAS_COUNT = 1000;

export function parseYamlText(file: string, text: string): SourceFile {
  rememberSource(file, text);
  const lineCounter = new LineCounter();
  // uniqueKeys: false — the package's own check compares every key with every other (quadratic: a 90k-key
  // params file took most of a minute); checkNodes() does it in one pass with a Set per map.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const source: SourceFile = { file, text, doc, lineCounter, data: undefined };
  if (doc.errors.length > 0) {
    throw new DiagnosticError(
      doc.errors.map((e) => error(`invalid YAML: ${e.message.split('\n')[0]}`, locateOffsets(source, e.pos[0], e.pos[1]))),
    );
  }
  const problems = checkNodes(source);
  if (problems.length > 0) throw new DiagnosticError(problems);
  try {
    source.data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch {
    // The aliases were all resolved above, so what is left is an expansion past the limit.
    const alias = firstAlias(source);
    fail(`invalid YAML: its aliases expand to too many values (at most ${MAX_ALIAS_COUNT} per alias: a "billion laughs" file?); write the values out instead`, alias ? nodeLocation(source, alias) : undefined);
  }
  return source;
}

function nodeLocation(source: SourceFile, node: Node): SourceLocation | undefined {
  return node.range ? locateOffsets(source, node.range[0], node.range[1]) : undefined;
}

/** A node, or the end of an anchored list or map (from there on its anchor may be used). */
type Visit = { node: Node } | { closes: string };

/** Every node of the document in source order, without following aliases (an explicit stack: no recursion limit). */
function* visits(source: SourceFile): Generator<Visit> {
  const stack: unknown[] = [source.doc.contents];
  while (stack.length > 0) {
    const item = stack.pop();
    if (isPair(item)) {
      stack.push(item.value, item.key);
    } else if (isMap(item) || isSeq(item)) {
      yield { node: item };
      if (item.anchor) stack.push({ closes: item.anchor });
      for (let i = item.items.length - 1; i >= 0; i--) stack.push(item.items[i]);
    } else if (isScalar(item) || isAlias(item)) {
      yield { node: item };
    } else if (item !== null && typeof item === 'object' && 'closes' in item) {
      yield item as Visit;
    }
  }
}

function* nodesOf(source: SourceFile): Generator<Node> {
  for (const visit of visits(source)) if ('node' in visit) yield visit.node;
}

function firstAlias(source: SourceFile): Node | undefined {
  for (const node of nodesOf(source)) if (isAlias(node)) return node;
  return undefined;
}

/**
 * What the parser lets through but a pipeline can't use, in one pass: a key written twice in one map, a key
 * that is a list or map, an alias with no anchor before it.
 */
function checkNodes(source: SourceFile): Diagnostic[] {
  const problems: Diagnostic[] = [];
  const anchors = new Set<string>();
  const open = new Set<string>();
  for (const visit of visits(source)) {
    if ('closes' in visit) {
      open.delete(visit.closes);
      anchors.add(visit.closes);
      continue;
    }
    const node = visit.node;
    if (isScalar(node) && node.anchor) anchors.add(node.anchor);
    if ((isMap(node) || isSeq(node)) && node.anchor) open.add(node.anchor);
    if (isAlias(node) && !anchors.has(node.source)) {
      const why = open.has(node.source) ? `refers to the value it is inside` : `has no anchor &${node.source} before it`;
      problems.push(error(`invalid YAML: alias *${node.source} ${why}`, nodeLocation(source, node)));
    }
    if (!isMap(node)) continue;
    const keys = new Set<string>();
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      if (key !== null && !isScalar(key)) {
        problems.push(error('invalid YAML: a key must be a plain value, not a list, map or alias', nodeLocation(source, key)));
        continue;
      }
      const name = String(key?.value ?? '');
      if (keys.has(name)) problems.push(error(`invalid YAML: key "${name}" appears twice in the same map`, key ? nodeLocation(source, key) : undefined));
      keys.add(name);
    }
  }
  return problems;
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
