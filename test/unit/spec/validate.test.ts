import t from 'tap';
import {
  findSpecProblem,
  runSpecCheck,
  validateProcess,
  validateSpec,
  PROCESS_CHECK_NAMES,
  SPEC_CHECKS,
  type Process,
  type Spec,
  type ValidateContext,
} from '../../../spec';

const ctx: ValidateContext = { bundle: '/b' };
const base = (): Spec => ({ ociVersion: '1.2.0', process: { cwd: '/', args: ['sh'], user: { uid: 0, gid: 0 } }, root: { path: 'rootfs' } });
const withLinux = (linux: NonNullable<Spec['linux']>, extra: Partial<Spec> = {}): Spec => ({ ...base(), ...extra, linux });
const problem = (spec: Spec, c: ValidateContext = ctx): string | undefined => findSpecProblem(spec, c)?.message;
const ns = (...types: string[]) => types.map((type) => ({ type }));

t.test('check names are unique and include the process checks', async (t) => {
  t.equal(new Set(SPEC_CHECKS).size, SPEC_CHECKS.length);
  for (const name of PROCESS_CHECK_NAMES) t.ok(SPEC_CHECKS.includes(name), name);
});

t.test('ociVersion', async (t) => {
  for (const v of ['1.0.0', '1.0.2-dev', '1.2.0', '1.1.0-rc.3', '1', '1.2', '1.2.0+build.5']) t.equal(problem({ ...base(), ociVersion: v }), undefined, v);
  t.equal(problem({ ...base(), ociVersion: '' }), 'ociVersion: must not be empty');
  t.equal(problem({ ...base(), ociVersion: '0.9.0' }), 'ociVersion: unsupported version "0.9.0", want 1.x');
  t.equal(problem({ ...base(), ociVersion: '10.0.0' }), 'ociVersion: unsupported version "10.0.0", want 1.x');
});

t.test('root and process', async (t) => {
  t.equal(problem({ ...base(), root: {} }), 'root.path: required');
  t.equal(problem({ ...base(), root: { path: '' } }), 'root.path: required');
  t.equal(problem({ ...base(), process: { cwd: '/', args: [''], user: { uid: 0, gid: 0 } } }), 'process.args[0]: must not be empty');
  t.equal(problem({ ...base(), process: { cwd: '', args: ['sh'], user: { uid: 0, gid: 0 } } }), 'process.cwd: must be an absolute path, got ""');
});

t.test('validateProcess checks exec processes', async (t) => {
  const p = (extra: Partial<Process>): Process => ({ cwd: '/', args: ['sh'], user: { uid: 0, gid: 0 }, ...extra });
  t.doesNotThrow(() => validateProcess(p({ env: ['A=1', 'EMPTY=', 'B=x=y'] })));
  t.throws(() => validateProcess(p({ env: ['=x'] })), { code: 'InvalidArgument', message: 'process.env[0]: empty variable name in "=x"' });
  t.throws(() => validateProcess(p({ env: ['A=\0'] }), 'process.json'), { message: 'process.json.env[0]: contains a NUL byte' });
  t.throws(() => validateProcess(p({ args: [] })), { message: 'process.args: must not be empty' });
  t.throws(() => validateProcess(p({ capabilities: { ambient: ['CAP_chown'] } })), { message: 'process.capabilities.ambient[0]: unknown capability "CAP_chown"' });
  t.throws(() => validateProcess(p({ ioPriority: { class: 'IOPRIO_CLASS_RT', priority: -1 } })), { message: 'process.ioPriority.priority: must be 0 to 7, got -1' });
  t.doesNotThrow(() => validateProcess(p({ ioPriority: { class: 'IOPRIO_CLASS_IDLE' } })));
  t.doesNotThrow(() => validateProcess(p({ capabilities: { bounding: ['CAP_CHECKPOINT_RESTORE', 'CAP_CHOWN'] } })));
});

t.test('mounts', async (t) => {
  const m = (mounts: NonNullable<Spec['mounts']>, linux?: Spec['linux']): Spec => ({ ...base(), mounts, ...(linux ? { linux } : {}) });
  t.equal(problem(m([{ destination: 'relative/dir', type: 'tmpfs', source: 'tmpfs', options: ['whatever=1', 'x-unknown'] }])), undefined, 'relative destinations and unknown options are accepted');
  t.equal(problem(m([{ destination: '/a\0b' }])), 'mounts[0].destination: contains a NUL byte');
  t.equal(problem(m([{ destination: '/data', type: 'bind' }])), 'mounts[0].source: required for a bind mount');
  t.equal(problem(m([{ destination: '/data', type: 'bind', source: '' }])), 'mounts[0].source: required for a bind mount');
  const map = [{ containerID: 0, hostID: 1000, size: 1 }];
  t.equal(problem(m([{ destination: '/d', source: '/s', options: ['bind'], gidMappings: map }])), 'mounts[0]: uidMappings and gidMappings must be given together');
  t.equal(problem(m([{ destination: '/d', source: '/s', options: ['bind', 'idmap'] }])), 'mounts[0].options: idmap needs uidMappings and gidMappings or a user namespace');
  t.equal(problem(m([{ destination: '/d', source: '/s', options: ['rbind', 'ridmap'] }])), 'mounts[0].options: ridmap needs uidMappings and gidMappings or a user namespace');
  t.equal(problem(m([{ destination: '/d', source: '/s', options: ['bind', 'idmap'], uidMappings: map, gidMappings: map }])), undefined);
  t.equal(problem(m([{ destination: '/d', source: '/s', options: ['bind', 'idmap'] }], { namespaces: [{ type: 'user', path: '/proc/1/ns/user' }] })), undefined, 'the user namespace mapping can be used');
});

t.test('namespaces and user namespaces', async (t) => {
  t.equal(problem(withLinux({ namespaces: [{ type: 'network', path: '' }] })), undefined, 'an empty path means a new namespace');
  t.equal(problem(withLinux({ gidMappings: [{ containerID: 0, hostID: 0, size: 1 }] })), 'linux.gidMappings: needs a user namespace');
  t.equal(problem(withLinux({ namespaces: [{ type: 'user', path: '/proc/1/ns/user' }] })), undefined, 'a joined user namespace needs no mappings');
  t.equal(problem(withLinux({ namespaces: ns('user'), gidMappings: [{ containerID: 0, hostID: 0, size: 1 }] })), undefined, 'one mapping is enough (runc)');
});

t.test('time offsets', async (t) => {
  t.equal(problem(withLinux({ namespaces: ns('time'), timeOffsets: { monotonic: { secs: 1 }, boottime: { nanosecs: 2 } } })), undefined);
  t.equal(problem(withLinux({ namespaces: ns('time'), timeOffsets: { realtime: { secs: 1 } } })), 'linux.timeOffsets.realtime: unknown clock, want "monotonic" or "boottime"');
  t.equal(problem(withLinux({ timeOffsets: { monotonic: { secs: 1 } } })), 'linux.timeOffsets: needs a new time namespace');
});

t.test('hostname and domainname', async (t) => {
  t.equal(problem(withLinux({ namespaces: ns('uts') }, { hostname: 'h', domainname: 'd' })), undefined);
  t.equal(problem(withLinux({ namespaces: [{ type: 'uts', path: '/proc/1/ns/uts' }] }, { hostname: 'h' })), undefined, 'a joined uts namespace is private enough for runc');
  t.equal(problem({ ...base(), hostname: '' }), undefined, 'an empty hostname is unset');
  t.equal(problem({ ...base(), hostname: 'h' }), 'hostname: cannot set the hostname without a private uts namespace', 'no linux section at all');
});

t.test('sysctl namespace rules', async (t) => {
  const s = (sysctl: Record<string, string>, namespaces: string[], extra: Partial<Spec> = {}) => problem(withLinux({ namespaces: ns(...namespaces), sysctl }, extra));
  t.equal(s({ 'net.ipv4.ip_forward': '1' }, ['network']), undefined);
  t.equal(s({ 'net/ipv4/ip_forward': '1' }, ['network']), undefined, 'slash form');
  t.equal(s({ 'net/ipv4/ip_forward': '1' }, ['ipc']), 'linux.sysctl["net/ipv4/ip_forward"]: needs a network namespace');
  t.equal(s({ 'net.ipv4.ip_forward': '1' }, ['ipc']), 'linux.sysctl["net.ipv4.ip_forward"]: needs a network namespace');
  for (const key of ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced', 'fs.mqueue.msg_max']) {
    t.equal(s({ [key]: '1' }, ['ipc']), undefined, key);
    t.equal(s({ [key]: '1' }, ['network']), `linux.sysctl["${key}"]: needs an ipc namespace`, key);
  }
  t.equal(s({ 'kernel.hostname': 'h' }, ['uts']), undefined);
  t.equal(s({ 'kernel.domainname': 'd' }, ['uts']), undefined);
  t.equal(s({ 'kernel.hostname': 'h' }, ['ipc']), 'linux.sysctl["kernel.hostname"]: needs a uts namespace');
  t.equal(s({ 'kernel.hostname': 'h' }, ['uts'], { hostname: 'x' }), 'linux.sysctl["kernel.hostname"]: conflicts with the hostname field');
  t.equal(s({ 'kernel.domainname': 'd' }, ['uts'], { domainname: 'x' }), 'linux.sysctl["kernel.domainname"]: conflicts with the domainname field');
  t.equal(s({ 'vm.swappiness': '10' }, ['network', 'ipc', 'uts']), 'linux.sysctl["vm.swappiness"]: is not namespaced, so a container cannot set it');
  t.equal(s({ 'kernel.pid_max': '10' }, ['ipc']), 'linux.sysctl["kernel.pid_max"]: is not namespaced, so a container cannot set it');
});

t.test('propagation, devices, paths', async (t) => {
  for (const v of ['', 'shared', 'slave', 'private', 'unbindable', 'rshared', 'rslave', 'rprivate', 'runbindable']) {
    t.equal(problem(withLinux({ rootfsPropagation: v })), undefined, v || 'empty');
  }
  t.equal(problem(withLinux({ devices: [{ type: 'p', path: '/dev/fifo' }] })), undefined, 'a fifo needs no numbers');
  t.equal(problem(withLinux({ devices: [{ type: 'u', path: '/dev/x', minor: 1 }] })), 'linux.devices[0]: major and minor are required for a "u" device');
});

t.test('cgroupsPath', async (t) => {
  const systemd: ValidateContext = { bundle: '/b', systemdCgroup: true, hasSystemd: true };
  t.equal(problem(withLinux({ cgroupsPath: '/docker/abc' })), undefined);
  t.equal(problem(withLinux({ cgroupsPath: '/docker/abc' }), { bundle: '/b', hasSystemd: true }), undefined, 'systemd on the host alone changes nothing');
  t.equal(problem(withLinux({ cgroupsPath: 'system.slice:docker:abc' }), systemd), undefined);
  t.equal(problem(withLinux({}), systemd), undefined);
  t.equal(problem(withLinux({ cgroupsPath: '/docker/abc' }), systemd), 'linux.cgroupsPath: want "slice:prefix:name" with the systemd cgroup driver, got "/docker/abc"');
});

t.test('seccomp', async (t) => {
  const sc = (seccomp: NonNullable<NonNullable<Spec['linux']>['seccomp']>) => problem(withLinux({ seccomp }));
  t.equal(sc({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 }), undefined);
  t.equal(sc({ defaultAction: 'SCMP_ACT_TRACE', defaultErrnoRet: 1 }), undefined);
  t.equal(sc({ defaultAction: 'SCMP_ACT_KILL', defaultErrnoRet: 1 }), 'linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL');
  t.equal(sc({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a', ''], action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names[1]: must not be empty');
  t.equal(sc({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/s' }), 'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action');
  t.equal(sc({ defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'm' }), 'linux.seccomp.listenerMetadata: needs linux.seccomp.listenerPath');
  t.equal(sc({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/s', listenerMetadata: 'm', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }] }), undefined);
  t.equal(sc({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 5, value: 0, op: 'SCMP_CMP_EQ' }] }] }), undefined);
});

t.test('hooks', async (t) => {
  t.equal(problem({ ...base(), hooks: { poststart: [{ path: '/bin/true', timeout: 1 }] } }), undefined);
  t.equal(problem({ ...base(), hooks: { startContainer: [{ path: '/bin/true', timeout: -5 }] } }), 'hooks.startContainer[0].timeout: must be greater than zero, got -5');
});

t.test('process checks pass over a spec without a process; process-present reports it', async (t) => {
  const spec: Spec = { ociVersion: '1.2.0', root: { path: 'rootfs' } };
  for (const name of PROCESS_CHECK_NAMES) t.equal(runSpecCheck(name, spec, ctx), undefined, name);
  t.equal(runSpecCheck('process-present', spec, ctx), 'process: required');
  t.throws(() => validateProcess({ cwd: '/', user: { uid: 0, gid: 0 } }), { message: 'process.args: must not be empty' }, 'no args at all');
});

t.test('validateSpec throws the first problem only', async (t) => {
  const spec: Spec = { ...base(), ociVersion: '2.0.0', root: {} };
  t.same(findSpecProblem(spec, ctx), { check: 'oci-version', message: 'ociVersion: unsupported version "2.0.0", want 1.x' });
  t.throws(() => validateSpec(spec, ctx), { name: 'TsrunError', code: 'InvalidArgument', message: 'ociVersion: unsupported version "2.0.0", want 1.x' });
  t.doesNotThrow(() => validateSpec(base(), ctx));
});
