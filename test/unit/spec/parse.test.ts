import t from 'tap';
import {
  checkSpecValue,
  parseProcess,
  parseResources,
  parseSpec,
  toI64,
  toU64,
  I64_MAX_AS_NUMBER,
  U64_MAX_AS_NUMBER,
} from '../../../spec';
import { TsrunError } from '../../../spec/errors';

const minimal = { ociVersion: '1.2.0', process: { cwd: '/', args: ['sh'] }, root: { path: 'rootfs' } };
const text = (value: unknown): string => JSON.stringify(value);
const invalid = (message: string) => ({ name: 'TsrunError', code: 'InvalidArgument', message });

t.test('u64 and i64 extremes are accepted and clamp back exactly', async (t) => {
  const spec = parseSpec(
    `{"ociVersion":"1.2.0","process":{"cwd":"/","rlimits":[{"type":"RLIMIT_CORE","soft":18446744073709551615,"hard":18446744073709551615}]},
      "linux":{"resources":{"memory":{"limit":-1,"swap":9223372036854775807,"reservation":-9223372036854775808}}}}`,
    'c',
  );
  const rlimit = spec.process?.rlimits?.[0];
  t.equal(rlimit?.soft, U64_MAX_AS_NUMBER, 'u64 max arrives as 2^64');
  t.equal(toU64(rlimit?.soft ?? 0), 18446744073709551615n, 'and goes back to 2^64-1');
  t.equal(toU64(1024), 1024n);
  const memory = spec.linux?.resources?.memory;
  t.equal(memory?.limit, -1);
  t.equal(memory?.swap, I64_MAX_AS_NUMBER, 'i64 max arrives as 2^63');
  t.equal(toI64(memory?.swap ?? 0), 9223372036854775807n);
  t.equal(toI64(memory?.reservation ?? 0), -9223372036854775808n);
  t.equal(toI64(-1), -1n);
  t.throws(
    () => parseSpec(text({ ...minimal, process: { cwd: '/', rlimits: [{ type: 'RLIMIT_CORE', soft: 1, hard: 2 ** 65 }] } }), 'c'),
    invalid(`invalid c: process.rlimits[0].hard: expected uint64, got ${2 ** 65}`),
  );
  t.throws(
    () => parseSpec(text({ ...minimal, linux: { resources: { memory: { limit: -(2 ** 64) } } } }), 'c'),
    invalid(`invalid c: linux.resources.memory.limit: expected int64, got ${-(2 ** 64)}`),
  );
  t.throws(() => parseSpec(text({ ...minimal, process: { cwd: '/', user: { uid: 2 ** 32 } } }), 'c'), invalid('invalid c: process.user.uid: expected uint32, got 4294967296'));
  t.throws(() => parseSpec(text({ ...minimal, linux: { resources: { blockIO: { weight: 70000 } } } }), 'c'), invalid('invalid c: linux.resources.blockIO.weight: expected uint16, got 70000'));
  t.throws(() => parseSpec(text({ ...minimal, process: { cwd: '/', oomScoreAdj: 2 ** 31 } }), 'c'), invalid('invalid c: process.oomScoreAdj: expected int32, got 2147483648'));
  t.throws(() => parseSpec('{"ociVersion":"1","process":{"cwd":"/","oomScoreAdj":1e999}}', 'c'), invalid('invalid c: process.oomScoreAdj: expected int32, got Infinity'));
});

t.test('unknown keys are kept, at the top and inside objects', async (t) => {
  const spec = parseSpec(text({ ...minimal, vm: { x: 1 }, process: { cwd: '/', args: ['sh'], future: true }, linux: { netDevices: { eth0: {} } } }), 'c');
  t.same((spec as Record<string, unknown>)['vm'], { x: 1 });
  t.same((spec.process as Record<string, unknown> | undefined)?.['future'], true);
  t.same((spec.linux as Record<string, unknown> | undefined)?.['netDevices'], { eth0: {} });
});

t.test('null is read as absent', async (t) => {
  const spec = parseSpec('{"ociVersion":"1.2.0","hooks":null,"process":{"cwd":"/","env":null,"args":["a"]},"linux":{"resources":{"devices":[{"allow":true,"major":null}]}}}', 'c');
  t.equal(spec.hooks, undefined);
  t.equal(spec.process?.env, undefined);
  t.same(spec.linux?.resources?.devices, [{ allow: true }]);
  t.throws(() => parseSpec('{"ociVersion":null}', 'c'), invalid('invalid c: ociVersion: missing, expected string'), 'null for a required key is missing');
  t.throws(() => parseSpec('{"ociVersion":"1","process":{"cwd":"/","args":["a",null]}}', 'c'), invalid('invalid c: process.args[1]: expected string, got null'), 'null inside arrays is not dropped');
});

t.test('absurd nesting is refused cleanly', async (t) => {
  const depth = 1_000_000;
  const deep = `{"ociVersion":"1.2.0","x-deep":${'['.repeat(depth)}${']'.repeat(depth)}}`;
  t.throws(() => parseSpec(deep, 'c'), invalid('invalid c: nested too deeply'));
});

t.test('process.user defaults to root', async (t) => {
  t.same(parseSpec(text(minimal), 'c').process?.user, { uid: 0, gid: 0 });
  t.same(parseSpec(text({ ...minimal, process: { cwd: '/', user: { gid: 5 } } }), 'c').process?.user, { uid: 0, gid: 5 });
  const first = parseSpec(text(minimal), 'c').process;
  if (first) first.user.uid = 99;
  t.equal(parseSpec(text(minimal), 'c').process?.user.uid, 0, 'the default is not shared between parses');
});

t.test('messages name paths and kinds', async (t) => {
  const cases: readonly [unknown, string][] = [
    [{ ...minimal, annotations: { 'io.podman/x': 1 } }, 'annotations["io.podman/x"]: expected string, got number'],
    [{ ...minimal, linux: { sysctl: { 'net.ipv4.ip_forward': true } } }, 'linux.sysctl["net.ipv4.ip_forward"]: expected string, got boolean'],
    [{ ...minimal, linux: { resources: { unified: ['x'] } } }, 'linux.resources.unified: expected object of strings, got array'],
    [{ ...minimal, linux: { namespaces: {} } }, 'linux.namespaces: expected array of objects, got object'],
    [{ ...minimal, process: { cwd: '/', user: { additionalGids: 'x' } } }, 'process.user.additionalGids: expected array of uint32s, got string'],
    [{ ...minimal, process: { cwd: '/', user: { additionalGids: [-1] } } }, 'process.user.additionalGids[0]: expected uint32, got -1'],
    [{ ...minimal, process: { cwd: '/', scheduler: { policy: 'SCHED_NORMAL' } } }, 'process.scheduler.policy: expected one of "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE", got "SCHED_NORMAL"'],
    [{ ...minimal, process: { cwd: '/', ioPriority: { class: 3 } } }, 'process.ioPriority.class: expected one of "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE", got 3'],
    [{ ...minimal, process: { cwd: '/', ioPriority: {} } }, 'process.ioPriority.class: missing, expected one of "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"'],
    [{ ...minimal, process: { cwd: '/', scheduler: { policy: 'SCHED_RR', flags: 'x' } } }, 'process.scheduler.flags: expected array of strings, got string'],
    [{ ...minimal, process: { cwd: '/', terminal: 'yes' } }, 'process.terminal: expected boolean, got string'],
    [{ ...minimal, root: 'rootfs' }, 'root: expected object, got string'],
    [{ ...minimal, linux: { resources: { rdma: { mlx: 1 } } } }, 'linux.resources.rdma.mlx: expected object, got number'],
    [{ ...minimal, linux: { resources: { pids: {} } } }, 'linux.resources.pids.limit: missing, expected int64'],
    [{ ...minimal, linux: { personality: { domain: 'LINUX64' } } }, 'linux.personality.domain: expected one of "LINUX", "LINUX32", got "LINUX64"'],
    [{ ...minimal, hostname: 'x'.repeat(100) }, ''],
  ];
  for (const [value, message] of cases) {
    if (message === '') {
      t.doesNotThrow(() => parseSpec(text(value), 'c'));
      continue;
    }
    t.throws(() => parseSpec(text(value), '/b/config.json'), invalid(`invalid /b/config.json: ${message}`), message);
  }
  t.throws(
    () => parseSpec(text({ ...minimal, linux: { seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'x'.repeat(100) }] } } }), 'c'),
    /got "x{76}\.\.\.$/,
    'long values are shortened',
  );
});

t.test('at most three issues are listed', async (t) => {
  const bad = { ociVersion: 1, hostname: 2, domainname: 3, mounts: 4 };
  t.throws(
    () => parseSpec(text(bad), 'c'),
    invalid('invalid c: ociVersion: expected string, got number; hostname: expected string, got number; domainname: expected string, got number (and 1 more)'),
  );
  const three = { ociVersion: 1, hostname: 2, domainname: 3 };
  t.throws(() => parseSpec(text(three), 'c'), invalid('invalid c: ociVersion: expected string, got number; hostname: expected string, got number; domainname: expected string, got number'));
});

t.test('syntax errors give the line and column', async (t) => {
  t.throws(() => parseSpec('', '/b/config.json'), invalid('parse /b/config.json: unexpected end of input at line 1 column 1'));
  t.throws(() => parseSpec('{"ociVersion": "1.2.0",}', 'c'), invalid('parse c: unexpected character "}", expected a property name in double quotes at line 1 column 24'));
  const err = (() => {
    try {
      parseSpec('{\n "a": [1, 2\n}', 'c');
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof TsrunError);
  t.equal((err as TsrunError).message, 'parse c: unexpected character "}", expected "," or "]" at line 3 column 1');
  t.ok((err as TsrunError).cause instanceof SyntaxError, 'the JSON.parse error is the cause');
  t.throws(() => parseSpec('['.repeat(1_000_000), 'c'), invalid('parse c: unexpected end of JSON input'), 'too deep for the scanner: V8 words, first line');
  t.throws(() => parseSpec('{"a":\n\n 1 2}', 'c'), invalid('parse c: unexpected character "2", expected "," or "}" at line 3 column 4'));
});

t.test('parseProcess reads an exec process.json', async (t) => {
  const process = parseProcess(text({ cwd: '/', args: ['ls'], env: ['A=1'], terminal: false }), '/tmp/p.json');
  t.same(process, { cwd: '/', args: ['ls'], env: ['A=1'], terminal: false, user: { uid: 0, gid: 0 } });
  t.throws(() => parseProcess(text({ args: ['ls'] }), '/tmp/p.json'), invalid('invalid /tmp/p.json: cwd: missing, expected string'));
});

t.test('parseResources reads update --resources', async (t) => {
  const resources = parseResources(text({ memory: { limit: 1048576, reservation: 0, kernel: 0 }, cpu: { shares: 0, quota: 0, period: 0 } }), 'stdin');
  t.same(resources.memory, { limit: 1048576, reservation: 0, kernel: 0 });
  t.throws(() => parseResources(text({ pids: { limit: '10' } }), 'stdin'), invalid('invalid stdin: pids.limit: expected int64, got string'));
});

t.test('checkSpecValue checks values built in code', async (t) => {
  t.same(checkSpecValue(minimal, 'x'), { ...minimal, process: { ...minimal.process, user: { uid: 0, gid: 0 } } });
  t.throws(() => checkSpecValue({ ociVersion: '1', process: { cwd: 1 } }, 'built spec'), invalid('invalid built spec: process.cwd: expected string, got number'));
  t.throws(() => checkSpecValue(undefined, 'nothing'), invalid('invalid nothing: missing, expected object'));
});
