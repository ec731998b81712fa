#!/usr/bin/env node
// The runner CLI. Runs the compiled build (made by `npm ci` through the `prepare` script) for a fast start;
// falls back to the TypeScript source through tsx when no build is there.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/runner/cli.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../runner/cli.ts', import.meta.url).href);
}
