/**
 * The event rules of shim/service.ts with a fake Runtime (no root, no processes): start answers
 * before the exit it raced with, exec exits come before init's, exits while nobody is subscribed
 * are stored and delivered once, and the error codes of the lifecycle checks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { ShimEvent } from '../../../shim/api';
import { openJsonLog } from '../../../shim/json-log';
import { createService, type Service, type ServiceDeps } from '../../../shim/service';
import { readShimState } from '../../../shim/state';
import type { Runtime } from '../../../shim/runtime/types';

const NULL_IO = { stdin: '', stdout: '', stderr: '', terminal: false };

function fake(onStart?: () => void): Runtime & { calls: string[] } {
  const calls: string[] = [];
  let nextExec = 200;
  return {
    calls,
    create: async () => (calls.push('create'), 100),
    start: async () => {
      calls.push('start');
      onStart?.();
    },
    exec: async (id) => (calls.push(`exec ${id}`), nextExec++),
    kill: async (s, all) => void calls.push(`kill ${s} ${all}`),
    delete: async (force) => void calls.push(`delete ${force}`),
    pause: async () => void calls.push('pause'),
    resume: async () => void calls.push('resume'),
    ps: async () => [100, 200],
    stats: async () => ({}),
    update: async () => undefined,
  };
}

function service(t: { teardown(fn: () => void): void }, rt: Runtime, extra: Pick<ServiceDeps, 'watchOom'> = {}): Service {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-svc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return createService({
    dir,
    options: { namespace: 'ns', id: 'c1', runtime: { kind: 'library' }, stdio: NULL_IO, noPivot: false, noNewKeyring: false },
    runtime: rt,
    runtimeRoot: path.join(dir, 'rr'),
    openLog: openJsonLog,
    warn: () => undefined,
    ...extra,
  });
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));
const exited = (code: number): number => code << 8;

t.test('an exit that races start is reported after start answered', async (t) => {
  const order: string[] = [];
  let svc!: Service;
  const rt = fake(() => svc.reaped(100, exited(0)));
  svc = service(t, rt);
  svc.subscribe({ send: (e) => (order.push(e.type), true) });
  await svc.create();
  const w = svc.wait();
  const s = await svc.start();
  order.push(`start ${s.pid}`);
  await w;
  t.same(order, ['start 100', 'exit']);
});

t.test('an exec exit reaped before its pid was known is claimed by start', async (t) => {
  const events: ShimEvent[] = [];
  const rt = fake();
  const svc = service(t, rt);
  svc.subscribe({ send: (e) => (events.push(e), true) });
  await svc.create();
  await svc.start();
  svc.exec('e1', '{}', NULL_IO);
  svc.reaped(200, exited(7)); // before start returns 200
  const s = await svc.start('e1');
  t.equal(s.pid, 200);
  t.equal((await svc.wait('e1')).exitStatus, 7);
  t.same(events.map((e) => e.type), ['exec-started', 'exit']);
});

t.test('exec exits come before init exit', async (t) => {
  const events: ShimEvent[] = [];
  const svc = service(t, fake());
  svc.subscribe({ send: (e) => (events.push(e), true) });
  await svc.create();
  await svc.start();
  svc.exec('e1', '{}', NULL_IO);
  await svc.start('e1');
  svc.reaped(100, 9); // init killed by SIGKILL first
  await tick();
  svc.reaped(200, 9);
  await svc.wait();
  t.same(events.filter((e) => e.type === 'exit').map((e) => e.type === 'exit' && [e.exit.execId ?? 'init', e.exit.exitStatus]), [['e1', 137], ['init', 137]]);
});

t.test('exits while nobody is subscribed are stored and delivered once', async (t) => {
  const svc = service(t, fake());
  await svc.create();
  await svc.start();
  svc.reaped(100, exited(3));
  await svc.wait();
  const got: ShimEvent[] = [];
  svc.subscribe({ send: (e) => (got.push(e), true) });
  await tick();
  t.same(got.map((e) => e.type === 'exit' && e.exit.exitStatus), [3]);
  const again: ShimEvent[] = [];
  svc.subscribe({ send: (e) => (again.push(e), true) });
  await tick();
  t.same(again, []);
});

t.test('lifecycle checks', async (t) => {
  const rt = fake();
  const svc = service(t, rt);
  t.throws(() => svc.state(), { code: 'NotFound' });
  await svc.create();
  await t.rejects(svc.create(), { code: 'AlreadyExists', message: 'task c1: already exists' });
  await svc.start();
  await t.rejects(svc.start(), { code: 'FailedPrecondition' });
  await t.rejects(svc.delete(), { code: 'FailedPrecondition' });
  t.throws(() => svc.state('nope'), { code: 'NotFound' });
  svc.exec('e1', '{}', NULL_IO);
  t.throws(() => svc.exec('e1', '{}', NULL_IO), { code: 'AlreadyExists' });
  await svc.pause();
  t.equal(svc.state().status, 'paused');
  await svc.resume();
  t.same(await svc.pids(), [{ pid: 100 }, { pid: 200 }]);
  svc.reaped(100, exited(0));
  await svc.wait();
  await t.rejects(svc.kill(9, undefined, false), { code: 'NotFound', message: 'process already finished' });
  await t.rejects(svc.pause(), { code: 'FailedPrecondition' });
  t.equal((await svc.delete()).exitStatus, 0);
  t.ok(rt.calls.includes('delete false'));
});

t.test('state is saved with pids and exits', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-svc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const svc = createService({
    dir,
    options: { namespace: 'ns', id: 'c1', runtime: { kind: 'library' }, stdio: NULL_IO, noPivot: false, noNewKeyring: false },
    runtime: fake(),
    runtimeRoot: path.join(dir, 'rr'),
    openLog: openJsonLog,
    warn: () => undefined,
  });
  await svc.create();
  await svc.start();
  svc.reaped(100, exited(4));
  await svc.wait();
  const s = readShimState(dir);
  t.equal(s.init?.pid, 100);
  t.equal(s.init?.exitStatus, 4);
  t.equal(s.undelivered.length, 1, 'nobody was subscribed');
});

t.test('an exit a gone connection could not take is stored for the next subscriber', async (t) => {
  const svc = service(t, fake());
  svc.subscribe({ send: () => false });
  await svc.create();
  await svc.start();
  svc.reaped(100, exited(2));
  await svc.wait();
  const got: ShimEvent[] = [];
  svc.subscribe({ send: (e) => (got.push(e), true) });
  await tick();
  t.same(got.map((e) => e.type === 'exit' && e.exit.exitStatus), [2]);
});

t.test('a kill that finds init already dead but not yet reaped is "process already finished" (NotFound)', async (t) => {
  const { TsrunError } = await import('../../../spec/errors');
  for (const failure of [new TsrunError('FailedPrecondition', 'container not running'), new TsrunError('Internal', 'kill 100: no such process', { errno: 'ESRCH' })]) {
    const rt = { ...fake(), kill: async () => Promise.reject(failure) };
    const svc = service(t, rt);
    await svc.create();
    await svc.start();
    await t.rejects(svc.kill(9, undefined, false), { code: 'NotFound', message: 'process already finished' }, failure.message);
  }
  const other = new TsrunError('PermissionDenied', 'kill: operation not permitted', { errno: 'EPERM' });
  const svc = service(t, { ...fake(), kill: async () => Promise.reject(other) });
  await svc.create();
  await svc.start();
  await t.rejects(svc.kill(9, undefined, false), { code: 'PermissionDenied' }, 'other failures stay what they are');
});

t.test('an OOM kill is reported before the exit it caused, and polling stops with init', async (t) => {
  const order: string[] = [];
  let count = 0;
  let watching: { pid: number; stopped: boolean } | undefined;
  const svc = service(t, fake(), {
    watchOom: (pid, onOom) => {
      const w = { pid, stopped: false };
      watching = w;
      let seen = count;
      return {
        poll: () => {
          if (!w.stopped && count > seen) onOom();
          seen = count;
        },
        stop: () => void (w.stopped = true),
      };
    },
  });
  svc.subscribe({ send: (e) => (order.push(e.type), true) });
  await svc.create();
  t.same(watching, { pid: 100, stopped: false }, "init's cgroup is watched from create on");
  await svc.start();
  count++; // the kernel OOM-killed init; the next poll has not run yet
  svc.reaped(100, 9); // killed by SIGKILL
  t.equal((await svc.wait()).exitStatus, 137);
  t.same(order, ['oom', 'exit'], 'oom first, then the exit');
  t.equal(watching?.stopped, true, 'and the watch ends with init');
});
