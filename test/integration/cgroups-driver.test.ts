/**
 * The cgroup driver against the host's real cgroupfs (root, v1 or hybrid): a cgroup
 * /sys/fs/cgroup/<controller>/tsrun-test-<pid>-<n> in every hierarchy (and in the unified
 * mount on hybrid hosts), limits applied and read back, a process moved in, frozen and
 * thawed, stats, device rules enforced, kill through the cgroup, and removal. The teardown
 * kills whatever is left and removes every directory even when an assertion failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { detectCgroupMode, type CgroupLayout } from '../../runtime/cgroups/detect';
import { cgroupDriver, type CgroupDriver } from '../../runtime/cgroups/driver';
import { deviceProgramUnsupported } from '../../runtime/native/bpf';
import { deviceProgramLoader } from '../../runtime/container/cgroup';
import { requires } from '../helpers/requires';

let seq = 0;

interface Rig {
  readonly layout: CgroupLayout;
  readonly cgPath: string;
  readonly d: CgroupDriver;
  /** Start a process and remember it for the teardown. */
  start(cmd: string, args: string[], stdin?: 'pipe'): ChildProcess;
}

function stateOf(pid: number): string {
  return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

async function exited(child: ChildProcess, ms = 5000): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function rig(tt: { teardown(fn: () => Promise<void> | void): void }, timeoutMs = 2000): Rig {
  const layout = detectCgroupMode();
  const cgPath = `/tsrun-test-${process.pid}-${++seq}`;
  const d = cgroupDriver(layout.mode, { root: '/sys/fs/cgroup', path: cgPath, hierarchies: layout.hierarchies, timeoutMs });
  const children: ChildProcess[] = [];
  tt.teardown(async () => {
    const freezer = layout.hierarchies.v1['freezer'];
    if (freezer) {
      try {
        fs.writeFileSync(path.join(freezer.mountpoint, cgPath, 'freezer.state'), 'THAWED');
      } catch {
        // not created, or already gone
      }
    }
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await exited(c);
      }
    }
    const mounts = new Set([...Object.values(layout.hierarchies.v1), ...(layout.hierarchies.v2 ? [layout.hierarchies.v2] : [])].map((m) => m.mountpoint));
    for (const m of mounts) {
      const dir = path.join(m, cgPath);
      for (let i = 0; i < 200 && fs.existsSync(dir); i++) {
        try {
          fs.rmdirSync(dir);
        } catch {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      if (fs.existsSync(dir)) throw new Error(`teardown: could not remove ${dir}`);
    }
  });
  return {
    layout,
    cgPath,
    d,
    start(cmd, args, stdin) {
      const c = spawn(cmd, args, { stdio: [stdin ?? 'ignore', 'pipe', 'pipe'] });
      children.push(c);
      return c;
    },
  };
}

const gate = (t: Parameters<typeof requires>[0]): boolean => requires(t, 'root', 'cgroup1');

/**
 * A `sleep` that is moved into the cgroup first and execs after: memory is charged to the
 * cgroup that faults it in (v1 does not move charges with the task), so only pages touched
 * after the move count against the limits checked here.
 */
async function sleeperIn(r: Rig): Promise<ChildProcess> {
  const c = r.start('sh', ['-c', 'read go; exec sleep 1000'], 'pipe');
  r.d.addProcess(c.pid!);
  c.stdin!.end('go\n');
  for (let i = 0; i < 500; i++) {
    if (fs.readFileSync(`/proc/${c.pid}/comm`, 'utf8').trim() === 'sleep') return c;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`process ${c.pid} did not exec sleep`);
}

t.test('limits, a process, freeze and thaw, stats, kill, destroy', async (t) => {
  if (!gate(t)) return;
  const r = rig(t);
  const { layout, cgPath, d } = r;
  const v1 = layout.hierarchies.v1;
  d.create();
  for (const c of ['memory', 'pids', 'cpu', 'freezer', 'devices']) {
    const m = v1[c];
    if (m) t.ok(fs.existsSync(path.join(m.mountpoint, cgPath)), `${c} cgroup exists`);
  }
  d.apply({ memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 10 }, cpu: { shares: 512, quota: 50000, period: 100000 }, blockIO: { weight: 0 } });
  const read = (c: string, f: string): string => fs.readFileSync(path.join(v1[c]!.mountpoint, cgPath, f), 'utf8').trim();
  t.equal(read('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  t.equal(read('pids', 'pids.max'), '10');
  t.equal(read('cpu', 'cpu.shares'), '512');
  t.equal(read('cpu', 'cpu.cfs_quota_us'), '50000');
  t.equal(read('cpu', 'cpu.cfs_period_us'), '100000');

  const child = await sleeperIn(r);
  const pid = child.pid!;
  const procCgroup = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  t.match(procCgroup, new RegExp(`:memory:${cgPath}$`, 'm'), 'in the memory cgroup');
  t.match(procCgroup, new RegExp(`:pids:${cgPath}$`, 'm'), 'in the pids cgroup');
  if (layout.mode === 'hybrid' && layout.hierarchies.v2) t.match(procCgroup, new RegExp(`^0::${cgPath}$`, 'm'), 'in the unified companion');
  t.same(d.pids(), [pid]);

  d.freeze('frozen');
  t.equal(d.isFrozen(), true);
  t.equal(stateOf(pid), 'D', 'frozen: the task sits in the refrigerator');
  d.freeze('thawed');
  t.equal(d.isFrozen(), false);
  t.equal(stateOf(pid), 'S', 'thawed: sleeping again');

  const s = d.stats();
  t.equal(s.pids?.current, 1n);
  t.equal(s.pids?.limit, 10n);
  t.equal(s.memory?.usage?.limit, BigInt(64 * 1024 * 1024));
  t.ok((s.memory?.usage?.usage ?? 0n) > 0n, 'memory charged');
  t.ok(s.cpu?.usage?.total !== undefined, 'cpu usage read');
});

t.test('checkBeforeUpdate, kill through the cgroup, destroy', async (t) => {
  if (!gate(t)) return;
  const r = rig(t);
  const { layout, cgPath, d } = r;
  d.create();
  const child = await sleeperIn(r);
  t.throws(() => d.apply({ memory: { limit: 4096, checkBeforeUpdate: true } }), { code: 'FailedPrecondition' }, 'a limit below usage is refused');
  const quick = cgroupDriver(layout.mode, { root: '/sys/fs/cgroup', path: cgPath, hierarchies: layout.hierarchies, timeoutMs: 100 });
  t.throws(() => quick.destroy(), { message: new RegExp(`still busy after 100 ms \\(pids left: ${child.pid}\\)`) }, 'destroy names the pid left');
  d.create();
  d.freeze('frozen');
  d.kill('SIGKILL');
  t.ok(await exited(child), 'killed, though paused');
  t.equal(child.signalCode, 'SIGKILL');
  d.destroy();
  for (const m of Object.values(layout.hierarchies.v1)) t.notOk(fs.existsSync(path.join(m.mountpoint, cgPath)), `${m.mountpoint} cleaned`);
  if (layout.hierarchies.v2) t.notOk(fs.existsSync(path.join(layout.hierarchies.v2.mountpoint, cgPath)), 'unified companion cleaned');
});

const DEVICE_SCRIPT = [
  'read go',
  'if head -c1 /dev/full >/dev/null; then echo full-ok; else echo full-denied; fi',
  // Opening is what the device controller checks; dd with count=0 opens and reads nothing.
  'if dd if=/dev/kmsg of=/dev/null count=0 2>/dev/null; then echo kmsg-ok; else echo kmsg-denied; fi',
].join('; ');

/** Run DEVICE_SCRIPT in the cgroup of `d` and return what it printed. */
async function probeDevices(r: Pick<Rig, 'start'>, d: CgroupDriver): Promise<string[]> {
  const sh = r.start('sh', ['-c', DEVICE_SCRIPT], 'pipe');
  d.addProcess(sh.pid!);
  let out = '';
  sh.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  sh.stdin!.end('go\n');
  if (!(await exited(sh))) throw new Error('device probe did not finish');
  return out.trim().split('\n');
}

t.test('v1 device rules: /dev/full allowed, /dev/kmsg denied', async (t) => {
  if (!gate(t)) return;
  const r = rig(t);
  r.d.create();
  t.same(await probeDevices(r, r.d), ['full-ok', 'kmsg-ok'], 'before any rule');
  r.d.apply({ devices: [{ allow: false, access: 'rwm' }] });
  t.same(await probeDevices(r, r.d), ['full-ok', 'kmsg-denied']);
  r.d.destroy();
});

t.test('cgroup v2 device eBPF on the unified mount', async (t) => {
  if (!requires(t, 'root')) return;
  const layout = detectCgroupMode();
  const v2 = layout.hierarchies.v2;
  if (v2 === undefined || layout.mode === 'unified') {
    t.plan(0, 'needs a hybrid host (cgroup2 at /sys/fs/cgroup/unified); unified hosts run this through the v2 driver tests');
    return;
  }
  const unsupported = deviceProgramUnsupported();
  if (unsupported !== undefined) {
    t.plan(0, `native helper without tsrun_bpf_prog_load_attach: ${unsupported}`);
    return;
  }
  const cgPath = `/tsrun-bpf-${process.pid}-${++seq}`;
  const dir = path.join(v2.mountpoint, cgPath);
  const d = cgroupDriver('unified', { root: v2.mountpoint, path: cgPath, hierarchies: { v1: {}, v2 }, devices: deviceProgramLoader });
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of children) await exited(c);
    for (let i = 0; i < 200 && fs.existsSync(dir); i++) {
      try {
        fs.rmdirSync(dir);
      } catch {
        await new Promise((res) => setTimeout(res, 10));
      }
    }
    if (fs.existsSync(dir)) throw new Error(`teardown: could not remove ${dir}`);
  });
  const r = {
    start: (cmd: string, args: string[], stdin?: 'pipe'): ChildProcess => {
      const c = spawn(cmd, args, { stdio: [stdin ?? 'ignore', 'pipe', 'pipe'] });
      children.push(c);
      return c;
    },
  };
  d.create();
  d.apply({ devices: [{ allow: false, access: 'rwm' }] });
  t.same(await probeDevices(r, d), ['full-ok', 'kmsg-denied'], 'deny all plus the defaults');
  d.apply({ devices: [{ allow: true, access: 'rwm' }] });
  t.same(await probeDevices(r, d), ['full-ok', 'kmsg-ok'], 'update replaces the program instead of adding one');
  d.apply({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'r' }] });
  t.same(await probeDevices(r, d), ['full-ok', 'kmsg-ok'], 'an allow for c 1:11 r');
  d.destroy();
  t.notOk(fs.existsSync(dir), 'removed');
});

t.test('kill --all with a signal other than SIGKILL', async (t) => {
  if (!gate(t)) return;
  const { d, start } = rig(t);
  d.create();
  const a = start('sleep', ['1000']);
  const b = start('sleep', ['1000']);
  d.addProcess(a.pid!);
  d.addProcess(b.pid!);
  d.kill('SIGTERM');
  t.ok(await exited(a), 'first exited');
  t.ok(await exited(b), 'second exited');
  t.equal(d.isFrozen(), false, 'thawed after the loop');
  d.destroy();
});
