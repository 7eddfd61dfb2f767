/*
 * OOM-kill counters (runtime/cgroups/oom.ts): where a process's memory cgroups are, from
 * /proc/<pid>/cgroup and mountinfo, and the count read from memory.oom_control or memory.events.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { memoryCgroupDirs, oomKillCount } from '../../../../runtime/cgroups/oom';

const HYBRID_MOUNTS = [
  '30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate',
  '31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:6 - cgroup cgroup rw,xattr,name=systemd',
  '35 25 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory',
  '36 25 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct',
].join('\n');

t.test('memoryCgroupDirs: the v1 memory hierarchy, then the v2 cgroup', async (t) => {
  const procCgroup = ['12:memory:/k8s/c1', '4:cpu,cpuacct:/k8s/c1', '1:name=systemd:/k8s/c1', '0::/k8s/c1', ''].join('\n');
  t.same(memoryCgroupDirs(procCgroup, HYBRID_MOUNTS), ['/sys/fs/cgroup/memory/k8s/c1', '/sys/fs/cgroup/unified/k8s/c1']);
  const unified = '29 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw';
  t.same(memoryCgroupDirs('0::/system.slice/x.scope\n', unified), ['/sys/fs/cgroup/system.slice/x.scope'], 'v2 only');
  t.same(memoryCgroupDirs('4:cpu,cpuacct:/a\n', '36 25 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct'), [], 'no memory controller anywhere');
  const subtree = '35 25 0:31 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';
  t.same(memoryCgroupDirs('12:memory:/outer/c1\n', subtree), ['/sys/fs/cgroup/memory/c1'], 'a mounted subtree strips its root');
  t.same(memoryCgroupDirs('12:memory:/elsewhere/c1\n', subtree), [], 'a path outside the mounted subtree is not reachable');
});

t.test('oomKillCount: memory.oom_control (v1) or memory.events (v2), first dir that has one', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oom-count-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const v1 = path.join(root, 'v1');
  const v2 = path.join(root, 'v2');
  const none = path.join(root, 'none');
  for (const d of [v1, v2, none]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(v1, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n');
  fs.writeFileSync(path.join(v2, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n');
  t.equal(oomKillCount([v1, v2]), 3);
  t.equal(oomKillCount([none, v2]), 2, 'skips a dir without either file');
  t.equal(oomKillCount([none, path.join(root, 'gone')]), undefined, 'none counts');
  fs.writeFileSync(path.join(none, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\n');
  t.equal(oomKillCount([none]), undefined, 'a kernel before 4.13 has no oom_kill line');
});
