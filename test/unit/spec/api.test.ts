import t from 'tap';
import * as api from '../../../spec';
import { formatPath, jsonKind, quote } from '../../../spec/describe';

t.test('the public API of spec/', async (t) => {
  const names = Object.keys(api).sort();
  const expected = [
    'CAPABILITY_NUMBERS',
    'I64_MAX_AS_NUMBER',
    'IDMappingSchema',
    'KNOWN_MOUNT_OPTIONS',
    'LinuxResourcesSchema',
    'LinuxSchema',
    'MountSchema',
    'NAMESPACE_CLONE_FLAGS',
    'OCI_VERSION',
    'PROCESS_CHECK_NAMES',
    'ProcessSchema',
    'RLIMIT_NUMBERS',
    'ROOTFS_PROPAGATIONS',
    'SPEC_CHECKS',
    'SpecSchema',
    'TIME_OFFSET_CLOCKS',
    'U64_MAX_AS_NUMBER',
    'checkSpecValue',
    'defaultSpec',
    'findSpecProblem',
    'isNamespaceType',
    'parseMountOptions',
    'parseProcess',
    'parseResources',
    'parseSpec',
    'rootfsPropagationFlags',
    'runSpecCheck',
    'toI64',
    'toU64',
    'validateProcess',
    'validateSpec',
  ];
  const constants = names.filter((n) => /^(MS|MOUNT_ATTR)_/.test(n));
  t.same(names.filter((n) => !constants.includes(n)), expected.sort());
  t.equal(constants.length, 23 + 11, 'MS_* and MOUNT_ATTR_* constants');
  for (const name of names) t.not((api as Record<string, unknown>)[name], undefined, `${name} is defined`);
});

t.test('names', async (t) => {
  t.equal(Object.keys(api.CAPABILITY_NUMBERS).length, 41, 'CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40)');
  t.same(Object.values(api.CAPABILITY_NUMBERS), [...Array(41).keys()], 'numbered 0..40 in order');
  t.same(Object.values(api.RLIMIT_NUMBERS), [...Array(16).keys()], 'RLIMIT_CPU (0) to RLIMIT_RTTIME (15)');
  t.equal(api.NAMESPACE_CLONE_FLAGS.network, 0x40000000);
  t.ok(api.isNamespaceType('time'));
  t.notOk(api.isNamespaceType('net'));
  t.notOk(api.isNamespaceType('toString'), 'no prototype keys');
});

t.test('describe helpers', async (t) => {
  t.equal(jsonKind(null), 'null');
  t.equal(jsonKind([]), 'array');
  t.equal(jsonKind({}), 'object');
  t.equal(jsonKind(1), 'number');
  t.equal(jsonKind(NaN), 'NaN');
  t.equal(jsonKind(-Infinity), '-Infinity');
  t.equal(quote('a'), '"a"');
  t.equal(quote(5), '5');
  t.equal(quote('x'.repeat(100)).length, 80);
  t.equal(formatPath([]), '');
  t.equal(formatPath(['linux', 'namespaces', 2, 'type']), 'linux.namespaces[2].type');
  t.equal(formatPath([0, 'a']), '[0].a');
  t.equal(formatPath(['annotations', 'io.x/y', '$ok_1']), 'annotations["io.x/y"].$ok_1');
  t.equal(formatPath(['a', Symbol.for('s')]), 'a["Symbol(s)"]');
});
