// Why a stage is not fresh, as data (plan.ts decides), and the one printer that turns a reason into the line
// `status`, `run`, `run --dry-run` and their --json show. A new kind of reason fails to compile until the
// printer handles it.

/** fresh: nothing to do; restore: the run-cache has the outs for this key; run: spawn it. */
export type Verdict = 'fresh' | 'restore' | 'run';

export type StaleReason =
  | { kind: 'forced' }
  | { kind: 'upstream-stale'; stage: string }
  | { kind: 'never-run' }
  | { kind: 'dep-missing'; path: string }
  | { kind: 'command-changed'; before: unknown; after: unknown }
  | { kind: 'param-changed'; name: string; before: unknown; after: unknown }
  | { kind: 'dep-added'; path: string }
  | { kind: 'dep-removed'; path: string }
  | { kind: 'dep-changed'; path: string; isDir: boolean; nfiles?: number; wasNfiles?: number }
  | { kind: 'code-changed'; path: string; importedBy: string[] }
  | { kind: 'code-added'; path: string; importedBy: string[] }
  | { kind: 'code-removed'; path: string }
  | { kind: 'code-not-recorded'; files: number; packages: number }
  | { kind: 'package-changed'; name: string; before: string | undefined; after: string | undefined }
  | { kind: 'builtins-changed'; added: string[]; removed: string[] }
  | { kind: 'node-changed'; before: string; after: string }
  | { kind: 'import-unresolved'; import: string }
  | { kind: 'import-resolved'; import: string }
  | { kind: 'output-missing'; path: string }
  | { kind: 'output-not-recorded'; path: string }
  | { kind: 'output-modified'; path: string }
  | { kind: 'definition-changed' };

function show(value: unknown): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}

/** ` (imported by b.ts ← a.ts)`: the path from the file back to the declared dep that reaches it. */
function chain(importedBy: readonly string[]): string {
  return importedBy.length ? ` (imported by ${importedBy.join(' ← ')})` : '';
}

function unreachable(reason: never): never {
  throw new Error(`unhandled stale reason ${JSON.stringify(reason)}`);
}

/** The one line a reason is shown as. */
export function describeReason(reason: StaleReason): string {
  switch (reason.kind) {
    case 'forced': return 'forced';
    case 'upstream-stale': return `upstream stage ${reason.stage} is stale`;
    case 'never-run': return 'never run';
    case 'dep-missing': return `dep missing: ${reason.path}`;
    case 'command-changed': return `command changed: ${show(reason.before)} -> ${show(reason.after)}`;
    case 'param-changed': return `param ${reason.name}: ${show(reason.before)} -> ${show(reason.after)}`;
    case 'dep-added': return `dep added: ${reason.path}`;
    case 'dep-removed': return `dep removed: ${reason.path}`;
    case 'dep-changed':
      if (reason.isDir && reason.wasNfiles !== undefined && reason.wasNfiles !== reason.nfiles) return `dep changed: ${reason.path} (${reason.nfiles} files, was ${reason.wasNfiles})`;
      return `dep changed: ${reason.path}${reason.isDir ? ` (${reason.nfiles} files, contents differ)` : ''}`;
    case 'code-changed': return `code changed: ${reason.path}${chain(reason.importedBy)}`;
    case 'code-added': return `code added: ${reason.path}${chain(reason.importedBy)}`;
    case 'code-removed': return `code removed: ${reason.path}`;
    case 'code-not-recorded': return `import closure not recorded yet (${reason.files} files, ${reason.packages} packages)`;
    case 'package-changed':
      if (reason.before === undefined) return `package added: ${reason.name} ${reason.after}`;
      if (reason.after === undefined) return `package removed: ${reason.name} ${reason.before}`;
      return `package changed: ${reason.name} ${reason.before} -> ${reason.after}`;
    case 'builtins-changed':
      return `node builtins changed:${reason.added.map((b) => ` +${b}`).join('')}${reason.removed.map((b) => ` -${b}`).join('')}`;
    case 'node-changed': return `node changed: ${reason.before} -> ${reason.after}`;
    case 'import-unresolved': return `import unresolved: ${reason.import}`;
    case 'import-resolved': return `import resolved: ${reason.import}`;
    case 'output-missing': return `output missing: ${reason.path}`;
    case 'output-not-recorded': return `output not recorded: ${reason.path}`;
    case 'output-modified': return `output modified: ${reason.path}`;
    case 'definition-changed': return 'stage definition changed (env, outs or runner version)';
    default: return unreachable(reason);
  }
}

export function describeReasons(reasons: readonly StaleReason[]): string[] {
  return reasons.map(describeReason);
}
