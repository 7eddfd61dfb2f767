/**
 * Namespaces joined by path (setns) and the ones that need init to be a second fork: joining a
 * pid namespace and creating a time namespace both only affect children of the caller.
 */
import * as fs from 'node:fs';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { runDetached } from '../helpers/container';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

const nsFacts = ['pid', 'net', 'uts', 'ipc', 'mnt', 'cgroup', 'time']
  .map((n) => `echo "@@${n} $(readlink /proc/self/ns/${n})"`)
  .join('; ');

t.test('joining another container\'s pid, net, uts and ipc namespaces by path', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const a = makeBundle(t, {
    args: ['sleep', '1000'],
    patch: (s) => {
      s.hostname = 'first';
    },
  });
  const first = runDetached(a);
  const nsOf = (n: string): string => fs.readlinkSync(`/proc/${first.pid}/ns/${n}`);
  const b = makeBundle(t, {
    args: ['sh', '-c', `${nsFacts}; echo "@@host $(hostname)"; echo "@@me $$"; echo "@@ps $(ps -o pid,comm | grep -c sleep)"`],
    patch: (s) => {
      delete s.hostname;
      s.linux.namespaces = [
        { type: 'mount' },
        { type: 'pid', path: `/proc/${first.pid}/ns/pid` },
        { type: 'network', path: `/proc/${first.pid}/ns/net` },
        { type: 'uts', path: `/proc/${first.pid}/ns/uts` },
        { type: 'ipc', path: `/proc/${first.pid}/ns/ipc` },
      ];
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  for (const [mine, host] of [['pid', 'pid'], ['net', 'net'], ['uts', 'uts'], ['ipc', 'ipc']] as const) {
    t.equal(fact(f, mine), nsOf(host), `${mine} namespace is the first container's`);
  }
  t.not(fact(f, 'mnt'), nsOf('mnt'), 'but a mount namespace of its own');
  t.equal(fact(f, 'host'), 'first', 'the joined uts namespace carries the first hostname');
  t.not(fact(f, 'me'), '1', 'in a joined pid namespace init is not pid 1');
  t.equal(fact(f, 'ps'), '1', "the first container's sleep is visible");
  // Deleting the second container must not sweep the pid namespace it only joined.
  t.ok(fs.existsSync(`/proc/${first.pid}`), 'the first container survives the second one\'s delete');
  t.equal(a.rt.kill(first.id, 'KILL').code, 0, 'kill the first container');
});

t.test('new cgroup and time namespaces', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!fs.existsSync('/proc/self/ns/time')) {
    t.plan(0, 'this kernel has no time namespaces');
    return;
  }
  if (runtimeName === 'runc') {
    t.plan(0, 'runc 1.1 does not support time namespaces');
    return;
  }
  const b = makeBundle(t, {
    args: ['sh', '-c', `${nsFacts}; echo "@@me $$"`],
    patch: (s) => {
      s.linux.namespaces.push({ type: 'cgroup' }, { type: 'time' });
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.not(fact(f, 'time'), fs.readlinkSync('/proc/self/ns/time'), 'a time namespace of its own');
  t.not(fact(f, 'cgroup'), fs.readlinkSync('/proc/self/ns/cgroup'), 'a cgroup namespace of its own');
  t.equal(fact(f, 'me'), '1', 'still pid 1 of a new pid namespace (init is the second fork)');
});

t.test('time namespace offsets move the container\'s boot clock', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!fs.existsSync('/proc/self/ns/time') || runtimeName === 'runc') {
    t.plan(0, runtimeName === 'runc' ? 'runc 1.1 does not support time namespaces' : 'this kernel has no time namespaces');
    return;
  }
  const DAY = 86400;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'echo "@@uptime $(cut -d. -f1 /proc/uptime)"'],
    patch: (s) => {
      s.linux.namespaces.push({ type: 'time' });
      (s.linux as unknown as Record<string, unknown>)['timeOffsets'] = { boottime: { secs: 10 * DAY, nanosecs: 0 }, monotonic: { secs: DAY, nanosecs: 0 } };
    },
  });
  const host = Number(fs.readFileSync('/proc/uptime', 'utf8').split('.')[0]);
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const inside = Number(fact(parseFacts(r.stdout), 'uptime'));
  t.ok(inside >= host + 10 * DAY - 5 && inside <= host + 10 * DAY + 60, `uptime inside (${inside}) is the host's (${host}) plus ten days`);
});
