import t from 'tap';
import { cgroupModeOf, parseCgroupMounts, parseProcCgroup } from '../../../../runtime/host/probe';

const hybrid = [
  '30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '31 30 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '32 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');

t.test('cgroup hierarchies and mode', async (t) => {
  const h = parseCgroupMounts(hybrid);
  t.same(h.map((x) => [x.mountpoint, x.version, x.controllers]), [
    ['/sys/fs/cgroup/memory', 1, ['memory']],
    ['/sys/fs/cgroup/cpu', 1, ['cpu']],
    ['/sys/fs/cgroup/systemd', 1, ['name=systemd']],
    ['/sys/fs/cgroup/unified', 2, []],
  ]);
  t.equal(cgroupModeOf(h), 'hybrid');
  t.equal(cgroupModeOf(h.filter((x) => x.version === 2)), 'unified');
  t.equal(cgroupModeOf(h.filter((x) => x.version === 1)), 'legacy');
  t.equal(cgroupModeOf([]), 'none');
});

t.test('/proc/self/cgroup', async (t) => {
  t.same(parseProcCgroup('12:memory:/a/b\n1:name=systemd:/\n0::/user.slice\n'), { memory: '/a/b', 'name=systemd': '/', '0': '/user.slice' });
});
