/**
 * The container's cgroup end to end on this host's v1 hierarchies: limits from the config reach
 * the cgroup before the program runs, ps/pause/resume/update/kill --all/events go through it,
 * the device cgroup denies a host device the config does not allow, and delete removes it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { readState, runDetached, waitForStatus } from '../helpers/container';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe, runtimeName, runtimePath } from '../helpers/runtime';

const V1 = '/sys/fs/cgroup';
const hierarchy = (name: string): string => path.join(V1, name);
const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();

/** A unique absolute cgroup path for this test, removed (parent included) in teardown. */
function cgroupPathFor(t: { teardown(fn: () => void): void }, b: Bundle): string {
  const parent = `/tsrun-it-${process.pid}`;
  t.teardown(() => {
    for (const h of fs.readdirSync(V1)) {
      try {
        fs.rmdirSync(path.join(V1, h, parent));
      } catch {
        // Not created in this hierarchy, or not empty because a test failed: the bundle teardown reports it.
      }
    }
  });
  return `${parent}/${b.id}`;
}

t.test('limits, ps, pause and resume, update, kill --all, delete', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  const b = makeBundle(t, { args: ['sh', '-c', 'sleep 1000 & wait'] });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
    (s.linux.resources as unknown as Record<string, unknown>)['memory'] = { limit: 64 * 1024 * 1024 };
    (s.linux.resources as unknown as Record<string, unknown>)['pids'] = { limit: 20 };
    (s.linux.resources as unknown as Record<string, unknown>)['cpu'] = { shares: 512 };
  });
  const c = runDetached(b);
  t.equal(read(path.join(hierarchy('memory'), cg, 'memory.limit_in_bytes')), String(64 * 1024 * 1024), 'memory limit in the cgroup');
  t.equal(read(path.join(hierarchy('pids'), cg, 'pids.max')), '20', 'pids limit in the cgroup');
  t.equal(read(path.join(hierarchy('cpu'), cg, 'cpu.shares')), '512', 'cpu shares in the cgroup');
  t.match(read(path.join(hierarchy('memory'), cg, 'cgroup.procs')), new RegExp(`^${c.pid}$`, 'm'), 'init is in the cgroup');

  const ps = b.rt.exec(['ps', '--format', 'json', b.id]);
  t.equal(ps.code, 0, `ps --format json exits 0 (${describe(ps)})`);
  t.equal(ps.stderr, '', 'nothing on stderr (go-runc parses stdout and stderr together)');
  const pids = JSON.parse(ps.stdout) as number[];
  t.ok(pids.includes(c.pid) && pids.length === 2, `init and its sleep are listed (${ps.stdout.trim()})`);

  t.equal(b.rt.exec(['pause', b.id]).code, 0, 'pause exits 0');
  t.equal(readState(b.rt, b.id).status, 'paused', 'status paused');
  t.equal(read(path.join(hierarchy('freezer'), cg, 'freezer.state')), 'FROZEN', 'freezer.state FROZEN');
  t.equal(b.rt.exec(['resume', b.id]).code, 0, 'resume exits 0');
  t.equal(readState(b.rt, b.id).status, 'running', 'status running again');

  // docker update --memory 96m --memory-swap 192m, byte for byte (docs/engines.md): zeros are "unset".
  const upd = b.rt.exec(['update', '--resources', '-', b.id], {
    input: '{"memory":{"limit":100663296,"reservation":0,"swap":201326592,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}',
  });
  t.equal(upd.code, 0, `update --resources - exits 0 (${describe(upd)})`);
  t.equal(read(path.join(hierarchy('memory'), cg, 'memory.limit_in_bytes')), '100663296', 'the new memory limit');
  t.equal(read(path.join(hierarchy('cpu'), cg, 'cpu.shares')), '512', 'cpu.shares 0 left the shares alone');

  if (runtimeName === 'tsrun') {
    const ev = b.rt.exec(['events', '--stats', b.id]);
    t.equal(ev.code, 0, `events --stats exits 0 (${describe(ev)})`);
    const line = JSON.parse(ev.stdout) as { type: string; id: string; data: { memory: { usage: { limit: number } }; pids: { current: number } } };
    t.equal(line.type, 'stats', 'a stats event');
    t.equal(line.data.memory.usage.limit, 100663296, 'memory.usage.limit as runc reports it');
    t.equal(line.data.pids.current, 2, 'pids.current');
  }

  t.equal(b.rt.kill(b.id, 'KILL', { all: true }).code, 0, 'kill --all KILL exits 0');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped', 5000), 'the container stops');
  t.equal(b.rt.delete(b.id).code, 0, 'delete exits 0');
  for (const h of ['memory', 'pids', 'cpu', 'freezer', 'devices']) t.notOk(fs.existsSync(path.join(hierarchy(h), cg)), `the ${h} cgroup is gone`);
});

t.test('memory limit 4 MiB and pids limit 1 still start /bin/true', async (t) => {
  // The runtime's own memory must not be billed to the container: init joins its cgroup as a
  // fork of the runtime, before it touches much.
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  const b = makeBundle(t, { args: ['/bin/true'] });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
    (s.linux.resources as unknown as Record<string, unknown>)['memory'] = { limit: 4 * 1024 * 1024 };
    (s.linux.resources as unknown as Record<string, unknown>)['pids'] = { limit: 1 };
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
});

/** Lines of /proc/<pid>/cgroup ("id:controllers:path") as this test sees them. */
const cgroupLines = (pid: number | 'self'): string[] => read(`/proc/${pid}/cgroup`).split('\n');

t.test('init and exec join the cgroup in every hierarchy, and in a cgroup namespace see it as /', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'], patch: (s) => s.linux.namespaces.push({ type: 'cgroup' }) });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
  });
  const c = runDetached(b);
  const lines = cgroupLines(c.pid);
  t.equal(lines.length, cgroupLines('self').length, 'init is listed in every hierarchy');
  t.same(lines.filter((l) => !l.endsWith(`:${cg}`)), [], `and in ${cg} in each`);

  const own = b.rt.exec(['exec', b.id, 'cat', '/proc/self/cgroup', '/proc/1/cgroup']);
  t.equal(own.code, 0, `exec exits 0 (${describe(own)})`);
  const seen = own.stdout.trim().split('\n');
  t.equal(seen.length, 2 * lines.length, 'exec reads both its own and init\'s hierarchies');
  t.same(seen.filter((l) => !l.endsWith(':/')), [], 'each is "/" from inside the cgroup namespace');

  const pidFile = path.join(b.sandbox, 'exec.pid');
  const d = b.rt.exec(['exec', '--detach', '--pid-file', pidFile, b.id, 'sleep', '1000']);
  t.equal(d.code, 0, `exec --detach exits 0 (${describe(d)})`);
  const execPid = Number(read(pidFile));
  t.same(cgroupLines(execPid).filter((l) => !l.endsWith(`:${cg}`)), [], `the exec'd process is in ${cg} in every hierarchy`);
  t.equal(b.rt.kill(b.id, 'KILL', { all: true }).code, 0, 'kill --all KILL exits 0');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped', 5000), 'the container stops');
});

/** build/noclone3 (make build/noclone3): runs a command with clone3 answering ENOSYS. */
const noclone3 = path.resolve(__dirname, '..', '..', 'build', 'noclone3');

t.test('without clone3 (ENOSYS, as under docker\'s seccomp profile) init and exec join the v2 cgroup through cgroup.procs', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  if (!fs.existsSync(noclone3)) return void t.plan(0, 'build/noclone3 is not built (make build/noclone3)');
  if (!cgroupLines('self').some((l) => l.startsWith('0::'))) return void t.plan(0, 'no cgroup v2 hierarchy beside the v1 ones');
  // The runtime under test, every call of it under the filter (create, exec, and what they start).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-noclone3-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const wrapper = path.join(dir, 'runtime');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${noclone3} ${runtimePath} "$@"\n`, { mode: 0o755 });
  const b = makeBundle(t, { binary: wrapper, args: ['sleep', '1000'], patch: (s) => s.linux.namespaces.push({ type: 'cgroup' }) });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
  });
  const c = runDetached(b);
  t.match(read(`/proc/${c.pid}/status`), /^Seccomp:\s+2$/m, 'init runs under the filter (it was made without clone3)');
  const lines = cgroupLines(c.pid);
  t.ok(lines.some((l) => l.startsWith('0::')), 'init is listed in the v2 hierarchy');
  t.same(lines.filter((l) => !l.endsWith(`:${cg}`)), [], `and in ${cg} in every hierarchy, v2 included`);

  const own = b.rt.exec(['exec', b.id, 'cat', '/proc/self/cgroup']);
  t.equal(own.code, 0, `exec exits 0 (${describe(own)})`);
  t.same(own.stdout.trim().split('\n').filter((l) => !l.endsWith(':/')), [], 'exec sees "/" in each hierarchy from inside the cgroup namespace');
  const pidFile = path.join(b.sandbox, 'exec.pid');
  const d = b.rt.exec(['exec', '--detach', '--pid-file', pidFile, b.id, 'sleep', '1000']);
  t.equal(d.code, 0, `exec --detach exits 0 (${describe(d)})`);
  t.same(cgroupLines(Number(read(pidFile))).filter((l) => !l.endsWith(`:${cg}`)), [], `the exec'd process is in ${cg} in every hierarchy, v2 included`);
  t.equal(b.rt.kill(b.id, 'KILL', { all: true }).code, 0, 'kill --all KILL exits 0');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped', 5000), 'the container stops');
});

t.test('an init made by a second fork joins its cgroup itself: pids limit 1 holds it alone', async (t) => {
  // Joining a pid namespace by path needs an intermediate process that forks init; were the
  // intermediate in the cgroup, pids.max 1 would refuse init's fork.
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  const a = makeBundle(t, { args: ['sleep', '1000'] });
  const first = runDetached(a);
  const b = makeBundle(t, {
    args: ['cat', '/proc/self/cgroup'],
    patch: (s) => {
      delete s.hostname;
      s.linux.namespaces = [{ type: 'mount' }, { type: 'pid', path: `/proc/${first.pid}/ns/pid` }, { type: 'cgroup' }];
    },
  });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
    (s.linux.resources as unknown as Record<string, unknown>)['pids'] = { limit: 1 };
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const seen = r.stdout.trim().split('\n');
  t.equal(seen.length, cgroupLines('self').length, 'init lists every hierarchy');
  t.same(seen.filter((l) => !l.endsWith(':/')), [], 'each is "/" from inside its cgroup namespace');
  t.equal(a.rt.kill(first.id, 'KILL').code, 0, 'kill the first container');
  t.ok(await waitForStatus(a.rt, first.id, 'stopped', 5000), 'it stops');
});

t.test('the device cgroup denies a host device the config does not allow', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'head -c1 /dev/kmsg >/dev/null 2>&1 && echo "@@kmsg open" || echo "@@kmsg denied"; echo x > /dev/null && echo "@@null ok"'],
  });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
    (s.linux as unknown as Record<string, unknown>)['devices'] = [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o644 }];
    s.linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'kmsg'), 'denied', '/dev/kmsg exists but the device cgroup refuses it');
  t.equal(fact(f, 'null'), 'ok', 'the default devices stay allowed (appended after the engine rules)');
});

t.test('a create that fails after the cgroup exists leaves no cgroup', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  const b = makeBundle(t, { args: ['/bin/nonexistent'] });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
  });
  const r = b.rt.create(b.id, b.dir);
  t.not(r.code, 0, 'create fails');
  for (const h of ['memory', 'pids', 'devices']) t.notOk(fs.existsSync(path.join(hierarchy(h), cg)), `no ${h} cgroup left`);
});

t.test('a controller this host lacks is an error that names it, and nothing is left', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  if (fs.existsSync(hierarchy('hugetlb'))) {
    t.plan(0, 'this host mounts hugetlb; the test needs a controller that is missing');
    return;
  }
  const b = makeBundle(t, { args: ['true'] });
  const cg = cgroupPathFor(t, b);
  b.writeSpec((s) => {
    s.linux.cgroupsPath = cg;
    (s.linux.resources as unknown as Record<string, unknown>)['hugepageLimits'] = [{ pageSize: '2MB', limit: 1048576 }];
  });
  const r = b.rt.create(b.id, b.dir);
  t.equal(r.code, 1, 'create fails');
  if (runtimeName === 'tsrun') t.match(r.stderr, /hugetlb/, 'the error names the missing controller');
  for (const h of ['memory', 'pids']) t.notOk(fs.existsSync(path.join(hierarchy(h), cg)), `no ${h} cgroup left`);
});

t.test('--systemd-cgroup without systemd is a clear error', async (t) => {
  if (!requires(t, 'root', 'busybox', 'not-runc')) return;
  if (fs.existsSync('/run/systemd/system')) {
    t.plan(0, 'systemd runs on this host');
    return;
  }
  const b = makeBundle(t, { args: ['true'], patch: (s) => { s.linux.cgroupsPath = 'system.slice:tsrun:x'; } });
  const r = b.rt.exec(['--systemd-cgroup', 'create', '--bundle', b.dir, b.id]);
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /systemd/, 'the error says systemd is needed');
  t.same(fs.existsSync(b.rt.root) ? fs.readdirSync(b.rt.root) : [], [], 'nothing left under the root');
});
