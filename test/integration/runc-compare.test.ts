/**
 * Differential checks: the same bundle under runc (the reference) and under the runtime
 * under test, each with its own --root, must give the same observable results. Skipped
 * when the runtime under test is runc itself or runc is not installed.
 */
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { makeGate, readState, statusOf, waitForStatus } from '../helpers/container';
import { requires } from '../helpers/requires';
import { describe, runcPath, type Runtime } from '../helpers/runtime';

function withReference(b: Bundle): { sut: Runtime; ref: Runtime } {
  if (runcPath === undefined) throw new Error('runc is required');
  return { sut: b.rt, ref: b.runtime(runcPath) };
}

const keys = (text: string): string[] => {
  const v: unknown = JSON.parse(text);
  return typeof v === 'object' && v !== null ? Object.keys(v).sort() : [];
};

t.test('state keys and status sequence', async (t) => {
  if (!requires(t, 'root', 'busybox', 'runc', 'not-runc')) return;
  const b = makeBundle(t);
  const gate = makeGate(b);
  b.writeSpec((s) => {
    s.mounts.push(gate.mount);
    s.process.args = ['sh', '-c', gate.wait];
  });
  const { sut, ref } = withReference(b);

  const observe = (rt: Runtime, id: string): { statuses: string[]; keys: string[][]; listKeys: string[] } => {
    const statuses: string[] = [];
    const keySets: string[][] = [];
    const snap = (): void => {
      const r = rt.state(id);
      statuses.push(r.code === 0 ? readState(rt, id).status : 'missing');
      if (r.code === 0) keySets.push(keys(r.stdout));
    };
    const c = rt.create(id, b.dir);
    if (c.code !== 0) throw new Error(`create failed: ${describe(c)}`);
    snap();
    const list = rt.list(['--format', 'json']);
    const parsed: unknown = JSON.parse(list.stdout);
    const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
    const listKeys = typeof first === 'object' && first !== null ? Object.keys(first).sort() : [];
    rt.start(id);
    snap();
    return { statuses, keys: keySets, listKeys };
  };

  const sutId = b.newId();
  const refId = b.newId();
  const a = observe(sut, sutId);
  const r = observe(ref, refId);
  gate.open();
  for (const [rt, id, o] of [
    [sut, sutId, a],
    [ref, refId, r],
  ] as const) {
    await waitForStatus(rt, id, 'stopped');
    const s = rt.state(id);
    o.statuses.push(statusOf(rt, id));
    if (s.code === 0) o.keys.push(keys(s.stdout));
    rt.delete(id);
    o.statuses.push(statusOf(rt, id));
  }
  t.same(a.statuses, r.statuses, `status sequence matches runc (${r.statuses.join(' → ')})`);
  t.same(a.keys, r.keys, 'state key sets match runc at every step');
  t.same(a.listKeys, r.listKeys, 'list --format json key set matches runc');
});

t.test('run exit codes', async (t) => {
  if (!requires(t, 'root', 'busybox', 'runc', 'not-runc')) return;
  const b = makeBundle(t);
  const { sut, ref } = withReference(b);
  const variants: [string, string[], boolean][] = [
    ['exit 0', ['true'], true],
    ['exit 3', ['sh', '-c', 'exit 3'], true],
    ['SIGTERM without a pid namespace', ['sh', '-c', 'kill -TERM $$; sleep 5'], false],
  ];
  for (const [label, args, pidns] of variants) {
    b.writeSpec((s) => {
      s.process.args = args;
      s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'pid');
      if (pidns) s.linux.namespaces.push({ type: 'pid' });
    });
    const x = sut.run(b.newId(), b.dir);
    const y = ref.run(b.newId(), b.dir);
    t.equal(x.code, y.code, `${label}: exit ${String(y.code)} like runc (${describe(x)})`);
  }
});

t.test('what the process sees', async (t) => {
  if (!requires(t, 'root', 'busybox', 'runc', 'not-runc')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'id; hostname; pwd; cat /proc/self/oom_score_adj; umask; echo $PATH; echo $HOME'],
    patch: (s) => {
      s.process.user = { uid: 1000, gid: 1000, additionalGids: [10] };
      s.process.cwd = '/tmp';
      s.process.oomScoreAdj = 123;
      s.hostname = 'compare';
    },
  });
  const { sut, ref } = withReference(b);
  const x = sut.run(b.newId(), b.dir);
  const y = ref.run(b.newId(), b.dir);
  t.equal(y.code, 0, `runc ran it (${describe(y)})`);
  t.equal(x.code, 0, `the runtime under test ran it (${describe(x)})`);
  t.equal(x.stdout, y.stdout, 'same stdout as runc');
});

t.test('missing executable', async (t) => {
  if (!requires(t, 'root', 'busybox', 'runc', 'not-runc')) return;
  const b = makeBundle(t, { args: ['/bin/nonexistent'] });
  const { sut, ref } = withReference(b);
  const x = sut.create(b.newId(), b.dir);
  const y = ref.create(b.newId(), b.dir);
  t.equal(x.code, y.code, `create exits ${String(y.code)} like runc (${describe(x)})`);
  const xr = sut.run(b.newId(), b.dir);
  const yr = ref.run(b.newId(), b.dir);
  t.equal(xr.code, yr.code, `run exits ${String(yr.code)} like runc (${describe(xr)})`);
});
