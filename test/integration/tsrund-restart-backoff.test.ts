/**
 * The restart policy's back-off survives a kill -9 of tsrund: a crash-looping container that had
 * reached a delay of seconds is not restarted after 100 ms again once tsrund is back (the step is
 * kept in the restarts table, as docker keeps it with the container).
 */
import t from 'tap';
import { startTsrund, tsrundMissing, type Tsrund } from '../helpers/tsrund';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing();

function labels(d: Tsrund, id: string): Record<string, string> {
  const r = d.ctr(['containers', 'info', id]);
  return (JSON.parse(r.stdout) as { Labels: Record<string, string> | null }).Labels ?? {};
}

function status(d: Tsrund, id: string): string | undefined {
  const line = d.ctr(['task', 'ls']).stdout.split('\n').find((l) => l.startsWith(`${id} `));
  return line?.trim().split(/\s+/)[2];
}

const count = (d: Tsrund, id: string): number => Number(labels(d, id)['tsctl.restart-count'] ?? 0);

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('the back-off goes on where it was after tsrund is killed and started again', async (t) => {
    const d = await startTsrund(t);
    const id = d.newId('bo');
    const r = d.ctr(['run', '-d', '--null-io', '--label', 'tsctl.restart-policy=always', ...d.runArgs(), id, '/bin/false']);
    t.equal(r.status, 0, r.stderr);
    // 100, 200, 400, 800 ms: after four restarts the next waits 1.6 s, then 3.2 s
    const reached = await waitFor(() => count(d, id) >= 4 && labels(d, id)['tsctl.restart-state'] === 'restarting', 60_000, 50);
    t.ok(reached, `crash-looping with a grown back-off (count ${count(d, id)})`);
    const before = count(d, id);
    await d.kill9();
    await d.start();
    const t0 = Date.now();
    t.ok(await waitFor(() => count(d, id) > before, 60_000, 50), 'restarted again after the tsrund restart');
    const waited = Date.now() - t0;
    // a back-off started over would restart it after ~100 ms; step ≥ 4 waits ≥ 1.6 s
    t.ok(waited >= 1500, `waited ${waited} ms: the back-off was kept`);
    t.equal(d.ctr(['containers', 'label', id, 'tsctl.manually-stopped=true']).status, 0);
    t.ok(await waitFor(() => status(d, id) === 'STOPPED' || status(d, id) === undefined, 20_000), 'down once manually stopped');
    if (status(d, id) !== undefined) t.equal(d.ctr(['task', 'delete', id]).status, 0);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });
}
