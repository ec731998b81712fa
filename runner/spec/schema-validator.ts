// The pipeline schema's validator, compiled ahead of time. Compiling the schema with ajv at every start cost
// each command ~35 ms, and importing ajv's compiler ~20 ms more; `npm run build` writes the same validator as
// code (ajv's standalone output) beside the compiled schema, and schema.ts loads it when it was made from the
// schema as it is now (the digest below), else compiles as before (running from source, or a stale build).
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Options, ValidateFunction } from 'ajv';
import { pipelineSchema } from './schema-definition.js';

/** ajv's options for the pipeline schema (validateSchema off: the schema is a constant, not input). */
export const AJV_OPTIONS: Options = { allErrors: true, allowUnionTypes: true, validateSchema: false };

/** Names the schema and the options a validator was made from. */
export function schemaDigest(): string {
  return createHash('sha256').update(JSON.stringify({ schema: pipelineSchema, options: AJV_OPTIONS })).digest('hex');
}

const PRECOMPILED = new URL('./pipeline-validator.cjs', import.meta.url);

/** The validator written by the build (`file`), when there is one made from this schema; undefined otherwise. */
export function precompiledValidator(file: string = fileURLToPath(PRECOMPILED)): ValidateFunction | undefined {
  if (!existsSync(file)) return undefined;
  const loaded = createRequire(import.meta.url)(file) as { validate?: ValidateFunction; schemaDigest?: string };
  return loaded.schemaDigest === schemaDigest() ? loaded.validate : undefined;
}

/** Writes the validator for `npm run build` (CommonJS: ajv's standalone code requires its runtime helpers). */
export async function writePrecompiledValidator(): Promise<void> {
  const { Ajv } = await import('ajv');
  // A CommonJS module: its `exports.default` is the function.
  const { default: standalone } = await import('ajv/dist/standalone/index.js');
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
  const code = standalone.default(ajv, ajv.compile(pipelineSchema));
  writeFileSync(PRECOMPILED, `${code}\nmodule.exports.validate = validate0;\nmodule.exports.schemaDigest = ${JSON.stringify(schemaDigest())};\n`);
}
