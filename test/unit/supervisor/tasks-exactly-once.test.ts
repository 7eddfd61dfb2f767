/**
 * Task operations under races and crashes, over a fake shim that behaves like the real one where
 * it matters: Delete answers once and then the shim's connection closes (later calls fail with
 * Unavailable, as a closed connection does). Concurrent Deletes → one success, one /tasks/delete,
 * NotFound for the rest; interrupted creates leave no task and no event; the restart back-off is
 * kept in the store.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProcessExit, ProcessState, ShimConnection, ShimDirEntry, ShimEvent } from '../../../shim/api';
import { TsrunError } from '../../../spec/errors';
import { createContainers } from '../../../supervisor/containers/local';
import { createExchange, type Envelope } from '../../../supervisor/events/exchange';
import { parseFilters } from '../../../supervisor/events/filters';
import { createLogger } from '../../../supervisor/log';
import { SPEC_TYPE_URL } from '../../../supervisor/proto/index';
import { backoffMs, nextBackoffStep } from '../../../supervisor/restart/policy';
import { openStore, type Store } from '../../../supervisor/store/db';
import { createTasks, type ShimDriver } from '../../../supervisor/tasks/local';

const stdio = { stdin: '', stdout: '', stderr: '', terminal: false };
const at = '2024-01-01T00:00:00.000000001Z';
const createInput = { stdio, options: null, rootfsMounts: 0, checkpoint: false };

interface Fake extends ShimConnection {
  emit(e: ShimEvent): void;
  states: ProcessState[];
  deletes: number;
  closed: boolean;
}

/** A shim whose connection closes after it answered delete; calls on a closed one fail Unavailable. */
function fake(namespace: string, id: string, dir: string): Fake {
  const events: Array<(e: ShimEvent) => void> = [];
  const closes: Array<() => void> = [];
  const close = (): void => {
    if (f.closed) return;
    f.closed = true;
    for (const l of closes) l();
  };
  const live = async <T>(v: T, ms = 1): Promise<T> => {
    if (f.closed) throw new TsrunError('Unavailable', `shim ${dir}: connection closed`);
    await new Promise((r) => setTimeout(r, ms));
    if (f.closed) throw new TsrunError('Unavailable', `shim ${dir}: connection closed`);
    return v;
  };
  let exited = false;
  const f: Fake = {
    namespace,
    id,
    dir,
    shimPid: 0,
    states: [],
    deletes: 0,
    closed: false,
    emit: (e) => events.forEach((l) => l(e)),
    create: () => live({ pid: 100 }),
    start: () => live({ pid: 100 }),
    wait: () => live({ pid: 100, exitStatus: 137, exitedAt: at }),
    state: () => live({ pid: 100, status: 'running', stdio } as ProcessState),
    list: () => live(f.states),
    async kill() {
      await live(undefined);
      if (exited) throw new TsrunError('NotFound', 'process already finished: not found');
      exited = true;
      setTimeout(() => f.emit({ type: 'exit', exit: { pid: 100, exitStatus: 137, exitedAt: at } }), 2);
    },
    exec: () => live(undefined),
    resizePty: () => live(undefined),
    closeStdin: () => live(undefined),
    pause: () => live(undefined),
    resume: () => live(undefined),
    pids: () => live([{ pid: 100 }]),
    stats: () => live({}),
    update: () => live(undefined),
    deleteProcess: (execId) => live({ execId, pid: 200, exitStatus: 0, exitedAt: at }),
    async delete() {
      const r = await live({ pid: 100, exitStatus: 137, exitedAt: at } as ProcessExit, 5);
      f.deletes++;
      setImmediate(close); // the real shim exits after answering delete
      return r;
    },
    onEvent: (l) => events.push(l),
    onClose: (l) => (f.closed ? queueMicrotask(l) : closes.push(l)),
    close,
  };
  return f;
}

function world(t: { teardown(fn: () => void): void }, root: string, driverPatch: Partial<ShimDriver> = {}) {
  const store = openStore(path.join(root, 'meta'));
  t.teardown(() => store.close());
  const events = createExchange();
  const seen: Envelope[] = [];
  events.subscribe({ filter: parseFilters([]), send: (e) => seen.push(e) });
  const shims: Fake[] = [];
  const reaped: string[] = [];
  const driver: ShimDriver = {
    startShim: async (o) => {
      const s = fake(o.namespace, o.id, path.join(o.stateRoot, o.namespace, o.id));
      shims.push(s);
      return s;
    },
    connectShim: async () => {
      throw new TsrunError('NotFound', 'no shim');
    },
    listShimDirs: () => [],
    reapDeadShim: async (dir) => {
      reaped.push(dir);
      return { pid: 0, exitStatus: 137, exitedAt: at };
    },
    ...driverPatch,
  };
  const shimRoot = path.join(root, 'shims');
  const tasks = createTasks(store, events, driver, { shimRoot, defaultRuntime: 'library', shimBinary: undefined, execGraceMs: 50 }, createLogger('error'));
  const containers = createContainers(store, events, (ns, id) => tasks.hasTask(ns, id));
  const mk = (id: string) =>
    containers.create('default', {
      id,
      labels: {},
      image: '',
      runtime: { name: 'io.containerd.runc.v2', options: null },
      spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from('{}') },
      snapshotter: '',
      snapshotKey: '',
      extensions: {},
    });
  const count = (topic: string) => seen.filter((e) => e.topic === topic).length;
  return { store, tasks, shims, seen, reaped, mk, count, shimRoot };
}

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-once-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Outcome = { ok: true } | { ok: false; code: string; message: string };
const outcome = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    () => ({ ok: true }) as const,
    (e: unknown) => ({ ok: false, code: e instanceof TsrunError ? e.code : 'thrown', message: e instanceof Error ? e.message : String(e) }),
  );

t.test('40 concurrent kill+delete of one task: one delete succeeds, one /tasks/delete, the rest NotFound', async (t) => {
  const w = world(t, tempRoot(t));
  for (let round = 0; round < 5; round++) {
    const id = `k${round}`;
    w.mk(id);
    await w.tasks.create('default', id, createInput);
    await w.tasks.start('default', id, undefined);
    const before = w.count('/tasks/delete');
    const results = await Promise.all(
      Array.from({ length: 40 }, async () => {
        await outcome(w.tasks.kill('default', id, undefined, 9, false));
        // ctr refuses to send Delete for a running task; the race is between the Deletes
        for (let i = 0; i < 100 && w.tasks.hasTask('default', id) && w.tasks.get('default', id, undefined).status === 'running'; i++) {
          await new Promise((r) => setTimeout(r, 2));
        }
        return outcome(w.tasks.delete('default', id));
      }),
    );
    const wins = results.filter((r) => r.ok);
    t.equal(wins.length, 1, `round ${round}: exactly one delete succeeded`);
    const losers = results.filter((r): r is Extract<Outcome, { ok: false }> => !r.ok);
    t.same([...new Set(losers.map((l) => `${l.code}: ${l.message}`))], [`NotFound: task ${id} not found`], `round ${round}: the others NotFound`);
    t.equal(w.count('/tasks/delete') - before, 1, `round ${round}: one /tasks/delete`);
    t.equal(w.shims[round]!.deletes, 1, `round ${round}: the shim was asked once`);
  }
});

t.test('Start, Kill, Exec queued behind a Delete answer NotFound, never Unavailable', async (t) => {
  const w = world(t, tempRoot(t));
  w.mk('q1');
  await w.tasks.create('default', 'q1', createInput);
  const del = w.tasks.delete('default', 'q1');
  const others = await Promise.all([
    outcome(w.tasks.start('default', 'q1', undefined)),
    outcome(w.tasks.kill('default', 'q1', undefined, 9, false)),
    outcome(w.tasks.exec('default', 'q1', 'e1', { typeUrl: 'x', value: Buffer.from('{}') }, stdio)),
    outcome(w.tasks.pause('default', 'q1')),
    outcome(w.tasks.update('default', 'q1', { typeUrl: 'x', value: Buffer.from('{}') })),
  ]);
  t.equal((await del).exitStatus, 137);
  t.same(others.map((o) => (o.ok ? 'ok' : o.code)), ['NotFound', 'NotFound', 'NotFound', 'NotFound', 'NotFound']);
  t.equal(w.count('/tasks/delete'), 1);
});

t.test('a shim that dies under Delete is reaped and the Delete completes', async (t) => {
  const w = world(t, tempRoot(t));
  w.mk('d1');
  await w.tasks.create('default', 'd1', createInput);
  w.shims[0]!.delete = async () => {
    w.shims[0]!.close();
    throw new TsrunError('Unavailable', 'connection closed');
  };
  const r = await w.tasks.delete('default', 'd1');
  t.equal(r.exitStatus, 137);
  t.same(w.reaped, [w.shims[0]!.dir]);
  t.equal(w.count('/tasks/delete'), 1);
  t.throws(() => w.tasks.get('default', 'd1', undefined), { code: 'NotFound' });
});

t.test('a Create whose shim dies is cleaned up, and the id can be created again', async (t) => {
  let dies = true;
  const w = world(t, tempRoot(t), {
    startShim: async (o) => {
      const s = fake(o.namespace, o.id, path.join(o.stateRoot, o.namespace, o.id));
      if (dies) {
        dies = false;
        // killed in the middle of create: the connection closes, delete cannot be asked either
        s.create = async () => {
          s.close();
          throw new TsrunError('Unavailable', `shim ${s.dir}: connection closed`);
        };
      }
      w.shims.push(s);
      return s;
    },
  });
  w.mk('c1');
  await t.rejects(w.tasks.create('default', 'c1', createInput), { code: 'Internal', message: /the shim exited during create/ });
  t.same(w.reaped, [w.shims[0]!.dir], 'what the shim left was reaped');
  t.equal(w.count('/tasks/create'), 0);
  await w.tasks.create('default', 'c1', createInput);
  t.equal(w.tasks.get('default', 'c1', undefined).status, 'created');
});

t.test('re-adoption: shims of Creates that never answered leave no task and no event', async (t) => {
  const root = tempRoot(t);
  // a first tsrund life: one task created (its marker written), then tsrund "dies"
  const first = world(t, root);
  first.mk('kept');
  await first.tasks.create('default', 'kept', createInput);
  const shimRoot = first.shimRoot;
  const dirOf = (id: string) => path.join(shimRoot, 'default', id);
  const kept = fake('default', 'kept', dirOf('kept'));
  kept.states = [{ pid: 100, status: 'running', stdio }];
  // a shim that made its container but tsrund died before answering: no marker
  const made = fake('default', 'made', dirOf('made'));
  made.states = [{ pid: 101, status: 'created', stdio }];
  // a shim still creating when tsrund comes back, done a little later
  const late = fake('default', 'late', dirOf('late'));
  late.states = [{ pid: 0, status: 'created', stdio }];
  setTimeout(() => (late.states = [{ pid: 102, status: 'created', stdio }]), 60);
  const live = new Map([kept, made, late].map((s) => [s.dir, s]));
  const entries: ShimDirEntry[] = [...live.values(), { dir: dirOf('nosock') }].map((s) => ({ namespace: 'default', id: path.basename(s.dir), dir: s.dir }));
  const second = world(t, root, {
    listShimDirs: () => entries,
    connectShim: async (dir) => {
      const s = live.get(dir);
      if (s === undefined) throw new TsrunError('NotFound', `connect to shim ${dir}: no such file`);
      return s;
    },
  });
  const r = await second.tasks.adopt();
  t.same(r, { adopted: 1, dead: 0, discarded: 3 });
  t.equal(second.tasks.get('default', 'kept', undefined).status, 'running');
  for (const id of ['made', 'late', 'nosock']) t.notOk(second.tasks.hasTask('default', id), `${id}: no task`);
  t.equal(made.deletes, 1, 'the created container was deleted through its shim');
  t.equal(late.deletes, 1, 'the late create was let finish, then deleted');
  t.same(second.reaped, [dirOf('nosock')], 'the shim dir without a shim was reaped');
  t.same(second.seen.map((e) => e.topic), [], 'no event at all');
  second.mk('nosock');
  await second.tasks.create('default', 'nosock', createInput);
  t.equal(second.tasks.get('default', 'nosock', undefined).status, 'created', 'the id can be created again');
});

t.test('the restart back-off is kept across a reopening of the store (a tsrund restart)', async (t) => {
  const root = tempRoot(t);
  let store: Store = openStore(root);
  const now = 1_700_000_000_000;
  const exitAt = (i: number) => `2024-01-01T00:00:0${i}Z`;
  const steps: number[] = [];
  for (let i = 0; i < 4; i++) {
    steps.push(nextBackoffStep(store, 'n', 'c', i, 1, exitAt(i), now + i * 100));
    store.putRestart({ ...store.getRestart('n', 'c')!, startedAt: now + i * 100 });
  }
  t.same(steps, [0, 1, 2, 3]);
  store.close();
  store = openStore(root);
  t.teardown(() => store.close());
  t.equal(nextBackoffStep(store, 'n', 'c', 4, 1, exitAt(3), now + 450), 3, 'the last exit published again after the restart is not counted twice');
  const after = nextBackoffStep(store, 'n', 'c', 4, 1, exitAt(4), now + 500);
  t.equal(after, 4, 'the back-off goes on after the restart');
  t.equal(backoffMs(after), 1600);
  store.putRestart({ ...store.getRestart('n', 'c')!, startedAt: now + 600 });
  t.equal(nextBackoffStep(store, 'n', 'c', 5, 1, exitAt(5), now + 600 + 10_000), 0, 'a healthy run starts the back-off over');
});
