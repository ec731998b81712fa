// The pipeline file's JSON Schema (checked by schema.ts; compiled ahead of time by schema-validator.ts).
import { EXECUTORS, LINK_MODES } from './pipeline.js';

const pathList = { type: 'array', items: { type: 'string', minLength: 1 } };
const scalar = { type: ['string', 'number', 'boolean'] };
export const slurmSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    partition: { type: 'string', minLength: 1 },
    account: { type: 'string', minLength: 1 },
    time: { type: ['string', 'number'] },
    args: { type: 'array', items: { type: 'string' } },
    poll: { type: ['string', 'number'] },
    submitRate: { type: 'number', exclusiveMinimum: 0 },
    arraySize: { type: 'integer', minimum: 1 },
  },
} as const;

export const stageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cmd'],
  properties: {
    desc: { type: 'string' },
    cmd: { type: ['string', 'array'], minLength: 1, minItems: 1, items: scalar },
    shell: { type: 'boolean' },
    // A dep is a path, or {path, optional: true}: an optional dep that is absent enters the key as "absent".
    // {path, imports: false}: a JS/TS dep whose import closure is not followed (runner/code-deps/).
    deps: {
      type: 'array',
      items: {
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string', minLength: 1 }, optional: { type: 'boolean' }, imports: { type: 'boolean' } } },
        ],
      },
    },
    params: { type: 'array', items: { type: 'string', minLength: 1 } },
    outs: pathList,
    metrics: pathList,
    checkpoints: pathList,
    // Report hints, not part of the key: per-epoch JSON records to chart, folders of images to show.
    plots: pathList,
    images: pathList,
    env: { type: 'object', additionalProperties: scalar },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cpus: { type: 'number', minimum: 0 },
        gpus: { type: 'integer', minimum: 0 },
        memory: { type: ['string', 'number'] },
      },
    },
    retries: { type: 'integer', minimum: 0 },
    timeout: { type: ['string', 'number'] },
    executor: { enum: EXECUTORS },
    slurm: slurmSchema,
    foreach: { type: ['array', 'string'] },
    matrix: { type: 'object', minProperties: 1, additionalProperties: { type: 'array', minItems: 1 } },
  },
} as const;

export const pipelineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['stages'],
  properties: {
    params: { type: ['object', 'string'] },
    profiles: { type: 'object', additionalProperties: { type: 'object' } },
    cache: {
      type: 'object',
      additionalProperties: false,
      properties: {
        dir: { type: 'string', minLength: 1 },
        link: { enum: LINK_MODES },
        // A remote cache shared between machines (runner/commands/remote.ts, docs/remote-cache.md).
        remote: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: { url: { type: 'string', minLength: 1 }, push: { type: 'boolean' } },
        },
      },
    },
    executor: { enum: EXECUTORS },
    slurm: slurmSchema,
    headline: { type: 'object', minProperties: 1, additionalProperties: { enum: ['max', 'min'] } },
    stages: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' },
      additionalProperties: stageSchema,
    },
  },
} as const;
