// What differs between the closure a stage last ran with (its lock entry) and the closure now, as reasons.
import type { CodeDeps } from '../../cache/types.js';
import type { StaleReason } from '../stale-reason.js';
import { importChain } from './import-chain.js';

const NONE: CodeDeps = { files: {}, packages: {}, builtins: [], node: '', unresolved: [] };

export function codeReasons(before: CodeDeps | undefined, after: CodeDeps | undefined, importedBy: ReadonlyMap<string, string>): StaleReason[] {
  if (!before && !after) return [];
  // A lock written before its stage had a closure (or by an older runner): one line, not one per file.
  if (!before && after) return [{ kind: 'code-not-recorded', files: Object.keys(after.files).length, packages: Object.keys(after.packages).length }];
  const was = before ?? NONE;
  const now = after ?? NONE;
  const reasons: StaleReason[] = [];
  for (const [path, hash] of Object.entries(now.files)) {
    const old = was.files[path];
    if (old === undefined) reasons.push({ kind: 'code-added', path, importedBy: importChain(importedBy, path) });
    else if (old !== hash) reasons.push({ kind: 'code-changed', path, importedBy: importChain(importedBy, path) });
  }
  for (const path of Object.keys(was.files)) if (!(path in now.files)) reasons.push({ kind: 'code-removed', path });
  for (const name of new Set([...Object.keys(was.packages), ...Object.keys(now.packages)])) {
    if (was.packages[name] !== now.packages[name]) reasons.push({ kind: 'package-changed', name, before: was.packages[name], after: now.packages[name] });
  }
  const added = now.builtins.filter((b) => !was.builtins.includes(b));
  const removed = was.builtins.filter((b) => !now.builtins.includes(b));
  if (added.length || removed.length) reasons.push({ kind: 'builtins-changed', added, removed });
  if (before && after && was.node !== now.node) reasons.push({ kind: 'node-changed', before: was.node, after: now.node });
  for (const entry of now.unresolved) if (!was.unresolved.includes(entry)) reasons.push({ kind: 'import-unresolved', import: entry });
  for (const entry of was.unresolved) if (!now.unresolved.includes(entry)) reasons.push({ kind: 'import-resolved', import: entry });
  return reasons;
}
