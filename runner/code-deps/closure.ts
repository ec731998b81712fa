// A stage's code closure: from its JS/TS deps, every workspace file their imports reach (by content hash),
// every package by installed version, the Node builtins and Node's major version. What enters the key is
// CodeDeps (cache/types.ts); the walk also keeps who imported whom, to say why a file is in, and the
// warnings: imports that resolve to nothing, syntax errors, and `import(expr)` whose target can't be known.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CodeDeps, ContentHash } from '../../cache/types.js';
import { isCodeFile } from './code-files.js';
import type { ImportCache } from './import-cache.js';
import type { Resolver } from './resolve.js';
import type { Scan } from './scan.js';
import type { CodeWarning } from './warning.js';

export interface CodeClosure {
  code: CodeDeps;
  /** File -> the file whose import first reached it (declared deps have none). */
  importedBy: Map<string, string>;
  warnings: CodeWarning[];
}

export interface ClosureInputs {
  workspace: string;
  /** The stage's JS/TS deps whose imports are followed, workspace-relative. */
  entries: readonly string[];
  /** A workspace file's content hash (through the stat cache), or undefined when it is gone. */
  hash(path: string): ContentHash | undefined | Promise<ContentHash | undefined>;
  cache: ImportCache;
  resolver: Resolver;
}

async function scanOf(inputs: ClosureInputs, path: string, hash: ContentHash): Promise<Scan> {
  const known = inputs.cache.get(hash);
  if (known) return known;
  // The lexer (WebAssembly) is loaded only when a file's imports are not cached yet.
  const { scanImports, scannerReady } = await import('./scan.js');
  await scannerReady();
  let scan: Scan;
  try {
    scan = scanImports(readFileSync(join(inputs.workspace, path), 'utf8'));
  } catch (error) {
    scan = { ok: false, line: 1, message: (error as Error).message };
  }
  inputs.cache.put(hash, scan);
  return scan;
}

export async function codeClosure(inputs: ClosureInputs): Promise<CodeClosure> {
  const entries = new Set(inputs.entries);
  const importedBy = new Map<string, string>();
  const files: Record<string, ContentHash> = {};
  const packages: Record<string, string> = {};
  const builtins = new Set<string>();
  const unresolved = new Set<string>();
  const warnings: CodeWarning[] = [];
  const queue = [...entries];
  const seen = new Set(queue);
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    const hashed = inputs.hash(file);
    const hash = hashed instanceof Promise ? await hashed : hashed;
    if (hash === undefined) {
      // Resolved a moment ago and gone now, or a declared dep that is missing (the plan reports that).
      if (!entries.has(file)) unresolved.add(`${importedBy.get(file) ?? file} -> ${file}`);
      continue;
    }
    if (!entries.has(file)) files[file] = hash;
    if (!isCodeFile(file)) continue; // JSON, WASM, …: content only
    const scan = await scanOf(inputs, file, hash);
    if (!scan.ok) {
      warnings.push({ file, line: scan.line, message: `syntax error, imports not followed: ${scan.message}` });
      continue;
    }
    for (const { line, expression } of scan.dynamic) {
      warnings.push({ file, line, message: `import(${expression}): the module it loads can't be known without running it; declare that module as a dep` });
    }
    for (const { specifier, line } of scan.imports) {
      const target = inputs.resolver.resolve(file, specifier);
      switch (target.kind) {
        case 'file':
          if (!seen.has(target.path)) {
            seen.add(target.path);
            importedBy.set(target.path, file);
            queue.push(target.path);
          }
          break;
        case 'package': {
          const known = packages[target.name];
          // Two installed copies of one name (nested node_modules): both versions enter the key.
          if (known !== undefined && known !== target.version) packages[target.name] = [...new Set([...known.split(' | '), target.version])].sort().join(' | ');
          else packages[target.name] = target.version;
          break;
        }
        case 'builtin':
          builtins.add(target.name);
          break;
        case 'outside':
          break;
        case 'unresolved':
          unresolved.add(`${file} -> ${specifier}`);
          warnings.push({ file, line, message: `import "${specifier}" resolves to nothing (it enters the key as unresolved)` });
          break;
      }
    }
  }
  const node = process.versions.node.split('.')[0]!;
  return { code: { files, packages, builtins: [...builtins].sort(), node, unresolved: [...unresolved].sort() }, importedBy, warnings };
}
