// Where an import specifier leads, the way Node (and TypeScript, for this project's `./x.js` -> `x.ts`
// convention) resolve it: a workspace file, an installed package (by name@version, not its files), a Node
// builtin, or nothing. Lookups of the file system are memoised for the life of one Resolver (one status pass).
import { readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve as resolvePath, sep } from 'node:path';
import { CODE_EXTENSIONS } from './code-files.js';

export type Resolution =
  | { kind: 'file'; path: string }
  | { kind: 'package'; name: string; version: string }
  | { kind: 'builtin'; name: string }
  /** A file outside the workspace (not followed: the workspace is what the runner fingerprints). */
  | { kind: 'outside' }
  | { kind: 'unresolved' };

type ExportsMap = string | null | readonly unknown[] | { readonly [key: string]: unknown };

interface PackageJson {
  dir: string;
  name?: string;
  version?: string;
  exports?: ExportsMap;
  imports?: ExportsMap;
}


/** TypeScript's rule: an import written `./x.js` may name `x.ts` (and .mjs -> .mts, .cjs -> .cts, .jsx -> .tsx). */
const TS_FOR_JS: Record<string, string[]> = { '.js': ['.ts', '.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'], '.jsx': ['.tsx'] };

/** Runtime conditions, in the order a Node ESM import (or tsx) matches them. */
const CONDITIONS = new Set(['node', 'import', 'module-sync', 'default', 'require']);

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** A target of an `exports` / `imports` entry, following conditions and arrays (null: explicitly none). */
function pickTarget(target: unknown, star: string | undefined): string | undefined {
  if (typeof target === 'string') return star === undefined ? target : target.split('*').join(star);
  if (Array.isArray(target)) {
    for (const item of target) {
      const picked = pickTarget(item, star);
      if (picked !== undefined) return picked;
    }
    return undefined;
  }
  if (target && typeof target === 'object') {
    for (const [condition, value] of Object.entries(target)) {
      if (!CONDITIONS.has(condition)) continue;
      const picked = pickTarget(value, star);
      if (picked !== undefined) return picked;
    }
  }
  return undefined;
}

/** Node's PACKAGE_IMPORTS_EXPORTS_RESOLVE: an exact key, else the `*` pattern with the longest prefix. */
export function matchSubpath(map: ExportsMap | undefined, key: string): string | undefined {
  if (map === undefined || map === null) return undefined;
  // `"exports": "./x.js"` or a conditions object: the package's main entry.
  if (typeof map === 'string' || Array.isArray(map) || !Object.keys(map).some((k) => k.startsWith('.') || k.startsWith('#'))) {
    return key === '.' ? pickTarget(map, undefined) : undefined;
  }
  const entries = map as Record<string, unknown>;
  if (key in entries && !key.includes('*')) return pickTarget(entries[key], undefined);
  let best: { prefix: string; target: unknown; star: string } | undefined;
  for (const [pattern, target] of Object.entries(entries)) {
    const at = pattern.indexOf('*');
    if (at === -1) continue;
    const prefix = pattern.slice(0, at);
    const suffix = pattern.slice(at + 1);
    if (key.length >= pattern.length - 1 && key.startsWith(prefix) && key.endsWith(suffix) && (!best || prefix.length > best.prefix.length)) {
      best = { prefix, target, star: key.slice(prefix.length, key.length - suffix.length) };
    }
  }
  return best ? pickTarget(best.target, best.star) : undefined;
}

export class Resolver {
  private readonly isFileMemo = new Map<string, boolean>();
  private readonly packageJsonMemo = new Map<string, PackageJson | undefined>();
  private readonly nearestMemo = new Map<string, PackageJson | undefined>();
  private readonly versionMemo = new Map<string, { name: string; version: string } | undefined>();
  /** By importing file and specifier: a status pass walks the shared files of many stages' closures. */
  private readonly resolved = new Map<string, Resolution>();

  constructor(private readonly workspace: string) {}

  /** Where `specifier`, imported by the workspace file `from`, leads. */
  resolve(from: string, specifier: string): Resolution {
    const memoKey = `${from}\0${specifier}`;
    let known = this.resolved.get(memoKey);
    if (known === undefined) {
      known = this.resolveOnce(from, specifier);
      this.resolved.set(memoKey, known);
    }
    return known;
  }

  private resolveOnce(from: string, specifier: string): Resolution {
    const fromDir = dirname(join(this.workspace, from));
    if (specifier.startsWith('node:')) return { kind: 'builtin', name: specifier.slice(5) };
    if (specifier.startsWith('#')) return this.resolveImportsField(fromDir, specifier);
    if (specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/') || specifier === '.' || specifier === '..') {
      return this.resolveFile(resolvePath(fromDir, specifier));
    }
    if (specifier.startsWith('file:')) {
      try {
        return this.resolveFile(new URL(specifier).pathname);
      } catch {
        return { kind: 'unresolved' };
      }
    }
    if (isBuiltin(specifier)) return { kind: 'builtin', name: specifier };
    return this.resolveBare(fromDir, specifier);
  }

  private isFile(abs: string): boolean {
    let known = this.isFileMemo.get(abs);
    if (known === undefined) {
      known = statSync(abs, { throwIfNoEntry: false })?.isFile() ?? false;
      this.isFileMemo.set(abs, known);
    }
    return known;
  }

  private inWorkspace(abs: string): Resolution {
    const rel = relative(this.workspace, abs);
    if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return { kind: 'outside' };
    return { kind: 'file', path: rel.split(sep).join('/') };
  }

  /** The file itself, its .ts twin, the name with an extension added, or the directory's index file. */
  private resolveFile(abs: string): Resolution {
    if (this.isFile(abs)) return this.inWorkspace(abs);
    const ext = CODE_EXTENSIONS.find((e) => abs.endsWith(e));
    if (ext) {
      for (const twin of TS_FOR_JS[ext] ?? []) {
        const candidate = abs.slice(0, -ext.length) + twin;
        if (this.isFile(candidate)) return this.inWorkspace(candidate);
      }
    }
    for (const added of CODE_EXTENSIONS) if (this.isFile(abs + added)) return this.inWorkspace(abs + added);
    for (const added of CODE_EXTENSIONS) if (this.isFile(join(abs, `index${added}`))) return this.inWorkspace(join(abs, `index${added}`));
    return { kind: 'unresolved' };
  }

  private packageJson(dir: string): PackageJson | undefined {
    if (this.packageJsonMemo.has(dir)) return this.packageJsonMemo.get(dir);
    let found: PackageJson | undefined;
    const file = join(dir, 'package.json');
    if (this.isFile(file)) {
      try {
        const parsed = JSON.parse(readFileSync(file, 'utf8')) as Omit<PackageJson, 'dir'>;
        found = { dir, name: parsed.name, version: parsed.version, exports: parsed.exports, imports: parsed.imports };
      } catch {
        found = undefined; // not JSON: as if absent
      }
    }
    this.packageJsonMemo.set(dir, found);
    return found;
  }

  /** The package.json of the package a directory belongs to (Node's "package scope"). */
  private nearestPackageJson(dir: string): PackageJson | undefined {
    if (this.nearestMemo.has(dir)) return this.nearestMemo.get(dir);
    const parent = dirname(dir);
    const found = this.packageJson(dir) ?? (parent === dir ? undefined : this.nearestPackageJson(parent));
    this.nearestMemo.set(dir, found);
    return found;
  }

  /** `#x`: the `imports` field of the importing file's package. */
  private resolveImportsField(fromDir: string, specifier: string): Resolution {
    const pkg = this.nearestPackageJson(fromDir);
    const target = pkg ? matchSubpath(pkg.imports, specifier) : undefined;
    if (!pkg || target === undefined) return { kind: 'unresolved' };
    if (target.startsWith('./')) return this.resolveFile(join(pkg.dir, target));
    return this.resolveBare(pkg.dir, target);
  }

  private resolveBare(fromDir: string, specifier: string): Resolution {
    const name = packageName(specifier);
    // A package importing itself by name goes through its own `exports` (Node's self-reference).
    const own = this.nearestPackageJson(fromDir);
    if (own && own.name === name && own.exports !== undefined) {
      const target = matchSubpath(own.exports, '.' + specifier.slice(name.length));
      return target === undefined ? { kind: 'unresolved' } : this.resolveFile(join(own.dir, target));
    }
    const installed = this.installed(fromDir, name);
    return installed ? { kind: 'package', ...installed } : { kind: 'unresolved' };
  }

  /** The nearest `node_modules/<name>/package.json` above `dir`, as Node looks for it. */
  private installed(dir: string, name: string): { name: string; version: string } | undefined {
    const memoKey = `${dir}\0${name}`;
    if (this.versionMemo.has(memoKey)) return this.versionMemo.get(memoKey);
    const pkg = this.packageJson(join(dir, 'node_modules', name));
    const parent = dirname(dir);
    const found = pkg ? { name, version: pkg.version ?? 'unversioned' } : parent === dir ? undefined : this.installed(parent, name);
    this.versionMemo.set(memoKey, found);
    return found;
  }
}
