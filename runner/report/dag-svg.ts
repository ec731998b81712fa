// The stage graph as inline SVG, laid out in layers left to right: a stage's layer is the length of the
// longest path reaching it, and inside a layer stages are ordered by the mean row of their upstream stages
// (one barycentre pass: enough for pipelines of tens of stages, which is what a report shows).
import { escapeXml } from './svg.js';

export interface DagNode {
  name: string;
  upstream: string[];
  /** CSS class suffix (the stage's status in the shown experiment). */
  status?: string;
  /** Tooltip text. */
  title?: string;
}

const NODE_H = 28;
const ROW_GAP = 16;
const COL_GAP = 56;
const CHAR_W = 7.2;

export function layers(nodes: readonly DagNode[]): Map<string, number> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const layer = new Map<string, number>();
  const visit = (name: string, trail: Set<string>): number => {
    const known = layer.get(name);
    if (known !== undefined) return known;
    if (trail.has(name)) return 0; // a cycle can't come from a valid pipeline; don't loop on a hand-edited record
    trail.add(name);
    const ups = (byName.get(name)?.upstream ?? []).filter((u) => byName.has(u));
    const value = ups.length ? Math.max(...ups.map((u) => visit(u, trail))) + 1 : 0;
    layer.set(name, value);
    return value;
  };
  for (const node of nodes) visit(node.name, new Set());
  return layer;
}

export function dagSvg(nodes: readonly DagNode[]): string {
  if (nodes.length === 0) return '<p class="muted">no stages</p>';
  const layerOf = layers(nodes);
  const columns: DagNode[][] = [];
  for (const node of nodes) (columns[layerOf.get(node.name)!] ??= []).push(node);
  const row = new Map<string, number>();
  columns.forEach((column) => {
    const key = (n: DagNode): number => {
      const ups = n.upstream.map((u) => row.get(u)).filter((r): r is number => r !== undefined);
      return ups.length ? ups.reduce((a, b) => a + b, 0) / ups.length : 0;
    };
    column.sort((a, b) => key(a) - key(b));
    column.forEach((n, i) => row.set(n.name, i));
  });
  const widths = columns.map((column) => Math.max(...column.map((n) => n.name.length * CHAR_W + 24)));
  const xs: number[] = [];
  widths.reduce((x, w, i) => ((xs[i] = x), x + w + COL_GAP), 10);
  const tallest = Math.max(...columns.map((c) => c.length));
  const height = tallest * (NODE_H + ROW_GAP) + 10;
  const width = (xs[xs.length - 1] ?? 0) + (widths[widths.length - 1] ?? 0) + 10;
  const position = new Map<string, { x: number; y: number; w: number }>();
  columns.forEach((column, c) => {
    const offset = ((tallest - column.length) * (NODE_H + ROW_GAP)) / 2; // centre short columns
    column.forEach((n, i) => position.set(n.name, { x: xs[c]!, y: 10 + offset + i * (NODE_H + ROW_GAP), w: widths[c]! }));
  });
  const edges: string[] = [];
  for (const node of nodes) {
    const to = position.get(node.name)!;
    for (const up of node.upstream) {
      const from = position.get(up);
      if (!from) continue;
      const [x1, y1, x2, y2] = [from.x + from.w, from.y + NODE_H / 2, to.x - 2, to.y + NODE_H / 2];
      const bend = (x2 - x1) / 2;
      edges.push(`<path class="edge" d="M${x1.toFixed(1)},${y1.toFixed(1)} C${(x1 + bend).toFixed(1)},${y1.toFixed(1)} ${(x2 - bend).toFixed(1)},${y2.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}" marker-end="url(#arrow)"/>`);
    }
  }
  const boxes = nodes.map((node) => {
    const p = position.get(node.name)!;
    const title = escapeXml(node.title ?? node.name);
    return `<g class="node ${escapeXml(node.status ?? '')}"><title>${title}</title><rect x="${p.x.toFixed(1)}" y="${p.y.toFixed(1)}" width="${p.w.toFixed(1)}" height="${NODE_H}" rx="6"/><text x="${(p.x + p.w / 2).toFixed(1)}" y="${(p.y + NODE_H / 2 + 4).toFixed(1)}" text-anchor="middle">${escapeXml(node.name)}</text></g>`;
  });
  const defs = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>';
  return `<svg class="chart dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width.toFixed(0)} ${height.toFixed(0)}" width="${width.toFixed(0)}" height="${height.toFixed(0)}" role="img">${defs}${edges.join('')}${boxes.join('')}</svg>`;
}
