import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findSpecProblem, parseSpec, runSpecCheck, validateSpec, SPEC_CHECKS, type SpecCheckName } from '../../../spec';
import { TsrunError } from '../../../spec/errors';

const fixtures = path.resolve(__dirname, '../../fixtures/spec');
const jsonFiles = (dir: string): string[] =>
  fs
    .readdirSync(path.join(fixtures, dir))
    .filter((f) => f.endsWith('.json'))
    .sort();
const read = (...parts: string[]): string => fs.readFileSync(path.join(fixtures, ...parts), 'utf8');
const ctx = { bundle: '/b' };

t.test('every good fixture parses and validates', async (t) => {
  const files = jsonFiles('good');
  t.ok(files.length >= 8, `${files.length} good fixtures`);
  for (const file of files) {
    const spec = parseSpec(read('good', file), `good/${file}`);
    t.equal(findSpecProblem(spec, ctx), undefined, file);
    t.doesNotThrow(() => validateSpec(spec, ctx), file);
    for (const check of SPEC_CHECKS) t.equal(runSpecCheck(check, spec, ctx), undefined, `${file}: ${check}`);
  }
});

t.test('every bad fixture fails with exactly its expected message', async (t) => {
  const files = jsonFiles('bad');
  t.ok(files.length >= 15, `${files.length} bad fixtures`);
  for (const file of files) {
    const name = file.replace(/\.json$/, '');
    const expected = read('bad', `${name}.expected.txt`).replace(/\n$/, '');
    const text = read('bad', file);
    if (name.startsWith('parse-')) {
      t.throws(() => parseSpec(text, 'config.json'), { name: 'TsrunError', code: 'InvalidArgument', message: expected }, file);
      continue;
    }
    const spec = parseSpec(text, 'config.json');
    t.ok((SPEC_CHECKS as readonly string[]).includes(name), `${file} is named after a check`);
    t.same(findSpecProblem(spec, ctx), { check: name as SpecCheckName, message: expected }, `${file}: the named check fires first`);
    t.equal(runSpecCheck(name as SpecCheckName, spec, ctx), expected, `${file}: the named check alone`);
    t.throws(() => validateSpec(spec, ctx), new TsrunError('InvalidArgument', expected), file);
  }
});

t.test('every check has a bad fixture', async (t) => {
  const named = new Set(jsonFiles('bad').map((f) => f.replace(/\.json$/, '')));
  for (const check of SPEC_CHECKS) t.ok(named.has(check), `bad/${check}.json exists`);
  const expectedFiles = fs.readdirSync(path.join(fixtures, 'bad')).filter((f) => f.endsWith('.expected.txt'));
  t.equal(expectedFiles.length, named.size, 'one .expected.txt per bad fixture');
});
