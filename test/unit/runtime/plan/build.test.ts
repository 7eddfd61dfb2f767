import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSpec } from '../../../../spec';
import type { HostFacts } from '../../../../runtime/host/probe';
import { buildPlan, idmapRequests, type BuildOptions } from '../../../../runtime/plan/build';
import type { PlanOp } from '../../../../runtime/plan/types';
import { encodePlan } from '../../../../runtime/plan/encode';
import { PLAN_VERSION } from '../../../../runtime/plan/ops';

const fixtures = path.resolve(__dirname, '../../../fixtures/spec/good');

/** A hybrid host like the development machines, fixed so snapshots do not depend on the machine. */
const hybrid: HostFacts = {
  cgroupMode: 'hybrid',
  cgroupHierarchies: [
    { mountpoint: '/sys/fs/cgroup/memory', root: '/', version: 1, controllers: ['memory'] },
    { mountpoint: '/sys/fs/cgroup/cpu,cpuacct', root: '/', version: 1, controllers: ['cpu', 'cpuacct'] },
    { mountpoint: '/sys/fs/cgroup/systemd', root: '/', version: 1, controllers: ['name=systemd'] },
    { mountpoint: '/sys/fs/cgroup/unified', root: '/', version: 2, controllers: [] },
  ],
  hasKcore: true,
  capLastCap: 40,
  hasSystemd: false,
};
const unified: HostFacts = {
  ...hybrid,
  cgroupMode: 'unified',
  cgroupHierarchies: [{ mountpoint: '/sys/fs/cgroup', root: '/', version: 2, controllers: [] }],
};
const opts: BuildOptions = {
  id: 'c1', bundle: '/b', rootfs: '/b/rootfs', execFifo: '/run/tsrun/c1/exec.fifo', noPivot: false, noNewKeyring: false, preserveFds: 0, sourceKinds: {},
  cgroupPaths: {
    '/sys/fs/cgroup/memory': '/sys/fs/cgroup/memory/user/1/c1',
    '/sys/fs/cgroup/cpu,cpuacct': '/sys/fs/cgroup/cpu,cpuacct/user/1/c1',
    '/sys/fs/cgroup/systemd': '/sys/fs/cgroup/systemd/user/1/c1',
    '/sys/fs/cgroup/unified': '/sys/fs/cgroup/unified/user/1/c1',
  },
};

/** Plans as JSON-able data: bigints as hex strings, byte arrays as lengths. */
function show(ops: readonly PlanOp[]): unknown {
  return JSON.parse(JSON.stringify(ops, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v instanceof Uint8Array ? `<${v.length} bytes>` : v)));
}
const names = (ops: readonly PlanOp[]): string[] => ops.map((o) => o.op);
const load = (f: string) => parseSpec(fs.readFileSync(path.join(fixtures, f), 'utf8'), f);

for (const f of fs.readdirSync(fixtures).filter((x) => x.endsWith('.json')).sort()) {
  t.test(`plan for ${f}`, async (t) => {
    const spec = load(f);
    if (!spec.process) {
      t.pass('no process: nothing to plan for create');
      return;
    }
    const plan = buildPlan(spec, hybrid, opts);
    const n = names(plan.ops);
    t.equal(n[0], 'CLOSE_FDS', 'CLOSE_FDS first');
    t.equal(n[n.length - 1], 'EXEC', 'EXEC last');
    const at = (op: string) => n.indexOf(op);
    t.ok(at('ROOTFS') < at('PIVOT') && at('EXEC_FIFO') < at('PIVOT'), 'rootfs and fifo before pivot');
    t.ok(n.lastIndexOf('MOUNT') < at('PIVOT'), 'every mount before pivot');
    t.ok(at('PROCESS') < at('CREATED') && at('CREATED') < at('WAIT_START'), 'PROCESS, CREATED, WAIT_START in order');
    // The last USER op is the process user; a user namespace adds a switch to its root earlier.
    const user = n.lastIndexOf('USER');
    t.ok(user > at('RLIMIT') || at('RLIMIT') < 0, 'rlimits before the user switch');
    if (at('CAPS') >= 0) t.ok(at('CAPS_BOUNDING') < user && user < at('CAPS'), 'bounding, user, caps');
    const runtimeHooks = (spec.hooks?.prestart?.length ?? 0) + (spec.hooks?.createRuntime?.length ?? 0);
    t.equal(at('SYNC') >= 0, runtimeHooks > 0, 'SYNC only when there are runtime-namespace hooks');
    t.matchSnapshot(show(plan.ops), 'plan ops');
  });
}

t.test('default devices and /dev links unless the config lists them', async (t) => {
  const spec = load('runc-default.json');
  const withNull = { ...spec, linux: { ...spec.linux, devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o600 }] } };
  const devs = buildPlan(withNull, hybrid, opts).ops.filter((o) => o.op === 'DEVICE');
  t.same(devs.map((d) => (d.op === 'DEVICE' ? [d.path, d.mode] : [])), [
    ['/dev/null', 0o600], ['/dev/zero', 0o666], ['/dev/full', 0o666], ['/dev/random', 0o666], ['/dev/urandom', 0o666], ['/dev/tty', 0o666],
  ]);
  const links = buildPlan(spec, hybrid, opts).ops.filter((o) => o.op === 'SYMLINK').map((o) => (o.op === 'SYMLINK' ? o.linkpath : ''));
  t.same(links, ['/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/ptmx', '/dev/core']);
  const noKcore = buildPlan(spec, { ...hybrid, hasKcore: false }, opts).ops.filter((o) => o.op === 'SYMLINK');
  t.equal(noKcore.length, 5, 'no /dev/core without /proc/kcore');
});

t.test("cgroup mounts bind the container's own cgroup, per host mode", async (t) => {
  const spec = { ...load('runc-default.json'), mounts: [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid'] }] };
  const v1 = buildPlan(spec, hybrid, opts).ops.filter((o) => o.op === 'MOUNT');
  t.same(v1.map((m) => (m.op === 'MOUNT' ? [m.fstype, m.source, m.destination] : [])), [
    ['tmpfs', 'tmpfs', '/sys/fs/cgroup'],
    ['', '/sys/fs/cgroup/cpu,cpuacct/user/1/c1', '/sys/fs/cgroup/cpu,cpuacct'],
    ['', '/sys/fs/cgroup/memory/user/1/c1', '/sys/fs/cgroup/memory'],
    ['', '/sys/fs/cgroup/systemd/user/1/c1', '/sys/fs/cgroup/systemd'],
    ['', '/sys/fs/cgroup/unified/user/1/c1', '/sys/fs/cgroup/unified'],
    ['tmpfs', 'tmpfs', '/sys/fs/cgroup'],
  ], 'v1: tmpfs, one read-only bind per hierarchy, then the tmpfs remounted read-only');
  const v2 = buildPlan(spec, unified, { ...opts, cgroupPaths: { '/sys/fs/cgroup': '/sys/fs/cgroup/system.slice/c1' } }).ops.filter((o) => o.op === 'MOUNT');
  t.same(v2.map((m) => (m.op === 'MOUNT' ? [m.source, m.destination] : [])), [['/sys/fs/cgroup/system.slice/c1', '/sys/fs/cgroup']]);
});

t.test('bind sources resolve against the bundle and carry their kind', async (t) => {
  const spec = {
    ...load('runc-default.json'),
    mounts: [
      { destination: 'data', type: 'bind', source: 'vol', options: ['rbind', 'ro'] },
      { destination: '/etc/hosts', type: 'none', source: '/etc/hosts', options: ['bind'] },
      { destination: '/x', type: 'bind', source: '/nope', options: [] },
    ],
  };
  const mounts = buildPlan(spec, hybrid, { ...opts, sourceKinds: { '/b/vol': 'dir', '/etc/hosts': 'file', '/nope': 'missing' } }).ops.filter((o) => o.op === 'MOUNT');
  t.same(mounts.map((m) => (m.op === 'MOUNT' ? [m.source, m.destination, m.kind, m.flags & 0x5001n] : [])), [
    ['/b/vol', '/data', 0, 0x5001n],
    ['/etc/hosts', '/etc/hosts', 1, 0x1000n],
    ['/nope', '/x', 2, 0x1000n],
  ]);
});

t.test('a new user namespace: fifo and oom score first, then root of the namespace', async (t) => {
  const base = load('runc-default.json');
  const spec = { ...base, process: { ...base.process!, oomScoreAdj: 5 }, linux: { ...base.linux, namespaces: [...(base.linux?.namespaces ?? []), { type: 'user' as const }] } };
  const ops = buildPlan(spec, hybrid, opts).ops;
  const firstAfterNs = ops.findIndex((o) => o.op !== 'CLOSE_FDS' && o.op !== 'SET_NAME' && o.op !== 'NAMESPACE');
  t.same(ops.slice(firstAfterNs, firstAfterNs + 3), [
    { op: 'EXEC_FIFO', path: '/run/tsrun/c1/exec.fifo' },
    { op: 'OOM_SCORE_ADJ', value: 5n },
    { op: 'USER', uid: 0, gid: 0, groups: [], setgroups: 0 },
  ]);
  const noUserns = buildPlan(base, hybrid, opts).ops.filter((o) => o.op === 'USER');
  t.equal(noUserns.length, 1, 'without a user namespace only the process user switch');
});

t.test('seccomp goes in before capabilities drop without no_new_privs, last with it', async (t) => {
  const base = load('runc-default.json');
  const seccomp = { filter: new Uint8Array(8), flags: 0 };
  const names = (nnp: boolean) =>
    buildPlan({ ...base, process: { ...base.process!, noNewPrivileges: nnp } }, hybrid, { ...opts, seccomp }).ops.map((o) => o.op);
  const off = names(false);
  t.ok(off.indexOf('SECCOMP') < off.indexOf('CAPS_BOUNDING') && off.indexOf('SECCOMP') > off.indexOf('PIVOT'), 'nnp off: after pivot, before the bounding set drops');
  const on = names(true);
  t.same(on.slice(-2), ['SECCOMP', 'EXEC'], 'nnp on: directly before exec');
  t.equal(on.filter((n) => n === 'SECCOMP').length, 1, 'exactly one filter');
});

t.test('a new session keyring unless --no-new-keyring', async (t) => {
  t.same(buildPlan(load('runc-default.json'), hybrid, opts).ops.filter((o) => o.op === 'SESSION_KEYRING'), [{ op: 'SESSION_KEYRING', name: '_ses.c1' }]);
  t.same(buildPlan(load('runc-default.json'), hybrid, { ...opts, noNewKeyring: true }).ops.filter((o) => o.op === 'SESSION_KEYRING'), []);
});

t.test('--no-pivot and --preserve-fds reach the plan', async (t) => {
  const plan = buildPlan(load('runc-default.json'), hybrid, { ...opts, noPivot: true, preserveFds: 2 });
  t.same(plan.ops[0], { op: 'CLOSE_FDS', preserve: 2 });
  t.same(plan.ops.find((o) => o.op === 'PIVOT'), { op: 'PIVOT', mode: 1 });
});

t.test('idmapped bind mounts: requests for the runtime, IDMAP_MOUNT ops with the tree fds', async (t) => {
  const m = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const spec = {
    ...load('runc-default.json'),
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/data', type: 'bind', source: 'vol', options: ['rbind', 'ro', 'idmap'], uidMappings: m, gidMappings: m },
    ],
  };
  const reqs = idmapRequests(spec, '/b');
  t.same(reqs, [{ index: 1, source: '/b/vol', uidMap: '0 100000 65536\n', gidMap: '0 100000 65536\n', recursive: true, attrSet: 1n, attrClr: 0n }]);
  const ops = buildPlan(spec, hybrid, { ...opts, idmapFds: { 1: 9 }, sourceKinds: { '/b/vol': 'dir' } }).ops;
  t.same(ops.filter((o) => o.op === 'IDMAP_MOUNT'), [{ op: 'IDMAP_MOUNT', source: '/b/vol', destination: '/data', kind: 0, tree_fd: 9 }]);
  t.throws(() => idmapRequests({ ...spec, mounts: [{ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['idmap'] }] }, '/b'), {
    code: 'InvalidArgument',
    message: 'mounts[0]: idmapped mounts must be bind mounts (type "tmpfs")',
  });
});

t.test("init's stdio fds: a STDIO op right after CLOSE_FDS, only when given", async (t) => {
  const spec = load(fs.readdirSync(fixtures).filter((x) => x.endsWith('.json')).sort().find((f) => load(f).process !== undefined)!);
  const ops = buildPlan(spec, hybrid, { ...opts, stdio: [4, 5, -1] }).ops;
  t.same(names(ops).slice(0, 2), ['CLOSE_FDS', 'STDIO']);
  t.same(ops[1], { op: 'STDIO', fd0: 4, fd1: 5, fd2: 0xffffffff });
  t.notOk(names(buildPlan(spec, hybrid, opts).ops).includes('STDIO'));
});

t.test('cgroup joins: CGROUP_JOIN ops right after the namespace ops, only when given', async (t) => {
  const spec = load(fs.readdirSync(fixtures).filter((x) => x.endsWith('.json')).sort().find((f) => load(f).process !== undefined && (load(f).linux?.namespaces ?? []).length > 0)!);
  const join = [
    { op: 'CGROUP_JOIN', fd: 11, mode: 0 },
    { op: 'CGROUP_JOIN', fd: 12, mode: 1 },
    { op: 'CGROUP_JOIN', fd: 13, mode: 2 },
  ] as const;
  const ops = buildPlan(spec, hybrid, { ...opts, cgroupJoin: join }).ops;
  const n = names(ops);
  const first = n.indexOf('CGROUP_JOIN');
  t.same(ops.slice(first, first + 3), join, 'in the order given');
  t.equal(n.lastIndexOf('NAMESPACE'), first - 1, 'directly after the last namespace op');
  t.notOk(names(buildPlan(spec, hybrid, opts).ops).includes('CGROUP_JOIN'), 'none without joins');
  t.ok(encodePlan({ version: PLAN_VERSION, ops }).length > 0, 'encodes');
});

t.test('without a mount namespace: no propagation, chroot (even with --no-pivot), and what would change our mounts refused', async (t) => {
  const base = load('runc-default.json');
  const linux = base.linux ?? {};
  const spec = {
    ...base,
    root: { path: 'rootfs', readonly: false },
    linux: { ...linux, namespaces: (linux.namespaces ?? []).filter((n) => n.type !== 'mount'), maskedPaths: [], readonlyPaths: [] },
  };
  for (const noPivot of [false, true]) {
    const plan = buildPlan(spec, hybrid, { ...opts, noPivot });
    t.same(plan.ops.find((o) => o.op === 'ROOTFS'), { op: 'ROOTFS', path: '/b/rootfs', propagation: 0n }, `ROOTFS leaves propagation alone (noPivot ${noPivot})`);
    t.same(plan.ops.find((o) => o.op === 'PIVOT'), { op: 'PIVOT', mode: 2 }, `PIVOT only chroots (noPivot ${noPivot})`);
  }
  t.throws(() => buildPlan({ ...spec, linux: { ...spec.linux, maskedPaths: ['/proc/kcore'] } }, hybrid, opts), { code: 'InvalidArgument', message: /^linux\.maskedPaths: needs a mount namespace/ });
  t.throws(() => buildPlan({ ...spec, linux: { ...spec.linux, readonlyPaths: ['/proc/sys'] } }, hybrid, opts), { code: 'InvalidArgument', message: /^linux\.readonlyPaths: needs a mount namespace/ });
  t.throws(() => buildPlan({ ...spec, linux: { ...spec.linux, rootfsPropagation: 'shared' } }, hybrid, opts), { code: 'InvalidArgument', message: /^linux\.rootfsPropagation: needs a mount namespace/ });
  t.throws(() => buildPlan({ ...spec, root: { path: 'rootfs', readonly: true } }, hybrid, opts), { code: 'InvalidArgument', message: /^root\.readonly: needs a mount namespace/ });
  const joined = { ...spec, linux: { ...spec.linux, namespaces: [...(spec.linux.namespaces ?? []), { type: 'mount' as const, path: '/proc/1/ns/mnt' }] } };
  t.same(buildPlan(joined, hybrid, opts).ops.find((o) => o.op === 'PIVOT'), { op: 'PIVOT', mode: 0 }, 'a mount namespace joined by path is a mount namespace');
});
