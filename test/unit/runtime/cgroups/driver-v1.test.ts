import * as fs from 'node:fs';
import t from 'tap';
import { cgroupDriver, type CgroupDriver, type Signal } from '../../../../runtime/cgroups/driver';
import type { CgroupDriverMode } from '../../../../runtime/cgroups/detect';
import { errnoError, fakeCgroupfs, type FakeCgroupfs } from './fixtures/fake-cgroupfs';

interface Setup {
  fake: FakeCgroupfs;
  d: CgroupDriver;
  signals: string[];
  sleeps: number[];
}

function setup(tt: { teardown(fn: () => void): void }, mode: CgroupDriverMode = 'hybrid', path = '/tsrun/c1', controllers?: string[]): Setup {
  const fake = fakeCgroupfs(tt, mode, controllers);
  const signals: string[] = [];
  const sleeps: number[] = [];
  const d = cgroupDriver(mode, {
    root: fake.root,
    path,
    fs: fake.fs,
    sleep: (ms) => sleeps.push(ms),
    signal: (pid: number, sig: Signal) => {
      signals.push(`${pid}:${String(sig)}`);
    },
    timeoutMs: 100,
  });
  return { fake, d, signals, sleeps };
}

const V1_DIRS = ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd'];

t.test('create and addProcess: every hierarchy, plus the unified companion on hybrid', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  for (const c of [...V1_DIRS, 'unified']) t.ok(fs.existsSync(fake.at(c, 'tsrun/c1', 'cgroup.procs')), `${c} cgroup made`);
  t.equal(fake.read('cpuset/tsrun', 'cpuset.cpus'), '0-1', 'cpuset copied into the intermediate level');
  t.equal(fake.read('cpuset/tsrun/c1', 'cpuset.mems'), '0', 'and into the leaf');
  d.create();
  t.pass('create again reuses the cgroup');
  d.addProcess(4242);
  for (const c of [...V1_DIRS, 'unified']) t.equal(fake.read(c, 'tsrun/c1', 'cgroup.procs'), '4242\n', `${c} joined`);
  t.same(d.paths(), Object.fromEntries([...V1_DIRS, 'unified'].map((c) => [fake.at(c), fake.at(c, 'tsrun/c1')])));
});

t.test('legacy: no companion', async (t) => {
  const { fake, d } = setup(t, 'legacy');
  d.create();
  t.notOk(fs.existsSync(fake.at('unified')), 'no unified mount in the tree');
  t.notOk(Object.keys(d.paths()).some((p) => p.endsWith('unified')));
});

t.test('hybrid: a companion that cannot be made is skipped', async (t) => {
  const { fake, d } = setup(t);
  const mkdir = fake.fs.mkdir;
  fake.fs.mkdir = (dir) => {
    if (dir.startsWith(fake.at('unified'))) throw errnoError('EROFS', 'mkdir');
    mkdir(dir);
  };
  d.create();
  d.addProcess(7);
  t.notOk(fs.existsSync(fake.at('unified', 'tsrun')), 'no companion');
  t.equal(fake.read('memory/tsrun/c1/cgroup.procs'), '7\n');
});

t.test('apply writes the files, in order', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  d.apply({
    devices: [{ allow: false, access: 'rwm' }],
    memory: { limit: 100663296, swap: 201326592, reservation: 0 },
    cpu: { shares: 512, quota: 50000, period: 100000 },
    pids: { limit: 100 },
    blockIO: { weight: 500 },
  });
  t.equal(fake.read('memory/tsrun/c1/memory.limit_in_bytes'), '100663296');
  t.equal(fake.read('memory/tsrun/c1/memory.memsw.limit_in_bytes'), '201326592');
  t.equal(fake.read('memory/tsrun/c1/memory.soft_limit_in_bytes'), '9223372036854771712', 'reservation 0 left alone');
  t.equal(fake.read('cpu/tsrun/c1/cpu.shares'), '512');
  t.equal(fake.read('cpu/tsrun/c1/cpu.cfs_quota_us'), '50000');
  t.equal(fake.read('pids/tsrun/c1/pids.max'), '100');
  t.equal(fake.read('blkio/tsrun/c1/blkio.bfq.weight'), '500', 'no blkio.weight: the BFQ file');
  const applied = fake.writes.filter((w) => !w.includes('cgroup.procs') && !w.includes('cpuset'));
  t.same(applied.slice(0, 2), ['devices/tsrun/c1/devices.deny=a', 'devices/tsrun/c1/devices.allow=c *:* m']);
  t.same(applied.slice(12), [
    // memsw was unlimited, so the limit goes first.
    'memory/tsrun/c1/memory.limit_in_bytes=100663296',
    'memory/tsrun/c1/memory.memsw.limit_in_bytes=201326592',
    'cpu/tsrun/c1/cpu.shares=512',
    'cpu/tsrun/c1/cpu.cfs_period_us=100000',
    'cpu/tsrun/c1/cpu.cfs_quota_us=50000',
    'pids/tsrun/c1/pids.max=100',
    'blkio/tsrun/c1/blkio.weight=500', // ENOENT
    'blkio/tsrun/c1/blkio.bfq.weight=500',
  ]);
});

t.test('memory and memsw: raising writes memsw first, lowering writes the limit first', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  fs.writeFileSync(fake.at('memory/tsrun/c1/memory.limit_in_bytes'), '1000');
  fs.writeFileSync(fake.at('memory/tsrun/c1/memory.memsw.limit_in_bytes'), '2000');
  fake.writes.length = 0;
  d.apply({ memory: { limit: 3000, swap: 4000 } });
  t.same(fake.writes, ['memory/tsrun/c1/memory.memsw.limit_in_bytes=4000', 'memory/tsrun/c1/memory.limit_in_bytes=3000']);
  fake.writes.length = 0;
  d.apply({ memory: { limit: 500, swap: 600 } });
  t.same(fake.writes, ['memory/tsrun/c1/memory.limit_in_bytes=500', 'memory/tsrun/c1/memory.memsw.limit_in_bytes=600']);
  fake.writes.length = 0;
  d.apply({ memory: { limit: -1 } });
  t.same(fake.writes, ['memory/tsrun/c1/memory.memsw.limit_in_bytes=-1', 'memory/tsrun/c1/memory.limit_in_bytes=-1'], 'unlimited lifts memsw first');
  fs.rmSync(fake.at('memory/tsrun/c1/memory.memsw.limit_in_bytes'));
  fake.writes.length = 0;
  d.apply({ memory: { limit: -1 } });
  t.same(fake.writes, ['memory/tsrun/c1/memory.limit_in_bytes=-1'], 'no swap accounting: the limit alone');
  t.throws(() => d.apply({ memory: { limit: 10, swap: 20 } }), {
    message: `write ${fake.at('memory/tsrun/c1/memory.memsw.limit_in_bytes')} ("20"): no such file or directory`,
  });
});

t.test('memory.checkBeforeUpdate', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  fs.writeFileSync(fake.at('memory/tsrun/c1/memory.usage_in_bytes'), '10000\n');
  t.throws(() => d.apply({ memory: { limit: 5000, checkBeforeUpdate: true } }), {
    message: `set memory limit 5000: below the current usage 10000 in ${fake.at('memory/tsrun/c1/memory.usage_in_bytes')} (memory.checkBeforeUpdate)`,
    code: 'FailedPrecondition',
  });
  t.equal(fake.read('memory/tsrun/c1/memory.limit_in_bytes'), '9223372036854771712', 'nothing written');
  d.apply({ memory: { limit: 20000, checkBeforeUpdate: true } });
  t.equal(fake.read('memory/tsrun/c1/memory.limit_in_bytes'), '20000');
});

t.test('EINVAL on the cfs period: retried after the quota', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  let refused = 0;
  fake.hook((file) => {
    if (file.endsWith('cpu.cfs_period_us') && refused++ === 0) throw errnoError('EINVAL');
    return false;
  });
  d.apply({ cpu: { quota: 1000, period: 10000 } });
  t.same(
    fake.writes.filter((w) => w.startsWith('cpu/')),
    ['cpu/tsrun/c1/cpu.cfs_period_us=10000', 'cpu/tsrun/c1/cpu.cfs_quota_us=1000', 'cpu/tsrun/c1/cpu.cfs_period_us=10000'],
  );
  t.equal(fake.read('cpu/tsrun/c1/cpu.cfs_period_us'), '10000');
  fake.hook((file) => {
    if (file.endsWith('cpu.cfs_period_us')) throw errnoError('EINVAL');
    return false;
  });
  t.throws(() => d.apply({ cpu: { period: 5 } }), { message: `write ${fake.at('cpu/tsrun/c1/cpu.cfs_period_us')} ("5"): invalid argument`, code: 'InvalidArgument' });
});

t.test('errors name the controller, the file and the value', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  t.throws(() => d.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }), {
    message: 'cgroup controller "hugetlb" is not mounted on this host',
    code: 'FailedPrecondition',
  });
  t.throws(() => d.apply({ network: { classID: 1 } }), { message: 'cgroup controller "net_cls" is not mounted on this host' });
  fs.rmSync(fake.at('pids/tsrun/c1/pids.max'));
  t.throws(() => d.apply({ pids: { limit: 10 } }), { message: `write ${fake.at('pids/tsrun/c1/pids.max')} ("10"): no such file or directory`, code: 'NotFound' });
  fs.rmSync(fake.at('blkio/tsrun/c1/blkio.bfq.weight'));
  t.throws(() => d.apply({ blockIO: { weight: 500 } }), {
    message: `write ${fake.at('blkio/tsrun/c1/blkio.weight')} ("500"): no such file or directory (and blkio.bfq.weight does not exist either)`,
  });
  fake.hook((file) => {
    if (file.endsWith('cpu.shares')) throw errnoError('EACCES');
    return false;
  });
  t.throws(() => d.apply({ cpu: { shares: 1 } }), { message: `write ${fake.at('cpu/tsrun/c1/cpu.shares')} ("1"): permission denied`, code: 'PermissionDenied' });
  t.throws(() => d.apply({ unified: { 'memory.high': '1' } }), { message: 'linux.resources.unified: not supported on cgroup v1: keys memory.high are cgroup v2 files' });
});

t.test('freeze and thaw through freezer.state', async (t) => {
  const { fake, d, sleeps } = setup(t);
  d.create();
  // The kernel answers FREEZING twice before FROZEN.
  let reads = 0;
  const read = fake.fs.read;
  fake.fs.read = (file) => {
    if (file.endsWith('freezer.state') && fake.read('freezer/tsrun/c1/freezer.state') === 'FROZEN' && reads++ < 2) return 'FREEZING\n';
    return read(file);
  };
  t.equal(d.isFrozen(), false);
  d.freeze('frozen');
  t.equal(d.isFrozen(), true);
  t.same(sleeps, [10, 10], 'polled until FROZEN');
  t.same(fake.writes.filter((w) => w.includes('freezer.state')), Array(3).fill('freezer/tsrun/c1/freezer.state=FROZEN'), 'FROZEN re-written while FREEZING');
  d.freeze('thawed');
  t.equal(d.isFrozen(), false);
  t.equal(fake.read('freezer/tsrun/c1/freezer.state'), 'THAWED');
});

t.test('freeze that never settles: thawed again, and an error', async (t) => {
  const { fake, d, sleeps } = setup(t);
  d.create();
  const read = fake.fs.read;
  fake.fs.read = (file) => (file.endsWith('freezer.state') ? 'FREEZING\n' : read(file));
  t.throws(() => d.freeze('frozen'), {
    message: `freeze ${fake.at('freezer/tsrun/c1/freezer.state')}: still FREEZING after 100 ms`,
    code: 'Unavailable',
  });
  t.equal(sleeps.length, 10);
  t.equal(fake.writes.at(-1), 'freezer/tsrun/c1/freezer.state=THAWED', 'left running');
});

t.test('pids: the cgroup and its children', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  d.addProcess(30);
  d.addProcess(10);
  fake.fs.mkdir(fake.at('pids/tsrun/c1/sub'));
  fs.writeFileSync(fake.at('pids/tsrun/c1/sub/cgroup.procs'), '20\n10\n');
  t.same(d.pids(), [10, 20, 30]);
});

t.test('kill: cgroup.kill for SIGKILL on hybrid, else freeze, signal, thaw', async (t) => {
  const { fake, d, signals } = setup(t);
  d.create();
  d.addProcess(11);
  d.addProcess(12);
  d.kill('SIGKILL');
  t.equal(fake.read('unified/tsrun/c1/cgroup.kill'), '1', 'cgroup.kill written');
  t.same(signals, ['11:SIGKILL', '12:SIGKILL'], 'v1-only members get it too');
  t.notOk(fake.writes.some((w) => w.includes('freezer.state')), 'no freeze needed');
  signals.length = 0;
  fake.writes.length = 0;
  d.kill(15);
  t.same(signals, ['11:15', '12:15']);
  t.same(
    fake.writes.filter((w) => w.includes('freezer.state')),
    ['freezer/tsrun/c1/freezer.state=FROZEN', 'freezer/tsrun/c1/freezer.state=THAWED'],
    'frozen around the loop',
  );
});

t.test('kill on a paused container', async (t) => {
  const { fake, d, signals } = setup(t, 'legacy');
  d.create();
  d.addProcess(5);
  d.freeze('frozen');
  d.kill('SIGTERM');
  t.same(signals, ['5:SIGTERM']);
  t.equal(d.isFrozen(), true, 'SIGTERM leaves it paused');
  d.kill(9);
  t.equal(d.isFrozen(), false, 'SIGKILL thaws, or the frozen processes could not die');
  t.equal(fake.read('freezer/tsrun/c1/freezer.state'), 'THAWED');
});

t.test('kill: a process that is gone is fine, other failures are not', async (t) => {
  const fake = fakeCgroupfs(t, 'legacy');
  const d = cgroupDriver('legacy', {
    root: fake.root,
    path: '/c',
    fs: fake.fs,
    sleep: () => undefined,
    signal: (pid) => {
      throw errnoError(pid === 1 ? 'ESRCH' : 'EPERM', 'kill');
    },
  });
  d.create();
  d.addProcess(1);
  d.kill(15);
  t.pass('ESRCH ignored');
  d.addProcess(2);
  t.throws(() => d.kill(15), { message: 'signal process 2 (15): operation not permitted', code: 'PermissionDenied' });
  t.equal(fake.read('freezer/c/freezer.state'), 'THAWED', 'thawed even so');
});

t.test('destroy: every hierarchy, children first, idempotent', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  fake.fs.mkdir(fake.at('memory/tsrun/c1/child/grandchild'));
  d.destroy();
  for (const c of [...V1_DIRS, 'unified']) {
    t.notOk(fs.existsSync(fake.at(c, 'tsrun/c1')), `${c} removed`);
    t.ok(fs.existsSync(fake.at(c, 'tsrun')), `${c} parent kept`);
  }
  d.destroy();
  t.pass('a second destroy is fine');
});

t.test('destroy waits for the cgroup to drain', async (t) => {
  const { fake, d, sleeps } = setup(t, 'legacy');
  d.create();
  d.addProcess(77);
  let polls = 0;
  const rmdir = fake.fs.rmdir;
  fake.fs.rmdir = (dir) => {
    // The process exits after three polls.
    if (dir.endsWith('pids/tsrun/c1') && ++polls === 3) fs.writeFileSync(fake.at('pids/tsrun/c1/cgroup.procs'), '');
    rmdir(dir);
  };
  for (const c of V1_DIRS) if (c !== 'pids') fs.writeFileSync(fake.at(c, 'tsrun/c1/cgroup.procs'), '');
  d.destroy();
  t.equal(sleeps.length, 2, 'retried at 10 ms');
  t.notOk(fs.existsSync(fake.at('pids/tsrun/c1')));
});

t.test('destroy fails naming the pids left, after trying every hierarchy', async (t) => {
  const { fake, d, sleeps } = setup(t, 'legacy');
  d.create();
  d.addProcess(77);
  d.addProcess(78);
  fs.writeFileSync(fake.at('memory/tsrun/c1/cgroup.procs'), '');
  const err = t.throws(() => d.destroy(), {
    message: `remove cgroup ${fake.at('blkio/tsrun/c1')}: still busy after 100 ms (pids left: 77, 78)`,
    code: 'Unavailable',
  });
  t.equal(sleeps.length, 10 * 8, 'each busy hierarchy waited its 100 ms');
  t.notOk(fs.existsSync(fake.at('memory/tsrun/c1')), 'the empty one was removed');
  t.equal((err as { cleanup?: unknown[] } | undefined)?.cleanup?.length, 7, 'the other failures are attached');
});

t.test('relative path: under our own cgroup in each hierarchy', async (t) => {
  const fake = fakeCgroupfs(t, 'legacy', ['memory', 'cpu']);
  const d = cgroupDriver('legacy', {
    root: fake.root,
    path: 'c1',
    fs: fake.fs,
    hierarchies: {
      v1: {
        memory: { mountpoint: fake.at('memory'), root: '/', own: '/user.slice' },
        cpu: { mountpoint: fake.at('cpu'), root: '/', own: '/' },
      },
      v2: undefined,
    },
  });
  d.create();
  t.ok(fs.existsSync(fake.at('memory/user.slice/c1')));
  t.ok(fs.existsSync(fake.at('cpu/c1')));
});
