// The import closure (runner/code-deps/) on small temp workspaces: which files and packages a JS/TS entry
// reaches, how specifiers resolve, and what is reported instead of followed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hashPath } from '../../cache/hash.js';
import { StatCache } from '../../cache/stat-cache.js';
import { codeClosure, type CodeClosure } from '../../runner/code-deps/closure.js';
import { importChain } from '../../runner/code-deps/import-chain.js';
import { ImportCache } from '../../runner/code-deps/import-cache.js';
import { Resolver } from '../../runner/code-deps/resolve.js';

const made: string[] = [];
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'code-deps-'));
  made.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

async function closureOf(dir: string, entries: string[], cache = ImportCache.inMemory()): Promise<CodeClosure> {
  const stats = StatCache.inMemory();
  return codeClosure({
    workspace: dir,
    entries,
    cache,
    resolver: new Resolver(dir),
    hash: async (path) => {
      try {
        return (await hashPath(dir, path, stats)).hash;
      } catch {
        return undefined;
      }
    },
  });
}

test('an entry -> a -> b chain: every file reached, with the chain of importers back to the entry', async () => {
  const dir = workspace({
    'main.ts': "import { a } from './lib/a.js';\nconsole.log(a);\n",
    'lib/a.ts': "export { b as a } from './b.js';\n",
    'lib/b.ts': 'export const b = 1;\n',
    'lib/unused.ts': 'export const u = 1;\n',
  });
  const closure = await closureOf(dir, ['main.ts']);
  assert.deepEqual(Object.keys(closure.code.files).sort(), ['lib/a.ts', 'lib/b.ts']);
  assert.deepEqual(importChain(closure.importedBy, 'lib/b.ts'), ['lib/a.ts', 'main.ts']);
  assert.deepEqual(closure.warnings, []);
});

test('./x.js names x.ts when only the .ts exists, a real x.js wins, and a directory import finds its index file', async () => {
  const dir = workspace({
    'main.mts': "import './ts-only.js';\nimport './both.js';\nimport './dir';\nimport './mts.mjs';\n",
    'ts-only.ts': '',
    'both.js': '',
    'both.ts': '',
    'dir/index.ts': "import '../deep.js';\n",
    'deep.ts': '',
    'mts.mts': '',
  });
  const closure = await closureOf(dir, ['main.mts']);
  assert.deepEqual(Object.keys(closure.code.files).sort(), ['both.js', 'deep.ts', 'dir/index.ts', 'mts.mts', 'ts-only.ts']);
});

test('#imports of the nearest package.json (with conditions and * patterns) and a package importing itself through exports', async () => {
  const dir = workspace({
    'package.json': JSON.stringify({
      name: 'self',
      imports: { '#util': { types: './types.d.ts', import: './src/util.ts' }, '#lib/*': './src/lib/*.ts', '#dep': 'dep' },
      exports: { '.': './src/index.ts', './feature': { node: './src/feature.ts' } },
    }),
    'src/main.ts': "import '#util';\nimport '#lib/x';\nimport '#dep';\nimport 'self';\nimport 'self/feature';\n",
    'src/util.ts': '',
    'src/lib/x.ts': '',
    'src/index.ts': '',
    'src/feature.ts': '',
    'node_modules/dep/package.json': JSON.stringify({ name: 'dep', version: '2.0.1' }),
  });
  const closure = await closureOf(dir, ['src/main.ts']);
  assert.deepEqual(Object.keys(closure.code.files).sort(), ['src/feature.ts', 'src/index.ts', 'src/lib/x.ts', 'src/util.ts']);
  assert.deepEqual(closure.code.packages, { dep: '2.0.1' });
});

test('an import cycle ends: each file once', async () => {
  const dir = workspace({ 'a.ts': "import './b.js';\n", 'b.ts': "import './c.js';\n", 'c.ts': "import './a.js';\nimport './b.js';\n" });
  const closure = await closureOf(dir, ['a.ts']);
  assert.deepEqual(Object.keys(closure.code.files).sort(), ['b.ts', 'c.ts']);
});

test('packages enter by name and installed version, resolved from the importing file (a nested copy wins); builtins by name', async () => {
  const dir = workspace({
    'main.ts': "import tf from '@scope/tf/sub/path.js';\nimport 'left';\nimport { readFileSync } from 'node:fs';\nimport path from 'path';\nimport './vendor/inner.ts';\n",
    'vendor/inner.ts': "import 'left';\n",
    'node_modules/@scope/tf/package.json': JSON.stringify({ name: '@scope/tf', version: '4.22.0' }),
    'node_modules/left/package.json': JSON.stringify({ name: 'left', version: '1.0.0' }),
    'vendor/node_modules/left/package.json': JSON.stringify({ name: 'left', version: '1.0.0' }),
  });
  const closure = await closureOf(dir, ['main.ts']);
  assert.deepEqual(closure.code.packages, { '@scope/tf': '4.22.0', left: '1.0.0' });
  assert.deepEqual(closure.code.builtins, ['fs', 'path']);
  assert.equal(closure.code.node, process.versions.node.split('.')[0]);
  writeFileSync(join(dir, 'vendor/node_modules/left/package.json'), JSON.stringify({ name: 'left', version: '1.1.0' }));
  const nested = await closureOf(dir, ['main.ts']);
  assert.equal(nested.code.packages['left'], '1.0.0 | 1.1.0');
});

test('import type, export … from, import("literal"), new URL("literal", import.meta.url) and require("literal") are followed', async () => {
  const dir = workspace({
    'main.ts': [
      "import type { T } from './types.js';",
      "export * from './star.js';",
      "export { x } from './named.js';",
      "const lazy = await import('./lazy.js');",
      "await import(new URL('./by-url.ts', import.meta.url).href);",
      "const { c } = require('./common.cjs');",
    ].join('\n'),
    'types.ts': '', 'star.ts': '', 'named.ts': 'export const x = 1;', 'lazy.ts': '', 'by-url.ts': '', 'common.cjs': 'module.exports = {}',
  });
  const closure = await closureOf(dir, ['main.ts']);
  assert.deepEqual(Object.keys(closure.code.files).sort(), ['by-url.ts', 'common.cjs', 'lazy.ts', 'named.ts', 'star.ts', 'types.ts']);
});

test('an import that resolves to nothing is a warning naming the file and line, and enters the key as unresolved', async () => {
  const dir = workspace({ 'main.ts': "import './ok.js';\n\nimport { gone } from './gone.js';\nimport 'not-installed';\n", 'ok.ts': '' });
  const closure = await closureOf(dir, ['main.ts']);
  assert.deepEqual(closure.code.unresolved, ['main.ts -> ./gone.js', 'main.ts -> not-installed']);
  assert.deepEqual(closure.warnings.map((w) => `${w.file}:${w.line}`), ['main.ts:3', 'main.ts:4']);
  assert.match(closure.warnings[0]!.message, /"\.\/gone\.js" resolves to nothing/);
  writeFileSync(join(dir, 'gone.ts'), 'export const gone = 1;\n');
  const later = await closureOf(dir, ['main.ts']);
  assert.deepEqual(later.code.unresolved, ['main.ts -> not-installed']);
  assert.ok('gone.ts' in later.code.files);
});

test('a non-literal import(expr) and a syntax error are warnings with file and line, never a throw', async () => {
  const dir = workspace({
    'main.ts': "import './broken.js';\nconst name = 'x';\nawait import(name);\nawait import(`./plugins/${name}.js`);\n",
    'broken.ts': "export const a = 1;\nimport { from './nowhere.js';\nconst s = `unterminated\n",
  });
  const closure = await closureOf(dir, ['main.ts']);
  const lines = closure.warnings.map((w) => `${w.file}:${w.line} ${w.message}`).sort();
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[0]!, /^broken\.ts:\d+ syntax error/);
  assert.match(lines[1]!, /^main\.ts:3 import\(name\): the module it loads can't be known/);
  assert.match(lines[2]!, /^main\.ts:4 import\(`\.\/plugins\/\$\{name\}\.js`\)/);
  assert.ok('broken.ts' in closure.code.files, 'the broken file is still in the key by content');
});

test('parsed imports are cached by content hash: a warm pass parses nothing, an edited file is parsed again', async () => {
  const dir = workspace({ 'main.ts': "import './a.js';\n", 'a.ts': '' });
  const file = join(dir, '.runner/tmp/code-imports.json');
  const cache = ImportCache.load(file);
  await closureOf(dir, ['main.ts'], cache);
  cache.save();
  writeFileSync(join(dir, 'main.ts'), "import './a.js';\n"); // rewritten with the same bytes
  const warm = ImportCache.load(file);
  const put = warm.put.bind(warm);
  let parsed = 0;
  warm.put = (hash, scan) => { parsed++; put(hash, scan); };
  await closureOf(dir, ['main.ts'], warm);
  assert.equal(parsed, 0);
  writeFileSync(join(dir, 'main.ts'), "import './a.js';\nimport './b.js';\n");
  writeFileSync(join(dir, 'b.ts'), 'export const b = 2;\n');
  const closure = await closureOf(dir, ['main.ts'], warm);
  assert.equal(parsed, 2); // main.ts (new content) and b.ts
  assert.ok('b.ts' in closure.code.files);
});
