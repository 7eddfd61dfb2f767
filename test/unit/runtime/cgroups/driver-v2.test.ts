import * as fs from 'node:fs';
import t from 'tap';
import type { DeviceRule } from '../../../../runtime/cgroups/devices';
import { cgroupDriver, type CgroupDriverOptions, type Signal } from '../../../../runtime/cgroups/driver';
import { errnoError, fakeCgroupfs, type FakeCgroupfs } from './fixtures/fake-cgroupfs';

function setup(tt: { teardown(fn: () => void): void }, extra: Partial<CgroupDriverOptions> = {}) {
  const fake = fakeCgroupfs(tt, 'unified');
  const signals: string[] = [];
  const sleeps: number[] = [];
  const d = cgroupDriver('unified', {
    root: fake.root,
    path: '/pod/c1',
    fs: fake.fs,
    sleep: (ms) => sleeps.push(ms),
    signal: (pid: number, sig: Signal) => {
      signals.push(`${pid}:${String(sig)}`);
    },
    timeoutMs: 50,
    ...extra,
  });
  return { fake, d, signals, sleeps };
}

/** Make cgroup.freeze behave: cgroup.events follows it at once. */
function kernelFreezer(fake: FakeCgroupfs): void {
  fake.hook((file, value) => {
    if (!file.endsWith('cgroup.freeze')) return false;
    fs.writeFileSync(file, value);
    fs.writeFileSync(file.replace(/cgroup\.freeze$/, 'cgroup.events'), `populated 1\nfrozen ${value}\n`);
    return true;
  });
}

t.test('create enables controllers down to the parent, not in the leaf', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  t.ok(fs.existsSync(fake.at('pod/c1/cgroup.procs')));
  t.equal(fake.read('cgroup.subtree_control'), '+cpuset +cpu +io +memory +pids', 'root');
  t.equal(fake.read('pod/cgroup.subtree_control'), '+cpuset +cpu +io +memory +pids', 'intermediate');
  t.equal(fake.read('pod/c1/cgroup.subtree_control'), '', 'leaf: processes live here');
  fs.writeFileSync(fake.at('cgroup.subtree_control'), 'cpuset cpu io memory pids');
  fs.writeFileSync(fake.at('pod/cgroup.subtree_control'), 'cpuset cpu io memory pids');
  fake.writes.length = 0;
  d.create();
  t.same(fake.writes, [], 'nothing to enable the second time');
  t.same(d.paths(), { [fake.root]: fake.at('pod/c1') });
});

t.test('a parent that refuses the combined write gets one controller at a time', async (t) => {
  const { fake, d } = setup(t);
  fake.hook((file, value) => {
    if (file.endsWith('cgroup.subtree_control') && (value.includes(' ') || value === '+io')) throw errnoError('EBUSY');
    return false;
  });
  d.create();
  t.same(
    fake.writes.filter((w) => w.startsWith('cgroup.subtree_control')),
    ['cgroup.subtree_control=+cpuset +cpu +io +memory +pids', 'cgroup.subtree_control=+cpuset', 'cgroup.subtree_control=+cpu', 'cgroup.subtree_control=+io', 'cgroup.subtree_control=+memory', 'cgroup.subtree_control=+pids'],
  );
});

t.test('apply: v2 files and values', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  d.addProcess(99);
  d.apply({
    memory: { limit: 100663296, swap: 201326592 },
    cpu: { shares: 1024, quota: 50000, period: 100000 },
    pids: { limit: 0 },
    blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] },
    unified: { 'memory.low': '1234' },
  });
  const at = (f: string): string => fake.read('pod/c1', f);
  t.equal(at('cgroup.procs'), '99\n');
  t.equal(at('memory.max'), '100663296');
  t.equal(at('memory.swap.max'), '100663296', 'swap alone, not memory+swap');
  t.equal(at('cpu.weight'), '39');
  t.equal(at('cpu.max'), '50000 100000');
  t.equal(at('pids.max'), 'max');
  t.equal(at('io.weight'), '4950');
  t.equal(at('io.max'), '8:0 rbps=1048576');
  t.equal(at('memory.low'), '1234', 'unified keys last');
});

t.test('apply: a period alone keeps the quota', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  fs.writeFileSync(fake.at('pod/c1/cpu.max'), '20000 100000\n');
  d.apply({ cpu: { period: 50000 } });
  t.equal(fake.read('pod/c1/cpu.max'), '20000 50000');
});

t.test('apply: a controller that is not enabled is named', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  t.throws(() => d.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }), {
    message: `cgroup controller "hugetlb" is not enabled for ${fake.at('pod/c1')} (cgroup.controllers: cpuset cpu io memory pids)`,
    code: 'FailedPrecondition',
  });
  fs.writeFileSync(fake.at('pod/c1/cgroup.controllers'), '');
  fs.rmSync(fake.at('pod/c1/pids.max'));
  t.throws(() => d.apply({ pids: { limit: 5 } }), { message: `cgroup controller "pids" is not enabled for ${fake.at('pod/c1')} (cgroup.controllers: none)` });
  fs.writeFileSync(fake.at('pod/c1/cgroup.controllers'), 'pids');
  t.throws(() => d.apply({ pids: { limit: 5 } }), { message: `write ${fake.at('pod/c1/pids.max')} ("5"): no such file or directory` }, 'enabled but missing: the write error');
  fs.rmSync(fake.at('pod/c1/memory.swap.max'));
  d.apply({ memory: { limit: -1 } });
  t.equal(fake.read('pod/c1/memory.max'), 'max', 'the implied swap "max" is optional');
});

t.test('device rules need the eBPF loader on v2', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  t.throws(() => d.apply({ devices: [{ allow: false, access: 'rwm' }] }), {
    message: `apply linux.resources.devices to ${fake.at('pod/c1')}: cgroup v2 device rules need the eBPF device-program loader, and none was given`,
  });
  const loaded: [string, readonly DeviceRule[]][] = [];
  const withLoader = setup(t, { devices: (dir, rules) => loaded.push([dir, rules]) });
  withLoader.d.create();
  withLoader.d.apply({ devices: [{ allow: false, access: 'rwm' }] });
  t.equal(loaded.length, 1);
  t.equal(loaded[0]?.[0], withLoader.fake.at('pod/c1'));
  t.equal(loaded[0]?.[1].length, 12, 'deny all plus the 11 defaults');
  withLoader.d.apply({ pids: { limit: 1 } });
  t.equal(loaded.length, 1, 'no devices key: no program');
});

t.test('freeze waits for cgroup.events', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  kernelFreezer(fake);
  d.freeze('frozen');
  t.equal(d.isFrozen(), true);
  t.equal(fake.read('pod/c1/cgroup.freeze'), '1');
  d.freeze('thawed');
  t.equal(d.isFrozen(), false);
});

t.test('freeze that never reports frozen: thawed, and an error', async (t) => {
  const { fake, d, sleeps } = setup(t);
  d.create();
  t.throws(() => d.freeze('frozen'), {
    message: `freeze ${fake.at('pod/c1/cgroup.freeze')}: cgroup.events still says frozen 0 after 50 ms`,
    code: 'Unavailable',
  });
  t.equal(sleeps.length, 5);
  t.equal(fake.read('pod/c1/cgroup.freeze'), '0');
  fs.rmSync(fake.at('pod/c1/cgroup.freeze'));
  t.throws(() => d.freeze('frozen'), { message: `write ${fake.at('pod/c1/cgroup.freeze')} ("1"): no such file or directory` });
});

t.test('kill: cgroup.kill for SIGKILL, else the frozen loop', async (t) => {
  const { fake, d, signals } = setup(t);
  d.create();
  kernelFreezer(fake);
  d.addProcess(3);
  d.addProcess(4);
  d.kill('SIGKILL');
  t.equal(fake.read('pod/c1/cgroup.kill'), '1');
  t.same(signals, []);
  d.kill('SIGHUP');
  t.same(signals, ['3:SIGHUP', '4:SIGHUP']);
  t.same(
    fake.writes.filter((w) => w.includes('cgroup.freeze')),
    ['pod/c1/cgroup.freeze=1', 'pod/c1/cgroup.freeze=0'],
  );
  fs.rmSync(fake.at('pod/c1/cgroup.kill'));
  signals.length = 0;
  d.kill(9);
  t.same(signals, ['3:9', '4:9'], 'no cgroup.kill (before 5.14): the loop');
});

t.test('stats, pids and destroy', async (t) => {
  const { fake, d } = setup(t);
  d.create();
  d.addProcess(8);
  fs.writeFileSync(fake.at('pod/c1/memory.current'), '4096\n');
  fs.writeFileSync(fake.at('pod/c1/pids.current'), '1\n');
  const s = d.stats();
  t.equal(s.memory?.usage?.usage, 4096n);
  t.equal(s.pids?.current, 1n);
  t.equal(s.pids?.limit, undefined, 'pids.max "max" is left out');
  t.same(d.pids(), [8]);
  t.throws(() => d.destroy(), { message: `remove cgroup ${fake.at('pod/c1')}: still busy after 50 ms (pids left: 8)` });
  fs.writeFileSync(fake.at('pod/c1/cgroup.procs'), '');
  d.destroy();
  t.notOk(fs.existsSync(fake.at('pod/c1')));
  t.ok(fs.existsSync(fake.at('pod')), 'the parent stays');
});

t.test('no cgroup2 mount', async (t) => {
  t.throws(() => cgroupDriver('unified', { root: '/x', path: '/c', hierarchies: { v1: {}, v2: undefined } }), {
    message: 'cgroup v2 is not mounted on this host',
  });
});
