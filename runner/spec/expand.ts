// Stage templates: `foreach: [a, b]` (or `foreach: ${some.param}`) makes stages `name@a`, `name@b` with
// `${item}`; `matrix: {k1: [..], k2: [..]}` makes one stage per combination, `name@k1=v1,k2=v2`, with
// `${item.k1}`. Everything else about the stage is interpolated per item by pipeline.ts.
import { fail } from './diagnostics.js';
import { interpolate, scopeLookup, UnknownReference } from './interpolate.js';
import { locate, locateText, type SourceFile } from './load.js';
import type { Params } from './params.js';

export interface StageInstance {
  /** `train`, `train@a` or `train@k1=v1,k2=v2`. */
  name: string;
  /** The name under `stages:` in the YAML. */
  template: string;
  /** The `${item}` value, when the stage is a template's instance. */
  item?: unknown;
}

function label(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

function foreachItems(source: SourceFile, template: string, foreach: unknown, params: Params): unknown[] {
  let items = foreach;
  if (typeof foreach === 'string') {
    try {
      items = interpolate(foreach, scopeLookup(params));
    } catch (cause) {
      if (cause instanceof UnknownReference) fail(cause.message, locateText(source, ['stages', template, 'foreach'], cause.reference));
      throw cause;
    }
  }
  if (!Array.isArray(items)) fail(`stage "${template}": foreach must be a list or \${param} naming a list`, locate(source, ['stages', template, 'foreach']));
  if (items.length === 0) fail(`stage "${template}": foreach list is empty`, locate(source, ['stages', template, 'foreach']));
  return items;
}

function combinations(matrix: Record<string, unknown[]>): Record<string, unknown>[] {
  let result: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(matrix)) {
    result = result.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
  }
  return result;
}

/** The concrete stages a `stages:` entry stands for (itself, when it is no template). */
export function expandStage(source: SourceFile, template: string, raw: Record<string, unknown>, params: Params): StageInstance[] {
  if (raw['foreach'] !== undefined && raw['matrix'] !== undefined) {
    fail(`stage "${template}" has both foreach and matrix; use one`, locate(source, ['stages', template, 'matrix'], 'key'));
  }
  if (raw['foreach'] !== undefined) {
    return foreachItems(source, template, raw['foreach'], params).map((item, index) => ({
      name: `${template}@${typeof item === 'object' && item !== null ? index : label(item)}`,
      template,
      item,
    }));
  }
  if (raw['matrix'] !== undefined) {
    return combinations(raw['matrix'] as Record<string, unknown[]>).map((item) => ({
      name: `${template}@${Object.entries(item).map(([k, v]) => `${k}=${label(v)}`).join(',')}`,
      template,
      item,
    }));
  }
  return [{ name: template, template }];
}
