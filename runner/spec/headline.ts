// A pipeline's headline metrics: the few results that say whether a change helped (`evaluate.score`), each
// with its goal. `compare` and the report show them first and rank only them; every other metric (counts a
// stage keeps for bookkeeping, such as images read or tiles considered) is shown, unranked.
//
//   headline:
//     evaluate.score: max
//     evaluate.seconds: min
import { didYouMean, error, type Diagnostic } from './diagnostics.js';
import { locate, type SourceFile } from './load.js';

export type Goal = 'max' | 'min';

export interface HeadlineMetric {
  /** `<stage>.<dotted key in its metrics files>`, as experiment records name metrics. */
  name: string;
  goal: Goal;
}

/** The declared headline metrics (the schema has checked the goals); a name no stage's metrics can give is a located error. */
export function headlineMetrics(source: SourceFile, declared: Record<string, Goal>, stages: ReadonlyMap<string, { metrics: readonly string[] }>, diagnostics: Diagnostic[]): HeadlineMetric[] {
  const withMetrics = [...stages].filter(([, spec]) => spec.metrics.length > 0).map(([name]) => name);
  return Object.entries(declared).flatMap(([name, goal]) => {
    if (withMetrics.some((stage) => name.startsWith(stage + '.'))) return [{ name, goal }];
    const stage = name.split('.')[0] ?? name;
    diagnostics.push(error(`headline metric "${name}": no stage "${stage}" with metrics files${didYouMean(stage, withMetrics)}`, locate(source, ['headline', name], 'key')));
    return [];
  });
}
