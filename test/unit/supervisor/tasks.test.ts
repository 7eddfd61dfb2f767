/**
 * Task logic over a fake shim: containerd semantics and event ordering without root.
 */
import t from 'tap';
import type { ProcessExit, ShimConnection, ShimEvent, ShimStartOptions, ProcessState } from '../../../shim/api';
import { createContainers, type AfterUpdate } from '../../../supervisor/containers/local';
import { createRestarts, POLICY_LABEL, STATE_LABEL, STOPPED_LABEL } from '../../../supervisor/restart/policy';
import { createExchange, type Envelope } from '../../../supervisor/events/exchange';
import { parseFilters } from '../../../supervisor/events/filters';
import { createLogger } from '../../../supervisor/log';
import { unpackAny, SPEC_TYPE_URL, packAny } from '../../../supervisor/proto/index';
import { openStore } from '../../../supervisor/store/db';
import { chooseRuntime, createTasks, type ShimDriver } from '../../../supervisor/tasks/local';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

interface FakeShim extends ShimConnection {
  emit(e: ShimEvent): void;
  die(): void;
  startDelay: number;
  exitOnStart: ProcessExit | undefined;
  deleted: boolean;
  states: ProcessState[];
}

const stdio = { stdin: '', stdout: '', stderr: '', terminal: false };
const at = '2024-01-01T00:00:00.000000001Z';

function fakeShim(opts: ShimStartOptions | { namespace: string; id: string }): FakeShim {
  const events: Array<(e: ShimEvent) => void> = [];
  const closes: Array<() => void> = [];
  let pid = 100;
  const shim: FakeShim = {
    namespace: opts.namespace,
    id: opts.id,
    dir: `/fake/${opts.namespace}/${opts.id}`,
    shimPid: 1,
    startDelay: 0,
    exitOnStart: undefined,
    deleted: false,
    states: [],
    emit: (e) => events.forEach((l) => l(e)),
    die: () => closes.forEach((l) => l()),
    create: async () => ({ pid: 100 }),
    async start(execId) {
      const p = execId === undefined ? 100 : ++pid + 100;
      if (shim.exitOnStart !== undefined) shim.emit({ type: 'exit', exit: { ...shim.exitOnStart, pid: p } });
      await new Promise((r) => setTimeout(r, shim.startDelay));
      return { pid: p };
    },
    wait: async () => ({ pid: 100, exitStatus: 0, exitedAt: at }),
    state: async () => ({ pid: 100, status: 'running', stdio }),
    list: async () => shim.states,
    kill: async () => undefined,
    exec: async () => undefined,
    resizePty: async () => undefined,
    closeStdin: async () => undefined,
    pause: async () => undefined,
    resume: async () => undefined,
    pids: async () => [{ pid: 100 }],
    stats: async () => ({ memory: { usage: { usage: '5' } } }),
    update: async () => undefined,
    deleteProcess: async (execId) => ({ execId, pid: 200, exitStatus: 0, exitedAt: at }),
    delete: async () => {
      shim.deleted = true;
      return { pid: 100, exitStatus: 3, exitedAt: at };
    },
    onEvent: (l) => events.push(l),
    onClose: (l) => closes.push(l),
    close: () => undefined,
  };
  return shim;
}

function setup(t: { teardown(fn: () => void): void }, driverPatch: Partial<ShimDriver> = {}, afterUpdate?: AfterUpdate) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-tasks-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = openStore(root);
  t.teardown(() => store.close());
  const events = createExchange();
  const seen: Envelope[] = [];
  events.subscribe({ filter: parseFilters([]), send: (e) => seen.push(e) });
  const shims: FakeShim[] = [];
  const driver: ShimDriver = {
    startShim: async (o) => {
      const s = fakeShim(o);
      shims.push(s);
      return s;
    },
    connectShim: async () => {
      throw new Error('no shim');
    },
    listShimDirs: () => [],
    reapDeadShim: async () => ({ pid: 100, exitStatus: 137, exitedAt: at }),
    ...driverPatch,
  };
  const log = createLogger('error');
  const tasks = createTasks(store, events, driver, { shimRoot: path.join(root, 'shims'), defaultRuntime: 'library', shimBinary: undefined, execGraceMs: 50 }, log);
  const containers = createContainers(store, events, (ns, id) => tasks.hasTask(ns, id), afterUpdate);
  const mk = (id: string, labels: Record<string, string> = {}) =>
    containers.create('default', {
      id,
      labels,
      image: '',
      runtime: { name: 'io.containerd.runc.v2', options: null },
      spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from('{}') },
      snapshotter: '',
      snapshotKey: '',
      extensions: {},
    });
  const topics = () => seen.map((e) => e.topic);
  return { store, events, seen, shims, tasks, containers, mk, topics };
}

const createInput = { stdio, options: null, rootfsMounts: 0, checkpoint: false };

t.test('create, start, wait before start, exit, delete: events in order', async (t) => {
  const s = setup(t);
  s.mk('c1');
  const { pid } = await s.tasks.create('default', 'c1', createInput);
  t.equal(pid, 100);
  t.equal(s.tasks.get('default', 'c1', undefined).status, 'created');
  const waiting = s.tasks.wait('default', 'c1', undefined);
  await s.tasks.start('default', 'c1', undefined);
  t.equal(s.tasks.get('default', 'c1', undefined).status, 'running');
  s.shims[0]!.emit({ type: 'exit', exit: { pid: 100, exitStatus: 3, exitedAt: at } });
  const w = await waiting;
  t.equal(w.exitStatus, 3);
  t.equal(s.tasks.get('default', 'c1', undefined).status, 'stopped');
  t.same(await s.tasks.wait('default', 'c1', undefined).then((x) => x.exitStatus), 3, 'wait after exit returns at once');
  const del = await s.tasks.delete('default', 'c1');
  t.equal(del.exitStatus, 3);
  t.same(s.topics(), ['/containers/create', '/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  const exitEv = unpackAny<{ containerId: string; id: string; exitStatus: number }>(s.seen[3]!.event);
  t.same([exitEv.containerId, exitEv.id, exitEv.exitStatus], ['c1', 'c1', 3]);
  t.throws(() => s.tasks.get('default', 'c1', undefined), { message: 'task c1 not found' });
});

t.test('a process that exits before Start returns still gets start then exit', async (t) => {
  const s = setup(t);
  s.mk('c2');
  await s.tasks.create('default', 'c2', createInput);
  s.shims[0]!.exitOnStart = { pid: 0, exitStatus: 0, exitedAt: at };
  s.shims[0]!.startDelay = 20;
  await s.tasks.start('default', 'c2', undefined);
  t.same(s.topics().slice(1), ['/tasks/create', '/tasks/start', '/tasks/exit']);
});

t.test('exec exits are published before the init exit', async (t) => {
  const s = setup(t);
  s.mk('c3');
  await s.tasks.create('default', 'c3', createInput);
  await s.tasks.start('default', 'c3', undefined);
  const proc = { typeUrl: 'x', value: Buffer.from('{}') };
  await t.rejects(s.tasks.exec('default', 'c3', 'e0', packAny('google.protobuf.Empty', {}), stdio), { code: 'InvalidArgument' }, 'empty spec');
  await s.tasks.exec('default', 'c3', 'e1', proc, stdio);
  await t.rejects(s.tasks.exec('default', 'c3', 'e1', proc, stdio), { message: 'id e1: already exists' });
  await s.tasks.exec('default', 'c3', 'e1b', proc, stdio);
  await s.tasks.start('default', 'c3', 'e1b');
  const shim = s.shims[0]!;
  shim.emit({ type: 'exit', exit: { pid: 100, exitStatus: 137, exitedAt: at } });
  t.equal(s.tasks.get('default', 'c3', undefined).status, 'running', 'init exit held while an exec runs');
  shim.emit({ type: 'exit', exit: { execId: 'e1b', pid: 201, exitStatus: 137, exitedAt: at } });
  const exits = s.seen.filter((e) => e.topic === '/tasks/exit').map((e) => unpackAny<{ id: string }>(e.event).id);
  t.same(exits, ['e1b', 'c3']);
  t.same(s.topics().filter((x) => x.startsWith('/tasks/exec')), ['/tasks/exec-added', '/tasks/exec-added', '/tasks/exec-started']);
});

t.test('an init exit is not held forever by an exec that never reports', async (t) => {
  const s = setup(t);
  s.mk('c4');
  await s.tasks.create('default', 'c4', createInput);
  await s.tasks.start('default', 'c4', undefined);
  await s.tasks.exec('default', 'c4', 'e', { typeUrl: 'x', value: Buffer.from('{}') }, stdio);
  await s.tasks.start('default', 'c4', 'e');
  s.shims[0]!.emit({ type: 'exit', exit: { pid: 100, exitStatus: 1, exitedAt: at } });
  const w = await s.tasks.wait('default', 'c4', undefined);
  t.equal(w.exitStatus, 1, 'released after the grace period');
});

t.test('errors with containerd wording', async (t) => {
  const s = setup(t);
  await t.rejects(s.tasks.create('default', 'nope', createInput), { code: 'NotFound', message: 'container "nope" in namespace "default": not found' });
  s.mk('c5');
  await s.tasks.create('default', 'c5', createInput);
  await t.rejects(s.tasks.create('default', 'c5', createInput), { code: 'AlreadyExists', message: 'task c5: already exists' });
  await s.tasks.start('default', 'c5', undefined);
  await t.rejects(s.tasks.delete('default', 'c5'), { code: 'FailedPrecondition' });
  t.throws(() => s.containers.delete('default', 'c5'), { code: 'FailedPrecondition' }, 'no container delete under a task');
  s.shims[0]!.emit({ type: 'exit', exit: { pid: 100, exitStatus: 0, exitedAt: at } });
  await t.rejects(s.tasks.kill('default', 'c5', undefined, 9, false), { code: 'NotFound', message: 'process already finished: not found' });
  await t.rejects(s.tasks.pause('default', 'c5'), { code: 'Internal', message: 'cannot pause a stopped container: unknown' });
  await t.rejects(s.tasks.wait('default', 'c5', 'nosuch'), { code: 'NotFound' });
  await t.rejects(s.tasks.wait('other', 'c5', undefined), { message: 'task c5 not found' });
});

t.test('a dying shim resolves the task with reapDeadShim and publishes the exit', async (t) => {
  const s = setup(t);
  s.mk('c6');
  await s.tasks.create('default', 'c6', createInput);
  await s.tasks.start('default', 'c6', undefined);
  const waiting = s.tasks.wait('default', 'c6', undefined);
  s.shims[0]!.die();
  t.equal((await waiting).exitStatus, 137);
  t.equal(s.tasks.get('default', 'c6', undefined).status, 'stopped');
  await t.rejects(s.tasks.kill('default', 'c6', undefined, 9, false), { code: 'NotFound' });
  const del = await s.tasks.delete('default', 'c6');
  t.equal(del.exitStatus, 137);
  t.notOk(s.shims[0]!.deleted, 'no call to a dead shim');
});

t.test('re-adoption: running tasks come back, missed exits are published, interrupted creates removed', async (t) => {
  const shims = new Map<string, FakeShim>();
  const live = fakeShim({ namespace: 'default', id: 'run' });
  live.states = [{ pid: 100, status: 'running', stdio }];
  const exited = fakeShim({ namespace: 'default', id: 'gone' });
  exited.states = [
    { pid: 100, status: 'stopped', stdio, exitStatus: 7, exitedAt: at },
    { execId: 'x', pid: 101, status: 'stopped', stdio, exitStatus: 1, exitedAt: at },
  ];
  const half = fakeShim({ namespace: 'default', id: 'half' });
  half.states = [{ pid: 0, status: 'unknown', stdio }];
  for (const s of [live, exited, half]) shims.set(s.dir, s);
  const s = setup(t, {
    listShimDirs: () => [
      ...[...shims.values()].map((x) => ({ namespace: x.namespace, id: x.id, dir: x.dir })),
      { namespace: 'default', id: 'dead', dir: '/fake/default/dead' },
    ],
    connectShim: async (dir) => {
      const x = shims.get(dir);
      if (x === undefined) throw new Error('connection refused');
      return x;
    },
  });
  const r = await s.tasks.adopt();
  t.same(r, { adopted: 2, dead: 1, discarded: 1 });
  t.equal(s.tasks.get('default', 'run', undefined).status, 'running');
  t.equal(s.tasks.get('default', 'gone', undefined).status, 'stopped');
  t.equal((await s.tasks.wait('default', 'gone', undefined)).exitStatus, 7);
  t.equal(s.tasks.get('default', 'dead', undefined).status, 'stopped');
  t.throws(() => s.tasks.get('default', 'half', undefined), { code: 'NotFound' });
  t.ok(half.deleted, 'the interrupted create was torn down');
  const exits = s.seen.filter((e) => e.topic === '/tasks/exit').map((e) => unpackAny<{ containerId: string; id: string }>(e.event));
  t.same(
    exits.map((e) => `${e.containerId}/${e.id}`).sort(),
    ['dead/dead', 'gone/gone', 'gone/x'],
  );
  const goneOrder = exits.filter((e) => e.containerId === 'gone').map((e) => e.id);
  t.same(goneOrder, ['x', 'gone'], 'exec exit first');
});

t.test('runtime choice: binary_name from the container or task options, else the default', async (t) => {
  const base = { namespace: 'n', id: 'i', labels: {}, image: '', spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from('{}') }, snapshotter: '', snapshotKey: '', extensions: {}, createdAt: { seconds: 0, nanos: 0 }, updatedAt: { seconds: 0, nanos: 0 } };
  const none = { ...base, runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'containerd.runc.v1.Options', value: Buffer.alloc(0) } } };
  t.same(chooseRuntime(none, null, 'library').runtime, { kind: 'library' });
  t.same(chooseRuntime(none, null, '/usr/sbin/runc').runtime, { kind: 'binary', path: '/usr/sbin/runc' });
  const withBinary = { ...base, runtime: { name: 'io.containerd.runc.v2', options: packAny('containerd.runc.v1.Options', { binaryName: 'crun', root: '/r' }) } };
  t.same(chooseRuntime(withBinary, null, 'library').runtime, { kind: 'binary', path: 'crun', root: '/r' });
  const task = packAny('containerd.runc.v1.Options', { noPivotRoot: true });
  const c = chooseRuntime(withBinary, task, 'library');
  t.equal(c.noPivot, true);
  t.same(c.runtime, { kind: 'binary', path: 'crun', root: '/r' });
});

/** A restart-policy loop over the fake shims, with the manually-stopped label as its barrier (as in tsrund). */
function withRestarts(t: { teardown(fn: () => void): void }, startDelay: number) {
  let quiesce: AfterUpdate = async () => undefined;
  const s = setup(
    t,
    {
      startShim: async (o) => {
        const shim = fakeShim(o);
        shim.startDelay = startDelay;
        const kills: number[] = [];
        shim.kill = async (signal) => {
          kills.push(signal);
        };
        Object.assign(shim, { kills });
        const del = shim.delete;
        shim.delete = async () => {
          const r = await del();
          setImmediate(() => shim.die()); // a real shim exits after answering Delete
          return r;
        };
        s.shims.push(shim);
        return shim;
      },
    },
    (ns, c) => quiesce(ns, c),
  );
  const restarts = createRestarts(s.store, s.tasks, createLogger('error'));
  quiesce = async (ns, c) => (c.labels[STOPPED_LABEL] === 'true' ? restarts.quiesce(ns, c.id) : undefined);
  restarts.start();
  t.teardown(() => restarts.stop());
  const markStopped = (id: string) => s.containers.update('default', { ...s.containers.get('default', id), labels: { [STOPPED_LABEL]: 'true' } }, [`labels.${STOPPED_LABEL}`]);
  const kills = (i: number): number[] => (s.shims[i] as unknown as { kills: number[] }).kills;
  return { ...s, restarts, markStopped, kills };
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('restart policy: marking a container stopped during the back-off cancels the restart', async (t) => {
  const s = withRestarts(t, 0);
  s.mk('r1', { [POLICY_LABEL]: 'always' });
  await s.tasks.create('default', 'r1', createInput);
  await s.tasks.start('default', 'r1', undefined);
  s.shims[0]!.emit({ type: 'exit', exit: { pid: 100, exitStatus: 0, exitedAt: at } });
  t.equal(s.containers.get('default', 'r1').labels[STATE_LABEL], 'restarting', 'back-off under way');
  await s.markStopped('r1');
  t.equal(s.containers.get('default', 'r1').labels[STATE_LABEL], undefined, 'no longer restarting once the update is answered');
  await sleepMs(300); // past the 100 ms back-off
  t.equal(s.shims.length, 1, 'no new shim');
  t.equal(s.tasks.get('default', 'r1', undefined).status, 'stopped');
});

t.test('restart policy: marking a container stopped mid-restart answers after the restart undid itself', async (t) => {
  const s = withRestarts(t, 300);
  s.mk('r2', { [POLICY_LABEL]: 'always' });
  await s.tasks.create('default', 'r2', createInput);
  s.shims[0]!.startDelay = 0;
  await s.tasks.start('default', 'r2', undefined);
  s.shims[0]!.emit({ type: 'exit', exit: { pid: 100, exitStatus: 0, exitedAt: at } });
  // after the 100 ms back-off the restart makes a new task; its Start takes 300 ms
  for (let i = 0; i < 200 && s.shims.length < 2; i++) await sleepMs(10);
  t.equal(s.shims.length, 2, 'the restart is under way');
  const t0 = Date.now();
  await s.markStopped('r2');
  t.ok(Date.now() - t0 >= 100, `the update waited for the restart (${Date.now() - t0} ms)`);
  t.same(s.kills(1), [9], 'the restarted task was killed by the restart itself');
  t.equal(s.containers.get('default', 'r2').labels[STATE_LABEL], undefined);
  await sleepMs(300);
  t.equal(s.shims.length, 2, 'nothing restarted afterwards');
});
