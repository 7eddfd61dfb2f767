import t from 'tap';
import { cgroupPathOf, dirInHierarchy, expandSlice, systemdCgroupPath } from '../../../../runtime/cgroups/path';

t.test('cgroupPathOf', async (t) => {
  t.equal(cgroupPathOf('/docker/abc', 'abc'), '/docker/abc', 'absolute as is');
  t.equal(cgroupPathOf('/libpod_parent//libpod-x/', 'x'), '/libpod_parent/libpod-x', 'cleaned');
  t.equal(cgroupPathOf('/a/./b/../c', 'x'), '/a/c', '".." inside the path is fine');
  t.equal(cgroupPathOf('pods/abc', 'abc'), 'pods/abc', 'relative stays relative');
  t.equal(cgroupPathOf(undefined, 'c1'), 'c1', 'absent: the container id, relative');
  t.equal(cgroupPathOf('', 'c1'), 'c1', 'empty: the container id');
  t.throws(() => cgroupPathOf('/../etc', 'x'), { message: 'linux.cgroupsPath "/../etc": escapes the cgroup hierarchy root', code: 'InvalidArgument' });
  t.throws(() => cgroupPathOf('/a/../../b', 'x'), { message: 'linux.cgroupsPath "/a/../../b": escapes the cgroup hierarchy root' });
  t.throws(() => cgroupPathOf('../sibling', 'x'), { message: 'linux.cgroupsPath "../sibling": escapes the cgroup hierarchy root' });
  t.throws(() => cgroupPathOf('/', 'x'), { message: 'linux.cgroupsPath "/": names the hierarchy root; a container needs a cgroup of its own' });
  t.throws(() => cgroupPathOf('a/..', 'x'), { message: 'linux.cgroupsPath "a/..": names the hierarchy root; a container needs a cgroup of its own' });
});

t.test('dirInHierarchy', async (t) => {
  const memory = { mountpoint: '/sys/fs/cgroup/memory', root: '/', own: '/user.slice/session-1.scope' };
  const cpu = { mountpoint: '/sys/fs/cgroup/cpu', root: '/', own: '/' };
  t.equal(dirInHierarchy(memory, '/docker/abc'), '/sys/fs/cgroup/memory/docker/abc', 'absolute ignores our own cgroup');
  t.equal(dirInHierarchy(memory, 'c1'), '/sys/fs/cgroup/memory/user.slice/session-1.scope/c1', 'relative: under our own cgroup');
  t.equal(dirInHierarchy(cpu, 'c1'), '/sys/fs/cgroup/cpu/c1', 'per hierarchy');
  const nested = { mountpoint: '/sys/fs/cgroup/memory', root: '/docker/outer', own: '/docker/outer' };
  t.equal(dirInHierarchy(nested, 'c1'), '/sys/fs/cgroup/memory/c1', 'a mount showing a sub-tree: its root is stripped');
  t.equal(dirInHierarchy(nested, '/docker/outer/x'), '/sys/fs/cgroup/memory/x');
  t.equal(dirInHierarchy(nested, '/elsewhere'), '/sys/fs/cgroup/memory/elsewhere', 'outside the shown sub-tree: taken from the mount');
});

t.test('systemd: slice:prefix:name', async (t) => {
  t.equal(expandSlice('system.slice'), '/system.slice');
  t.equal(expandSlice('a-b-c.slice'), '/a.slice/a-b.slice/a-b-c.slice');
  t.equal(expandSlice('-.slice'), '/');
  t.throws(() => expandSlice('a--b.slice'), { message: 'systemd slice "a--b.slice": dashes must separate non-empty names' });
  t.throws(() => expandSlice('system'), { message: 'systemd slice "system": must end in ".slice"' });
  t.equal(systemdCgroupPath('system.slice:docker:abc', 'abc', true), '/system.slice/docker-abc.scope');
  t.equal(systemdCgroupPath('machine-pods.slice:crio:abc', 'abc', true), '/machine.slice/machine-pods.slice/crio-abc.scope');
  t.equal(systemdCgroupPath(':libpod:abc', 'abc', true), '/system.slice/libpod-abc.scope', 'empty slice: system.slice');
  t.equal(systemdCgroupPath('user.slice::abc', 'abc', true), '/user.slice/abc.scope', 'empty prefix');
  t.equal(systemdCgroupPath('user.slice::pod.slice', 'abc', true), '/user.slice/pod.slice', 'a slice unit');
  t.equal(systemdCgroupPath(undefined, 'c1', true), '/system.slice/tsrun-c1.scope', 'absent: the default unit');
  t.throws(() => systemdCgroupPath('system.slice:docker:abc', 'abc', false), {
    message: 'systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host (no /run/systemd/system)',
    code: 'FailedPrecondition',
  });
  t.throws(() => systemdCgroupPath('/docker/abc', 'abc', true), { message: 'linux.cgroupsPath "/docker/abc": want "slice:prefix:name" with the systemd cgroup driver' });
  t.throws(() => systemdCgroupPath('system.slice:a/b:c', 'c', true), { message: 'linux.cgroupsPath "system.slice:a/b:c": "a/b" must not contain "/"' });
});
