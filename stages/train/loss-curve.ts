// Training curves as a picture: per-epoch losses drawn as an SVG line chart and rasterised to PNG with
// sharp (librsvg), so a person sees at a glance whether a phase learned, plateaued or over-fitted. The runner's
// report draws its own charts (runner/report/svg.ts): a stage never imports the runner, and the runner never
// imports a stage, so each side keeps its one chart engine.
import sharp from 'sharp';

export interface Series {
  name: string;
  /** y per x (epoch); NaN/undefined values are gaps. */
  points: Array<{ x: number; y: number }>;
  dashed?: boolean;
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Round "nice" tick values covering [min, max]. */
function ticks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** An SVG line chart; the y axis is logarithmic when `logY` and every value is positive. */
export function lineChartSvg(title: string, series: Series[], options: { xLabel?: string; yLabel?: string; logY?: boolean; width?: number; height?: number } = {}): string {
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  const margin = { left: 70, right: 170, top: 40, bottom: 50 };
  const all = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p.y)));
  const logY = (options.logY ?? true) && all.length > 0 && all.every((p) => p.y > 0);
  const fy = (y: number): number => (logY ? Math.log10(y) : y);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => fy(p.y));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  let yMin = ys.length ? Math.min(...ys) : 0;
  let yMax = ys.length ? Math.max(...ys) : 1;
  if (yMax - yMin < 1e-9) {
    yMin -= 0.5;
    yMax += 0.5;
  }
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const px = (x: number): number => margin.left + (xMax === xMin ? plotW / 2 : ((x - xMin) / (xMax - xMin)) * plotW);
  const py = (y: number): number => margin.top + plotH - ((fy(y) - yMin) / (yMax - yMin)) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`);
  // Axes and ticks.
  // Log axis: 1-2-5 steps per decade, so a short range still gets a few labelled lines.
  const yTicks = logY
    ? Array.from({ length: Math.ceil(yMax) - Math.floor(yMin) + 1 }, (_, k) => Math.floor(yMin) + k)
        .flatMap((decade) => [1, 2, 5].map((m) => decade + Math.log10(m)))
        .filter((t) => t >= yMin - 1e-9 && t <= yMax + 1e-9)
    : ticks(yMin, yMax, 5);
  for (const t of yTicks) {
    const y = margin.top + plotH - ((t - yMin) / (yMax - yMin)) * plotH;
    const label = logY ? (10 ** t).toPrecision(2) : t.toPrecision(3);
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y + 4}" text-anchor="end">${label}</text>`);
  }
  for (const t of ticks(xMin, xMax, 8)) {
    if (!Number.isInteger(t)) continue;
    parts.push(`<text x="${px(t)}" y="${margin.top + plotH + 18}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  if (options.xLabel) parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  if (options.yLabel) {
    parts.push(`<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel + (logY ? ' (log)' : ''))}</text>`);
  }
  series.forEach((s, i) => {
    const colour = palette[i % palette.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p.y) && (!logY || p.y > 0));
    if (pts.length > 0) {
      const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      for (const p of pts) parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="2.5" fill="${colour}"/>`);
    }
    const ly = margin.top + 10 + i * 18;
    const lx = margin.left + plotW + 12;
    parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    parts.push(`<text x="${lx + 28}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Writes the chart as a PNG file. */
export async function writeLineChartPng(file: string, title: string, series: Series[], options: Parameters<typeof lineChartSvg>[2] = {}): Promise<void> {
  await sharp(Buffer.from(lineChartSvg(title, series, options))).png().toFile(file);
}
