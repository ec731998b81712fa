// Training curves from any JSON of per-epoch records, found by a generic convention: the file is an array of
// objects, or an object with such an array (the first of `history`, `epochs`, `records`, `log`, else any).
// x is each record's `epoch` (or `step`, else its position); every other numeric leaf is a series, and when
// some leaf names mention "loss" only those are drawn. A numeric `bestEpoch` beside the array is marked.
import { flatten } from '../experiments/flatten.js';
import type { Series } from './svg.js';

export interface Curves {
  series: Series[];
  xLabel: string;
  best?: number;
  /** A label from the file (`phase`, `name` or `stage`), if it has one. */
  label?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const PREFERRED = ['history', 'epochs', 'records', 'log'];
const MAX_SERIES = 8;

function recordsOf(data: unknown): Record<string, unknown>[] | undefined {
  const usable = (v: unknown): v is Record<string, unknown>[] => Array.isArray(v) && v.length > 0 && v.every(isRecord);
  if (usable(data)) return data;
  if (!isRecord(data)) return undefined;
  for (const key of [...PREFERRED, ...Object.keys(data)]) if (usable(data[key])) return data[key];
  return undefined;
}

export function extractCurves(data: unknown): Curves | undefined {
  const records = recordsOf(data);
  if (!records) return undefined;
  const xKey = records.every((r) => typeof r['epoch'] === 'number') ? 'epoch' : records.every((r) => typeof r['step'] === 'number') ? 'step' : undefined;
  const byName = new Map<string, Series>();
  records.forEach((record, index) => {
    const x = xKey ? (record[xKey] as number) : index + 1;
    for (const [name, value] of Object.entries(flatten(record))) {
      if (name === xKey || typeof value !== 'number' || !Number.isFinite(value)) continue;
      let series = byName.get(name);
      if (!series) byName.set(name, (series = { name, points: [] }));
      series.points.push({ x, y: value });
    }
  });
  let series = [...byName.values()];
  if (series.some((s) => /loss/i.test(s.name))) series = series.filter((s) => /loss/i.test(s.name));
  if (series.length === 0) return undefined;
  const curves: Curves = { series: series.slice(0, MAX_SERIES), xLabel: xKey ?? 'record' };
  if (isRecord(data)) {
    if (typeof data['bestEpoch'] === 'number') curves.best = data['bestEpoch'];
    const label = data['phase'] ?? data['name'] ?? data['stage'];
    if (typeof label === 'string' || typeof label === 'number') curves.label = String(label);
  }
  return curves;
}
