// Nucleus outlines of the external H&E set (MoNuSeg / Kumar et al. 2017), as Aperio ImageScope writes them:
//
//   <Annotations><Annotation …><Regions><Region Id="15" …><Vertices>
//     <Vertex X="114.4" Y="109.2"/> …
//
// Only the first <Regions> block in document order counts, as in the original solution. fast-xml-parser:
// a small, dependency-free, maintained parser with a validator that reports line and column of a defect.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { StageError } from '../stage-error.js';

export interface Point {
  x: number;
  y: number;
}

export interface Region {
  /** The Region's Id attribute (or its 1-based position when it has none), for messages. */
  id: string;
  vertices: Point[];
}

// Elements that may repeat are always arrays, so one-element lists need no special case.
const repeated = new Set(['Annotation', 'Regions', 'Region', 'Vertices', 'Vertex']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  isArray: (tagName) => repeated.has(tagName),
});

type Node = Record<string, unknown>;

const children = (node: unknown, tag: string): Node[] =>
  node !== null && typeof node === 'object' && Array.isArray((node as Node)[tag]) ? ((node as Node)[tag] as Node[]) : [];

function number(file: string, region: string, vertex: number, axis: 'X' | 'Y', value: unknown): number {
  const parsed = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(parsed)) {
    throw new StageError(`${file}: Region ${region}, Vertex ${vertex}: ${axis}="${String(value)}" is not a number`);
  }
  return parsed;
}

/**
 * The polygons of the first <Regions> block, in document order. A malformed file, or one without any
 * region, is a StageError naming the file (and the line of a syntax error).
 */
export function parseAnnotations(file: string, text: string): Region[] {
  if (text.trim() === '') throw new StageError(`${file}:1:1: the file is empty (no XML): is the download or copy incomplete?`);
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const unclosed = /^Invalid '\[(.*)\]' found/s.exec(valid.err.msg);
    if (unclosed) {
      // The validator reports tags still open at the end at 1:1; the defect is where the file stops.
      const lines = text.split('\n');
      const tags = [...unclosed[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
      throw new StageError(`${file}:${lines.length}:${lines[lines.length - 1]!.length + 1}: not well-formed XML: the file ends inside <${tags.join('> <')}> (unclosed): is it truncated?`);
    }
    throw new StageError(`${file}:${valid.err.line}:${valid.err.col ?? 1}: not well-formed XML (${valid.err.msg})`);
  }
  const document = parser.parse(text) as Node;
  const annotations = children(document['Annotations'], 'Annotation');
  const firstRegions = annotations.flatMap((annotation) => children(annotation, 'Regions'))[0];
  const regions = children(firstRegions, 'Region');
  if (regions.length === 0) {
    throw new StageError(`${file}: no <Region> in Annotations/Annotation/Regions: nothing to fill`);
  }
  return regions.map((region, index) => {
    const id = typeof region['Id'] === 'string' ? region['Id'] : String(index + 1);
    const vertices = children(region, 'Vertices')
      .flatMap((list) => children(list, 'Vertex'))
      .map((vertex, k) => ({ x: number(file, id, k + 1, 'X', vertex['X']), y: number(file, id, k + 1, 'Y', vertex['Y']) }));
    return { id, vertices };
  });
}
