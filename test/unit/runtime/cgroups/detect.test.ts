import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { cgroupLayoutOf, detectCgroupMode, hierarchiesUnder } from '../../../../runtime/cgroups/detect';

// This host's mount table (docs/engines.md: Debian 12, kernel 6.18, hybrid).
const hybridMounts = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '50 23 0:40 / /other/cgroup rw - cgroup cgroup rw,freezer',
].join('\n');
const hybridSelf = '9:name=systemd:/\n8:pids:/\n4:memory:/process_api/1a67\n2:cpuacct:/\n1:cpu:/\n0::/\n';

t.test('hybrid host', async (t) => {
  const l = cgroupLayoutOf(hybridMounts, hybridSelf);
  t.equal(l.mode, 'hybrid');
  t.same(Object.keys(l.hierarchies.v1).sort(), ['cpu', 'cpuacct', 'memory', 'name=systemd', 'pids'], 'only hierarchies under the root');
  t.same(l.hierarchies.v1['memory'], { mountpoint: '/sys/fs/cgroup/memory', root: '/', own: '/process_api/1a67' });
  t.same(l.hierarchies.v2, { mountpoint: '/sys/fs/cgroup/unified', root: '/', own: '/' });
});

t.test('co-mounted controllers share one hierarchy', async (t) => {
  const l = cgroupLayoutOf(
    '1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n2 0 0:2 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio',
    '3:net_cls,net_prio:/n\n2:cpu,cpuacct:/c\n',
  );
  t.equal(l.mode, 'legacy');
  t.equal(l.hierarchies.v1['cpu'], l.hierarchies.v1['cpuacct']);
  t.equal(l.hierarchies.v1['cpu']?.own, '/c');
  t.equal(l.hierarchies.v1['net_prio']?.own, '/n');
  t.equal(l.hierarchies.v2, undefined);
});

t.test('unified host', async (t) => {
  const l = cgroupLayoutOf('30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate', '0::/user.slice/user-0.slice/session-1.scope\n');
  t.equal(l.mode, 'unified');
  t.same(l.hierarchies.v1, {});
  t.same(l.hierarchies.v2, { mountpoint: '/sys/fs/cgroup', root: '/', own: '/user.slice/user-0.slice/session-1.scope' });
});

t.test('nothing mounted', async (t) => {
  t.throws(() => cgroupLayoutOf('', ''), { message: 'detect cgroup mode: no cgroup filesystem is mounted under /sys/fs/cgroup', code: 'Unavailable' });
  t.throws(() => detectCgroupMode('/nonexistent', hybridMounts, hybridSelf), {
    message: 'detect cgroup mode: no cgroup filesystem is mounted under /nonexistent',
  });
});

t.test('detectCgroupMode reads this host', async (t) => {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  if (!text.includes(' - cgroup')) {
    t.plan(0, 'no cgroup mounts on this host');
    return;
  }
  const l = detectCgroupMode();
  t.ok(['unified', 'legacy', 'hybrid'].includes(l.mode), l.mode);
});

t.test('hierarchiesUnder: the conventional layout of a directory', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-cgdetect-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const d of ['cpu,cpuacct', 'memory', 'systemd', 'unified']) fs.mkdirSync(path.join(root, d));
  const h = hierarchiesUnder(root, 'hybrid');
  t.same(Object.keys(h.v1).sort(), ['cpu', 'cpuacct', 'memory', 'name=systemd']);
  t.equal(h.v1['cpu']?.mountpoint, path.join(root, 'cpu,cpuacct'));
  t.equal(h.v2?.mountpoint, path.join(root, 'unified'));
  t.equal(hierarchiesUnder(root, 'legacy').v2, undefined);
  t.same(hierarchiesUnder(root, 'unified'), { v1: {}, v2: { mountpoint: root, root: '/', own: '/' } });
  t.throws(() => hierarchiesUnder(path.join(root, 'nope'), 'legacy'), { message: `list cgroup hierarchies in ${path.join(root, 'nope')}: no such file or directory` });
});
