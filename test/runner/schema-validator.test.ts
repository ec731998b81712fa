// The pipeline schema's validator compiled ahead by `npm run build` (runner/spec/schema-validator.ts): used only
// when it was made from the schema as it is, and then judging every pipeline exactly as ajv's compiler does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { AJV_OPTIONS, precompiledValidator, schemaDigest } from '../../runner/spec/schema-validator.js';
import { pipelineSchema } from '../../runner/spec/schema-definition.js';

const built = fileURLToPath(new URL('../../dist/runner/spec/pipeline-validator.cjs', import.meta.url));
const buildStamp = new URL('../../dist/.built', import.meta.url);

test('a validator file made from another schema is not used; one with this schema\'s digest is', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'schema-validator-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stale = join(dir, 'stale.cjs');
  writeFileSync(stale, `module.exports.validate = () => true;\nmodule.exports.schemaDigest = ${JSON.stringify('0'.repeat(64))};\n`);
  assert.equal(precompiledValidator(stale), undefined);
  const current = join(dir, 'current.cjs');
  writeFileSync(current, `module.exports.validate = function accepted() { return true; };\nmodule.exports.schemaDigest = ${JSON.stringify(schemaDigest())};\n`);
  assert.equal(precompiledValidator(current)?.name, 'accepted');
  assert.equal(precompiledValidator(join(dir, 'absent.cjs')), undefined);
});

const DOCUMENTS: unknown[] = [
  { stages: { a: { cmd: ['echo', 'hi'], deps: ['x', { path: 'y', optional: true }], outs: ['o'] } } },
  { stages: { a: { cmd: 'echo hi', shell: true } }, cache: { dir: 'c', link: 'hardlink', remote: { url: 'http://h/', push: true } } },
  { stages: {} },
  {},
  { stages: { a: {} } },
  { stages: { 'bad name!': { cmd: ['x'] } } },
  { stages: { a: { cmd: [], outs: [''] } } },
  { stages: { a: { cmd: ['x'], colour: 'red' } }, cach: {} },
  { stages: { a: { cmd: ['x'], resources: { cpus: 'two' } } }, slurm: { arraySize: 0, submitRate: 0 } },
  { stages: { a: { cmd: ['x'] } }, cache: { remote: { push: 'yes' } }, headline: { loss: 'lowest' } },
  { stages: { a: { cmd: ['x'], deps: [{ path: 'p', imports: 'no' }, 3] } } },
  'not a mapping',
];

test('the validator the build wrote is current and judges pipelines exactly as ajv\'s compiler does', { skip: !existsSync(buildStamp) && 'no build (dist/.built): `npm run build` writes the validator' }, () => {
  const precompiled = precompiledValidator(built);
  assert.ok(precompiled, 'the built validator was made from another schema: the build step did not write it');
  const compiled = new Ajv(AJV_OPTIONS).compile(pipelineSchema);
  for (const document of DOCUMENTS) {
    const verdict = compiled(document);
    assert.equal(precompiled(document), verdict, JSON.stringify(document));
    assert.deepEqual(precompiled.errors ?? null, compiled.errors ?? null, JSON.stringify(document));
  }
  assert.ok(DOCUMENTS.some((d) => compiled(d)) && DOCUMENTS.some((d) => !compiled(d)));
});
