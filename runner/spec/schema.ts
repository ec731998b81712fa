// The pipeline file's JSON Schema, checked with ajv. Errors come back as located Diagnostics: the instancePath
// of each ajv error is mapped to the YAML node it came from, and unknown keys get a "did you mean".
import type { ErrorObject, ValidateFunction } from 'ajv';
import { didYouMean, error, type Diagnostic } from './diagnostics.js';
import { locate, type SourceFile } from './load.js';
import { pipelineSchema, slurmSchema, stageSchema } from './schema-definition.js';
import { AJV_OPTIONS, precompiledValidator } from './schema-validator.js';

export { pipelineSchema };

let validator: ValidateFunction | undefined;

async function compiled(): Promise<ValidateFunction> {
  if (!validator) {
    // Imported here, not at the top: compiling costs tens of milliseconds that `runner --help` needn't pay,
    // nor any command of a build that has the validator compiled ahead (schema-validator.ts).
    validator = precompiledValidator() ?? new (await import('ajv')).Ajv(AJV_OPTIONS).compile(pipelineSchema);
  }
  return validator;
}

/** The schema's allowed keys at a JSON pointer of the instance (for "did you mean"). */
function allowedKeys(instancePath: string): string[] {
  const parts = instancePath.split('/').filter(Boolean);
  if (parts.length === 0) return Object.keys(pipelineSchema.properties);
  if (parts[0] === 'stages' && parts.length === 2) return Object.keys(stageSchema.properties);
  if (parts[0] === 'stages' && parts[2] === 'resources') return Object.keys(stageSchema.properties.resources.properties);
  if (parts.includes('slurm')) return Object.keys(slurmSchema.properties);
  if (parts[0] === 'cache' && parts[1] === 'remote') return Object.keys(pipelineSchema.properties.cache.properties.remote.properties);
  if (parts[0] === 'cache') return Object.keys(pipelineSchema.properties.cache.properties);
  return [];
}

function decodePointer(instancePath: string): string[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describe(path: string[]): string {
  if (path.length === 0) return 'the pipeline';
  if (path[0] === 'stages' && path.length >= 2) {
    const rest = path.slice(2).join('.');
    return `stage "${path[1]}"${rest ? ` key "${rest}"` : ''}`;
  }
  return `"${path.join('.')}"`;
}

function toDiagnostic(source: SourceFile, e: ErrorObject): Diagnostic {
  const path = decodePointer(e.instancePath);
  const where = describe(path);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const context = path.length === 0 ? 'at the top level' : `in ${where}`;
      return error(`unknown key "${key}" ${context}${didYouMean(key, allowedKeys(e.instancePath))}`, locate(source, [...path, key], 'key'));
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return error(`${where} is missing the required key "${key}"`, locate(source, path, 'key'));
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ');
      return error(`${where} must be one of: ${allowed}`, locate(source, path));
    }
    case 'propertyNames':
    case 'pattern':
      if (e.keyword === 'propertyNames' || path[0] === 'stages') {
        // ajv names the offending key in `propertyName` (on the error itself for propertyNames' inner errors).
        const name = String((e as { propertyName?: string }).propertyName ?? (e.params as { propertyName?: string }).propertyName ?? path[1]);
        return error(
          `invalid stage name "${name}": use letters, digits, "_", "-" and "." ("@" is reserved for foreach/matrix)`,
          locate(source, ['stages', name], 'key'),
        );
      }
      return error(`${where} ${e.message ?? 'is invalid'}`, locate(source, path));
    case 'type': {
      const type = (e.params as { type: string | string[] }).type;
      const types = (Array.isArray(type) ? type : type.split(',')).join(' or ');
      return error(`${where} must be ${/^[aeiou]/.test(types) ? 'an' : 'a'} ${types}`, locate(source, path));
    }
    default:
      return error(`${where} ${e.message ?? 'is invalid'}`, locate(source, path));
  }
}

/** Every schema violation of the document, located; [] when it is valid. */
export async function validatePipeline(source: SourceFile): Promise<Diagnostic[]> {
  const validate = await compiled();
  if (validate(source.data)) return [];
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if');
  // A propertyNames failure also reports a generic 'pattern' error for the same key: keep one.
  const seen = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  for (const e of errors) {
    const d = toDiagnostic(source, e);
    const id = `${d.message}@${d.location?.line}:${d.location?.col}`;
    if (!seen.has(id)) diagnostics.push(d), seen.add(id);
  }
  return diagnostics.sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.col ?? 0) - (b.location?.col ?? 0));
}
