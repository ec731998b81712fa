#!/usr/bin/env node
// The runner CLI. Runs the compiled build (made by `npm ci` through the `prepare` script) for a fast start;
// runs the TypeScript source through tsx when there is no build or when a source file is newer than it (so a
// developer never runs a stale build by accident).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/runner/cli.js', import.meta.url);
// Written by `npm run build` after tsc finished (tsc leaves unchanged outputs' mtimes alone).
const stamp = new URL('../dist/.built', import.meta.url);

/** Newest mtime (ms) of the source files below `dir` (TypeScript and the speed-ups' Python and C). */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|py|c)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  if (!existsSync(compiled) || !existsSync(stamp)) return false;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const built = statSync(stamp).mtimeMs;
  return ['runner', 'cache'].every((dir) => newestSource(`${root}${dir}`) <= built);
}

if (buildIsCurrent()) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../runner/cli.ts', import.meta.url).href);
}
