#!/usr/bin/env node
// The DSB2018 stage programs. Always runs the TypeScript source (through tsx): pipelines declare the source
// files as deps, so what runs is exactly what was fingerprinted — never a stale build.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../stages/cli.ts', import.meta.url).href);
