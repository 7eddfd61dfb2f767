/**
 * kill -9 at every point of Tasks.Create — of tsrund, and of the shim — with the real ctr
 * (`ctr c create` + `ctr task start -d`). The crash points are test-only (shim/crash-points.ts:
 * TSRUND_TEST_CRASH_AT makes tsrund or the shim SIGKILL itself exactly there). After each:
 *
 *   - a Create that never answered leaves no task, no /tasks/exit, no shim directory, no cgroup
 *     and no process, and `ctr task start -d ID` works at once (before the fix: a STOPPED task
 *     with pid 0 and exit 137, and `already exists`);
 *   - a Create killed after tsrund recorded the task (the answer was on its way) leaves a CREATED
 *     task that `ctr task delete --force` removes, with everything it made.
 *
 * Then a burst like an operator's: tsrund killed -9 at a random moment (bounded) while ten
 * containers are being created and started; after the restart no id has a ghost task.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { cgroupDirsFor, isAlive } from '../helpers/host';
import { startTsrund, tsrundMissing, type Tsrund } from '../helpers/tsrund';
import { sleep, waitFor } from '../helpers/wait';

const why = tsrundMissing();
const VAR = 'TSRUND_TEST_CRASH_AT';

/** Points where tsrund dies: the Create never answers, tsrund is started again. */
const TSRUND_POINTS = ['create:before-shim', 'create:shim-dir', 'create:shim-started', 'create:container-created'] as const;
/** Points where the shim dies: tsrund stays up and answers the Create with an error. */
const SHIM_POINTS = ['shim:create', 'shim:created'] as const;

function tasksOf(d: Tsrund): Map<string, { pid: number; status: string }> {
  const out = new Map<string, { pid: number; status: string }>();
  for (const line of d.ctr(['task', 'ls']).stdout.split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (id !== undefined && id !== '' && pid !== undefined && status !== undefined) out.set(id, { pid: Number(pid), status });
  }
  return out;
}

/** Start tsrund again with (or without) a crash point in its environment (its shims inherit it). */
async function restart(d: Tsrund, point: string | undefined): Promise<void> {
  await d.kill9();
  if (point === undefined) delete process.env[VAR];
  else process.env[VAR] = point;
  try {
    await d.start();
  } finally {
    delete process.env[VAR];
  }
}

/** What is left of `id` on the host: its shim directory, its cgroups. */
function leftovers(d: Tsrund, id: string): string[] {
  const out: string[] = [];
  const dir = path.join(d.shimRoot, d.ns, id);
  if (fs.existsSync(dir)) out.push(`shim dir ${dir}: ${fs.readdirSync(dir).join(',')}`);
  for (const nsCg of cgroupDirsFor(d.ns)) if (fs.existsSync(path.join(nsCg, id))) out.push(`cgroup ${path.join(nsCg, id)}`);
  return out;
}

/** Start the task, check it runs, then kill and delete it and the container, leaving nothing. */
async function startsAndCleans(t: Test, d: Tsrund, id: string, what: string): Promise<void> {
  const r = d.ctr(['task', 'start', '-d', '--fifo-dir', d.fifoDir, id]);
  t.equal(r.status, 0, `${what}: ctr task start -d works (${r.stderr.trim()})`);
  t.equal(tasksOf(d).get(id)?.status, 'RUNNING', `${what}: running`);
  d.ctr(['task', 'kill', '-s', 'KILL', id]);
  t.ok(await waitFor(() => tasksOf(d).get(id)?.status === 'STOPPED', 20_000), `${what}: stopped`);
  t.equal(d.ctr(['task', 'delete', id]).status, 0, `${what}: deleted`);
  t.equal(d.ctr(['containers', 'rm', id]).status, 0, `${what}: container removed`);
  t.ok(await waitFor(() => leftovers(d, id).length === 0, 10_000), `${what}: nothing left (${leftovers(d, id).join('; ')})`);
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('kill -9 of tsrund at each point of Tasks.Create', async (t) => {
    const d = await startTsrund(t);
    for (const point of TSRUND_POINTS) {
      await restart(d, point);
      const pid = d.pid;
      const id = d.newId('crash');
      t.equal(d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/sleep', '1000']).status, 0, `${point}: container created`);
      const r = d.ctr(['task', 'start', '-d', '--fifo-dir', d.fifoDir, id]);
      t.not(r.status, 0, `${point}: the Create did not answer`);
      t.ok(await waitFor(() => !isAlive(pid), 10_000), `${point}: tsrund died there`);
      t.match(d.log(), `${VAR}: crashing at ${point}`, `${point}: at that point`);
      await restart(d, undefined);
      const events = d.ctrSpawn(['events']);
      let evOut = '';
      events.stdout!.setEncoding('utf8').on('data', (s: string) => (evOut += s));
      t.equal(tasksOf(d).get(id), undefined, `${point}: no task after the restart`);
      t.same(leftovers(d, id), [], `${point}: nothing left behind`);
      await startsAndCleans(t, d, id, point);
      // the restart's replayed events (5 s backlog) reach a subscriber at once: none is about this id's exit before its start
      events.kill('SIGKILL');
      const ghost = evOut.split('\n').filter((l) => l.includes('/tasks/exit') && l.includes(`"${id}"`) && l.includes('"pid":0'));
      t.same(ghost, [], `${point}: no exit event for the task that never ran`);
    }
  });

  t.test('kill -9 of tsrund after the task was recorded: a CREATED task that ctr task delete --force cleans', async (t) => {
    const d = await startTsrund(t);
    await restart(d, 'create:recorded');
    const id = d.newId('rec');
    t.equal(d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/sleep', '1000']).status, 0);
    t.not(d.ctr(['task', 'start', '-d', '--fifo-dir', d.fifoDir, id]).status, 0, 'the Create did not answer');
    await restart(d, undefined);
    t.equal(tasksOf(d).get(id)?.status, 'CREATED', 'the recorded task is adopted');
    // ctr deletes only STOPPED tasks unless --force (which kills first), with containerd too
    const del = d.ctr(['task', 'delete', '--force', id]);
    t.equal(del.status, 0, `ctr task delete --force removes it (${del.stderr.trim()})`);
    t.ok(await waitFor(() => leftovers(d, id).length === 0, 10_000), `nothing left (${leftovers(d, id).join('; ')})`);
    await startsAndCleans(t, d, id, 'create:recorded');
  });

  t.test('kill -9 of the Node shim at each point of its create', async (t) => {
    // the crash points are the Node shim's (shim/crash-points.ts); the native shim has none
    const d = await startTsrund(t, ['--shim', 'node']);
    for (const point of SHIM_POINTS) {
      // the shim inherits the point
      await restart(d, point);
      const id = d.newId('shimcrash');
      t.equal(d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/sleep', '1000']).status, 0);
      const r = d.ctr(['task', 'start', '-d', '--fifo-dir', d.fifoDir, id]);
      t.not(r.status, 0, `${point}: the Create failed`);
      t.notMatch(r.stderr, /already exists|unavailable/, `${point}: ${r.stderr.trim()}`);
      t.equal(tasksOf(d).get(id), undefined, `${point}: no task`);
      t.ok(await waitFor(() => leftovers(d, id).length === 0, 10_000), `${point}: nothing left (${leftovers(d, id).join('; ')})`);
      await restart(d, undefined);
      t.equal(tasksOf(d).get(id), undefined, `${point}: still no task after a tsrund restart`);
      await startsAndCleans(t, d, id, point);
    }
  });

  t.test('kill -9 of tsrund at a random moment of a burst of creates: no ghost task', async (t) => {
    const d = await startTsrund(t);
    for (let round = 1; round <= 3; round++) {
      const ids = Array.from({ length: 10 }, () => d.newId(`burst${round}-`));
      const burst = ids.map(async (id) => {
        await d.ctrAsync(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/sleep', '1000'], { timeoutMs: 60_000 });
        await d.ctrAsync(['task', 'start', '-d', '--fifo-dir', d.fifoDir, id], { timeoutMs: 60_000 });
      });
      await sleep(200 + Math.floor(Math.random() * 1500)); // bounded random moment inside the burst
      await d.kill9();
      await Promise.all(burst);
      await restart(d, undefined);
      const tasks = tasksOf(d);
      const containers = new Set(d.ctr(['containers', 'ls', '-q']).stdout.split('\n').filter((x) => x !== ''));
      for (const id of ids) {
        const task = tasks.get(id);
        t.ok(task === undefined || task.status === 'RUNNING' || task.status === 'CREATED', `round ${round} ${id}: ${task === undefined ? 'no task' : task.status}`);
        t.not(task?.pid, 0, `round ${round} ${id}: no pid-0 task`);
        if (!containers.has(id)) {
          t.same(leftovers(d, id), [], `round ${round} ${id}: no container, nothing left`);
          continue;
        }
        if (task === undefined) {
          await startsAndCleans(t, d, id, `round ${round} ${id}`);
          continue;
        }
        d.ctr(['task', 'kill', '-s', 'KILL', id]);
        await waitFor(() => tasksOf(d).get(id)?.status === 'STOPPED', 20_000);
        t.equal(d.ctr(['task', 'delete', id]).status, 0, `round ${round} ${id}: deleted`);
        t.equal(d.ctr(['containers', 'rm', id]).status, 0);
        t.ok(await waitFor(() => leftovers(d, id).length === 0, 10_000), `round ${round} ${id}: nothing left (${leftovers(d, id).join('; ')})`);
      }
    }
  });
}
