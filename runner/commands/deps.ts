// `runner deps <pipeline> <stage>`: the whole code closure of a stage — the declared deps whose imports are
// followed, every workspace file reached (with the chain of imports that reaches it), the packages by installed
// version, Node builtins and major version, and what could not be followed.
import type { Values } from './values.js';
import { importChain } from '../code-deps/import-chain.js';
import { formatWarning } from '../code-deps/warning.js';
import { presentCodeClosure } from '../plan.js';
import { fail } from '../spec/diagnostics.js';
import { loadPipeline } from '../spec/pipeline.js';
import { openContext } from './context.js';
import { loadOptions } from './options.js';
import { resolveNames } from './select.js';

export async function depsCommand(positionals: readonly string[], values: Values): Promise<number> {
  const [file, ...names] = positionals;
  if (file === undefined || names.length === 0) fail('expected a pipeline file and at least one stage: runner deps <pipeline> <stage>…');
  const pipeline = await loadPipeline(file, loadOptions(values));
  const ctx = await openContext(pipeline);
  ctx.hashMemo = new Map(); // read-only pass
  const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
  const report: Record<string, unknown> = {};
  const lines: string[] = [];
  for (const name of resolveNames(pipeline, names, 'deps')) {
    const stage = byName.get(name)!;
    const { entries, closure } = await presentCodeClosure(ctx, stage);
    const files = Object.keys(closure?.code.files ?? {}).sort();
    const warnings = (closure?.warnings ?? []).map(formatWarning);
    report[name] = { entries, ...(closure ? { code: closure.code } : {}), ...(warnings.length ? { warnings } : {}) };
    lines.push(`${name}:`);
    if (!closure) {
      lines.push('  no JS/TS deps whose imports are followed');
      continue;
    }
    lines.push(`  declared: ${entries.join(', ')}`);
    lines.push(`  files (${files.length}), each with what imports it:`);
    for (const path of files) lines.push(`    ${path}  ← ${importChain(closure.importedBy, path).join(' ← ')}`);
    const packages = Object.entries(closure.code.packages).sort(([a], [b]) => (a < b ? -1 : 1));
    lines.push(`  packages (${packages.length}): ${packages.map(([n, v]) => `${n}@${v}`).join(', ') || 'none'}`);
    lines.push(`  node ${closure.code.node}, builtins: ${closure.code.builtins.join(', ') || 'none'}`);
    for (const entry of closure.code.unresolved) lines.push(`  unresolved: ${entry}`);
    for (const warning of warnings) lines.push(`  warning: ${warning}`);
  }
  ctx.statCache.save();
  process.stdout.write(values['json'] ? JSON.stringify({ pipeline: pipeline.file, stages: report }, null, 2) + '\n' : lines.join('\n') + '\n');
  return 0;
}
