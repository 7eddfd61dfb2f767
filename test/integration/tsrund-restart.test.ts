/**
 * tsrund restarts and dies: kill -9 of tsrund in the middle of load (containers starting,
 * running, exiting) and a restart on the same directories — no container restarted, no exit
 * lost; kill -9 of a shim — the task is reported stopped and its exit published.
 */
import * as fs from 'node:fs';
import t from 'tap';
import { connectTsrund, type TsrundClient } from '../../supervisor/client';
import { isAlive } from '../helpers/host';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { sleep, waitFor } from '../helpers/wait';

const why = tsrundMissing();
const show = (r: CtrResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;

function taskTable(d: Tsrund): Map<string, { pid: number; status: string }> {
  const out = new Map<string, { pid: number; status: string }>();
  for (const line of d.ctr(['task', 'ls']).stdout.split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (id !== undefined && id !== '' && pid !== undefined && status !== undefined) out.set(id, { pid: Number(pid), status });
  }
  return out;
}

/** Kill and delete every task, remove every container of the sandbox namespace. */
async function cleanAll(d: Tsrund, c: TsrundClient): Promise<void> {
  for (const [id, task] of taskTable(d)) {
    if (task.status !== 'STOPPED') d.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]);
  }
  await waitFor(() => [...taskTable(d).values()].every((x) => x.status === 'STOPPED'), 20_000);
  for (const id of taskTable(d).keys()) await c.call('Tasks', 'Delete', { containerId: id }).catch(() => undefined);
  for (const id of d.ctr(['containers', 'ls', '-q']).stdout.split('\n').filter((x) => x !== '')) d.ctr(['containers', 'rm', id]);
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('kill -9 of tsrund mid-load, then restart: nothing restarted, no exit lost', async (t) => {
    const d = await startTsrund(t);
    let c = connectTsrund(d.socket, { namespace: d.ns });
    t.teardown(() => c.close());

    const runners = Array.from({ length: 4 }, () => d.newId('run'));
    const exiters = Array.from({ length: 4 }, () => d.newId('exit'));
    for (const id of runners) t.equal(d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']).status, 0, `${id} started`);
    exiters.forEach((id, i) => {
      const r = d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sh', '-c', `sleep ${2 + i * 0.5}; exit ${10 + i}`]);
      t.equal(r.status, 0, `${id} started (${show(r)})`);
    });
    // more load in flight: attached runs being created while tsrund dies
    const inFlight = Array.from({ length: 3 }, () => d.newId('flight'));
    const flights = inFlight.map((id) => d.ctrAsync(['run', '--rm', ...d.runArgs(), id, '/bin/sleep', '1000'], { timeoutMs: 60_000 }));
    await sleep(150);
    const before = taskTable(d);
    await d.kill9();
    t.ok(d.shimPids().length >= runners.length + exiters.length, 'shims outlive tsrund');
    await Promise.all(flights);
    await sleep(4000); // the exiters exit while tsrund is down

    await d.start();
    c.close();
    c = connectTsrund(d.socket, { namespace: d.ns });
    const events = d.ctrSpawn(['events', 'topic=="/tasks/exit"']);
    let evOut = '';
    events.stdout!.setEncoding('utf8').on('data', (s: string) => (evOut += s));

    const after = taskTable(d);
    for (const id of runners) {
      t.equal(after.get(id)?.status, 'RUNNING', `${id} still RUNNING`);
      t.equal(after.get(id)?.pid, before.get(id)?.pid, `${id} has the same pid`);
      t.ok(isAlive(after.get(id)?.pid ?? 0), `${id} process alive`);
    }
    for (const [i, id] of exiters.entries()) {
      t.equal(after.get(id)?.status, 'STOPPED', `${id} STOPPED after the restart`);
      const w = await c.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: id }, { timeoutMs: 5000 });
      t.equal(w.exitStatus, 10 + i, `Wait on ${id} returns its exit status`);
    }
    for (const id of inFlight) {
      const task = after.get(id);
      if (task !== undefined) t.ok(['RUNNING', 'CREATED', 'STOPPED'].includes(task.status), `in-flight ${id} has a task (${task.status})`);
    }
    t.ok(await waitFor(() => exiters.every((id) => evOut.includes(`"container_id":"${id}"`)), 5000), `/tasks/exit published for every exit missed (${evOut})`);
    events.kill('SIGTERM');

    // the re-adopted tasks are fully usable
    const r = d.ctr(['task', 'exec', '--fifo-dir', d.fifoDir, '--exec-id', 'after', runners[0]!, '/bin/sh', '-c', 'echo back']);
    t.equal(r.stdout, 'back\n', `exec into a re-adopted task (${show(r)})`);
    const killed = c.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: runners[1]! });
    t.equal(d.ctr(['task', 'kill', '-s', 'SIGKILL', runners[1]!]).status, 0);
    t.equal((await killed).exitStatus, 137, 'Wait on a re-adopted task sees its exit');
    await cleanAll(d, c);
    t.equal(d.ctr(['task', 'ls', '-q']).stdout, '');
    t.ok(await waitFor(() => d.shimPids().length === 0, 15_000), 'every shim exited after delete');
  });

  t.test('kill -9 of a shim: the task is stopped, its exit published, the container reaped', async (t) => {
    const d = await startTsrund(t);
    const c = connectTsrund(d.socket, { namespace: d.ns });
    t.teardown(() => c.close());
    const id = d.newId('shim');
    t.equal(d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']).status, 0);
    const pid = taskTable(d).get(id)?.pid ?? 0;
    const events = d.ctrSpawn(['events']);
    let evOut = '';
    events.stdout!.setEncoding('utf8').on('data', (s: string) => (evOut += s));
    await sleep(300);
    const waiting = c.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: id });
    const shims = d.shimPids();
    t.equal(shims.length, 1, 'one shim');
    process.kill(shims[0]!, 'SIGKILL');
    const w = await waiting;
    t.ok(w.exitStatus !== 0, `Wait returns a failure status (${w.exitStatus})`);
    t.equal(taskTable(d).get(id)?.status, 'STOPPED', 'task STOPPED');
    t.ok(await waitFor(() => !isAlive(pid), 10_000), 'the container process is gone');
    t.ok(await waitFor(() => evOut.includes('/tasks/exit'), 5000), 'exit published');
    events.kill('SIGTERM');
    t.equal(d.ctr(['task', 'delete', id]).status, 0, 'the dead task can be deleted');
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
    t.equal(d.ctr(['task', 'ls', '-q']).stdout, '');
  });

  t.test('a shim killed while tsrund is down is reaped and reported at restart', async (t) => {
    const d = await startTsrund(t);
    const id = d.newId('down');
    t.equal(d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']).status, 0);
    const pid = taskTable(d).get(id)?.pid ?? 0;
    await d.kill9();
    for (const s of d.shimPids()) process.kill(s, 'SIGKILL');
    await d.start();
    const task = taskTable(d).get(id);
    t.equal(task?.status, 'STOPPED', 'reported STOPPED, never RUNNING forever');
    t.ok(await waitFor(() => !isAlive(pid), 10_000), 'the orphaned container was killed');
    t.equal(d.ctr(['task', 'delete', id]).status, 0);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });

  t.test('the socket refuses non-root callers', async (t) => {
    const d = await startTsrund(t);
    const { spawnSync } = await import('node:child_process');
    const asNobody = (): ReturnType<typeof spawnSync> =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ctr', '--address', d.socket, '--timeout', '3s', 'version'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    t.equal((fs.statSync(d.socket).mode & 0o777).toString(8), '600', 'socket mode 0600');
    let r = asNobody();
    t.not(r.status, 0, 'nobody cannot use the socket');
    // even with the file permissions opened up, SO_PEERCRED refuses the caller
    fs.chmodSync(d.sandbox, 0o711);
    fs.chmodSync(d.socket, 0o666);
    r = asNobody();
    t.not(r.status, 0, `nobody is refused by the peer check (${String(r.stderr)})`);
    t.ok(await waitFor(() => /connection refused uid=65534/.test(d.log()), 5000), 'tsrund logs the refused uid');
    t.equal(d.ctr(['version']).status, 0, 'root still can');
  });
}
