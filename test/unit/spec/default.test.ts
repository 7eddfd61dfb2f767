import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkSpecValue, defaultSpec, findSpecProblem, parseSpec, OCI_VERSION, type Spec } from '../../../spec';

const fixtures = path.resolve(__dirname, '../../fixtures/spec');
// Captured with `runc spec` and `runc spec --rootless` (runc 1.1.5, run as root so ids are 0).
const runcDefault: unknown = JSON.parse(fs.readFileSync(path.join(fixtures, 'runc-spec-default.json'), 'utf8'));
const runcRootless: unknown = JSON.parse(fs.readFileSync(path.join(fixtures, 'runc-spec-rootless.json'), 'utf8'));

/** The spec as JSON text would carry it, with our two intended differences put back to runc's. */
const asRunc = (spec: Spec): unknown => {
  const copy = JSON.parse(JSON.stringify(spec)) as Record<string, unknown>;
  return { ...copy, ociVersion: '1.0.2-dev', hostname: 'runc' };
};

t.test('the default equals runc spec except ociVersion and hostname', async (t) => {
  const spec = defaultSpec({});
  t.equal(spec.ociVersion, OCI_VERSION);
  t.equal(spec.ociVersion, '1.2.0');
  t.equal(spec.hostname, 'tsrun');
  t.same(asRunc(spec), runcDefault);
  t.strictSame(asRunc(defaultSpec()), asRunc(spec), 'options are optional');
});

t.test('the rootless default equals runc spec --rootless', async (t) => {
  const spec = defaultSpec({ rootless: true });
  t.same(asRunc(spec), runcRootless, 'ids default to 0, as captured by root');
  const mapped = defaultSpec({ rootless: true, uid: 1000, gid: 1001 });
  t.same(mapped.linux?.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
  t.same(mapped.linux?.gidMappings, [{ containerID: 0, hostID: 1001, size: 1 }]);
  t.notOk(mapped.linux?.resources, 'no resources');
  t.notOk(mapped.linux?.namespaces?.some((ns) => ns.type === 'network'), 'no network namespace');
});

t.test('the defaults survive a round trip through the schema and the checks', async (t) => {
  for (const opts of [{}, { rootless: true, uid: 1000, gid: 1000 }]) {
    const spec = defaultSpec(opts);
    const text = JSON.stringify(spec, null, '\t');
    const parsed = parseSpec(text, 'config.json');
    t.same(parsed, spec, 'parse(stringify(spec)) is spec');
    t.same(checkSpecValue(spec, 'default'), spec);
    t.equal(findSpecProblem(parsed, { bundle: '/b' }), undefined, 'passes every check');
  }
});

t.test('each call returns a fresh object', async (t) => {
  const a = defaultSpec();
  a.process?.args?.push('-x');
  a.process?.capabilities?.bounding?.push('CAP_SYS_ADMIN');
  t.same(defaultSpec().process?.args, ['sh']);
  t.same(defaultSpec().process?.capabilities?.bounding, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
});
