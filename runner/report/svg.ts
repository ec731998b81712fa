// Inline SVG charts as strings: a line chart (training curves) and a horizontal bar chart (ablations, stage
// timings). No script, no external font or stylesheet: the page renders offline and in any browser. The runner's
// only chart engine; the stages draw their own pictures (the runner never imports a stage).

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About 5 round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

export function shortNumber(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e4 || abs < 1e-3) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** Curves over a shared x axis; `marker` draws a dashed vertical line (e.g. the best epoch). */
export function lineChart(series: readonly Series[], options: { xLabel: string; marker?: { x: number; label: string } }): string {
  const width = 520;
  const height = 260;
  const m = { left: 56, right: 150, top: 14, bottom: 40 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return '<p class="muted">no numeric points</p>';
  let [x0, x1] = [Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x))];
  let [y0, y1] = [Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number): number => m.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${m.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" class="tick">${shortNumber(t)}</text>`);
  }
  const xTicks = niceTicks(x0, x1, Math.min(8, Math.max(1, Math.round(x1 - x0))));
  for (const t of xTicks) parts.push(`<text x="${sx(t).toFixed(1)}" y="${m.top + plotH + 16}" text-anchor="middle" class="tick">${shortNumber(t)}</text>`);
  parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${m.top + plotH}" y2="${m.top + plotH}" class="axis"/>`);
  parts.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}" class="axis"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${height - 6}" text-anchor="middle" class="label">${escapeXml(options.xLabel)}</text>`);
  if (options.marker && options.marker.x >= x0 && options.marker.x <= x1) {
    const x = sx(options.marker.x).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}" class="marker"/>`);
    parts.push(`<text x="${x}" y="${m.top + 10}" dx="-4" text-anchor="end" class="tick">${escapeXml(options.marker.label)}</text>`);
  }
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const points = [...s.points].sort((a, b) => a.x - b.x).map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`);
    parts.push(`<polyline class="series" fill="none" stroke="${colour}" stroke-width="2" points="${points.join(' ')}"><title>${escapeXml(s.name)}</title></polyline>`);
    if (s.points.length === 1) parts.push(`<circle cx="${points[0]!.split(',')[0]}" cy="${points[0]!.split(',')[1]}" r="3" fill="${colour}"/>`);
    const ly = m.top + 10 + i * 18;
    parts.push(`<line x1="${width - m.right + 12}" x2="${width - m.right + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${width - m.right + 34}" y="${ly}" class="legend">${escapeXml(s.name)}</text>`);
  });
  return `<svg class="chart line-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${parts.join('')}</svg>`;
}

export interface Bar {
  label: string;
  value: number;
  /** Text right of the bar (defaults to the value). */
  note?: string;
  kind?: 'baseline' | 'best' | 'plain' | 'failed';
}

/** One horizontal bar per entry, from zero (or from the smallest value when some are negative). */
export function barChart(bars: readonly Bar[], options: { reference?: number; unit?: string } = {}): string {
  const labelW = Math.min(260, Math.max(80, ...bars.map((b) => b.label.length * 7 + 12)));
  const width = labelW + 380;
  const row = 24;
  const height = bars.length * row + 30;
  const plotW = 250;
  const lo = Math.min(0, ...bars.map((b) => b.value));
  let hi = Math.max(0, ...bars.map((b) => b.value));
  if (hi === lo) hi = lo + 1;
  const sx = (v: number): number => labelW + ((v - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  bars.forEach((bar, i) => {
    const y = 8 + i * row;
    const from = sx(Math.min(0, bar.value));
    const to = sx(Math.max(0, bar.value));
    parts.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end" class="tick">${escapeXml(bar.label)}</text>`);
    parts.push(`<rect class="bar ${bar.kind ?? 'plain'}" x="${from.toFixed(1)}" y="${y + 2}" width="${Math.max(1, to - from).toFixed(1)}" height="${row - 8}"><title>${escapeXml(`${bar.label}: ${bar.value}${options.unit ?? ''}`)}</title></rect>`);
    parts.push(`<text x="${(to + 6).toFixed(1)}" y="${y + 14}" class="tick">${escapeXml(bar.note ?? shortNumber(bar.value) + (options.unit ?? ''))}</text>`);
  });
  const axisY = 8 + bars.length * row;
  parts.push(`<line x1="${sx(0).toFixed(1)}" x2="${sx(0).toFixed(1)}" y1="4" y2="${axisY}" class="axis"/>`);
  if (options.reference !== undefined) {
    const x = sx(options.reference).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="4" y2="${axisY}" class="marker"><title>baseline</title></line>`);
  }
  for (const t of niceTicks(lo, hi, 4)) parts.push(`<text x="${sx(t).toFixed(1)}" y="${axisY + 16}" text-anchor="middle" class="tick">${shortNumber(t)}</text>`);
  return `<svg class="chart bar-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${parts.join('')}</svg>`;
}
