/**
 * The restart policy's back-off survives a kill -9 of tsrund: a crash-looping container that had
 * reached a delay of seconds is not restarted after 100 ms again once tsrund is back (the step is
 * kept in the restarts table, as docker keeps it with the container). And a tsrund killed in the
 * middle of a restart — the exited task deleted, the new one not made — finishes it on its next
 * start instead of leaving a container without a task.
 */
import t from 'tap';
import { status as grpcStatus } from '@grpc/grpc-js';
import { connectTsrund, RpcError } from '../../supervisor/client';
import { containerLabels, startTsrund, taskStatusOf, tsrundMissing, type Tsrund } from '../helpers/tsrund';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing();

const labels = containerLabels;
const status = taskStatusOf;

const count = (d: Tsrund, id: string): number => Number(labels(d, id)['tsctl.restart-count'] ?? 0);

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('the back-off goes on where it was after tsrund is killed and started again', async (t) => {
    const d = await startTsrund(t);
    const id = d.newId('bo');
    const r = d.ctr(['run', '-d', '--null-io', '--label', 'tsctl.restart-policy=always', ...d.runArgs(), id, '/bin/false']);
    t.equal(r.status, 0, r.stderr);
    // 100, 200, 400, 800, 1600, 3200 ms: after six restarts the next waits 6.4 s. Watched from
    // before, the exit after the sixth restart is seen early in that wait: kill tsrund then, while
    // the exited task waits (not in the middle of a restart).
    const reached = await waitFor(
      () => count(d, id) >= 6 && labels(d, id)['tsctl.restart-state'] === 'restarting' && status(d, id) === 'STOPPED',
      120_000,
      50,
    );
    t.ok(reached, `crash-looping with a grown back-off (count ${count(d, id)})`);
    const before = count(d, id);
    const first = connectTsrund(d.socket, { namespace: d.ns });
    const exitedPid = (await first.call<{ process: { pid: number } }>('Tasks', 'Get', { containerId: id })).process.pid;
    first.close();
    t.ok(exitedPid > 0, `the exited task waits for its restart (pid ${exitedPid})`);
    await d.kill9();
    await d.start();
    const t0 = Date.now();
    // The policy deletes the exited task when the back-off ends (then creates and starts a new
    // one, which takes its own time): watch for that moment through the API, every 20 ms.
    const c = connectTsrund(d.socket, { namespace: d.ns });
    t.teardown(() => c.close());
    const gone = await waitFor(
      async () => {
        try {
          const r = await c.call<{ process: { pid: number } }>('Tasks', 'Get', { containerId: id });
          return r.process.pid !== exitedPid;
        } catch (e) {
          return e instanceof RpcError && e.code === grpcStatus.NOT_FOUND;
        }
      },
      60_000,
      20,
    );
    const waited = Date.now() - t0;
    t.ok(gone, 'the policy acted after the tsrund restart');
    // a back-off started over acts after 100 ms; the kept step (≥ 6) waits ≥ 6.4 s
    t.ok(waited >= 3000, `waited ${waited} ms: the back-off was kept`);
    t.ok(await waitFor(() => count(d, id) > before, 60_000, 50), 'restarted again');
    t.equal(d.ctr(['containers', 'label', id, 'tsctl.manually-stopped=true']).status, 0);
    t.ok(await waitFor(() => status(d, id) === 'STOPPED' || status(d, id) === undefined, 20_000), 'down once manually stopped');
    if (status(d, id) !== undefined) t.equal(d.ctr(['task', 'delete', id]).status, 0);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });

  t.test('a restart that tsrund was killed in the middle of is finished on its next start', async (t) => {
    const VAR = 'TSRUND_TEST_CRASH_AT';
    process.env[VAR] = 'restart:task-deleted';
    t.teardown(() => {
      delete process.env[VAR];
    });
    const d = await startTsrund(t);
    delete process.env[VAR];
    const id = d.newId('mid');
    const r = d.ctr(['run', '-d', '--null-io', '--label', 'tsctl.restart-policy=always', ...d.runArgs(), id, '/bin/sh', '-c', 'sleep 0.3']);
    t.equal(r.status, 0, r.stderr);
    t.ok(await waitFor(() => d.log().includes('crashing at restart:task-deleted'), 30_000), 'tsrund died between the delete and the create');
    await d.kill9(); // reaps it
    await d.start();
    t.ok(await waitFor(() => count(d, id) >= 1, 30_000), `the restart was finished (count ${count(d, id)})`);
    t.match(d.log(), /finishing a restart that a stopped tsrund left without a task/);
    t.equal(d.ctr(['containers', 'label', id, 'tsctl.manually-stopped=true']).status, 0);
    t.ok(await waitFor(() => status(d, id) === 'STOPPED' || status(d, id) === undefined, 20_000), 'down once manually stopped');
    if (status(d, id) !== undefined) t.equal(d.ctr(['task', 'delete', id]).status, 0);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });
}
