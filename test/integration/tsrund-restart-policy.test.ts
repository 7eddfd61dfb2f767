/**
 * tsctl restart policies run by tsrund: containers labelled tsctl.restart-policy are restarted
 * with back-off, on-failure:N stops after N restarts, tsctl.manually-stopped keeps them down.
 */
import t from 'tap';
import { containerLabels, startTsrund, taskStatusOf, tsrundMissing, type Tsrund } from '../helpers/tsrund';
import { sleep, waitFor } from '../helpers/wait';

const why = tsrundMissing();

const labels = containerLabels;
const status = taskStatusOf;

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('on-failure:2 restarts twice then leaves the container stopped', async (t) => {
    const d = await startTsrund(t);
    const id = d.newId('pol');
    const r = d.ctr(['run', '-d', '--null-io', '--label', 'tsctl.restart-policy=on-failure:2', ...d.runArgs(), id, '/bin/sh', '-c', 'sleep 0.2; exit 1']);
    t.equal(r.status, 0, r.stderr);
    t.ok(await waitFor(() => labels(d, id)['tsctl.restart-count'] === '2', 20_000), 'restarted twice');
    t.ok(await waitFor(() => status(d, id) === 'STOPPED', 5000), 'stopped after the second restart');
    // The window under test: a third restart would come within the back-off (100, 200, 400 ms…)
    // plus a start, so nothing happening for 1.5 s after the stop is the assertion, not a wait.
    await sleep(1500);
    t.equal(labels(d, id)['tsctl.restart-count'], '2', 'not a third time');
    t.equal(status(d, id), 'STOPPED', 'stopped at the end');
    t.equal(d.ctr(['task', 'delete', id]).status, 0);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });

  t.test('always restarts a clean exit; manually-stopped keeps it down', async (t) => {
    const d = await startTsrund(t);
    const id = d.newId('alw');
    const r = d.ctr(['run', '-d', '--null-io', '--label', 'tsctl.restart-policy=always', ...d.runArgs(), id, '/bin/sh', '-c', 'sleep 0.3']);
    t.equal(r.status, 0, r.stderr);
    t.ok(await waitFor(() => Number(labels(d, id)['tsctl.restart-count'] ?? 0) >= 2, 20_000), 'restarted after clean exits');
    t.equal(d.ctr(['containers', 'label', id, 'tsctl.manually-stopped=true']).status, 0);
    // A run already under way when the label landed ends by itself (sleep 0.3): stopped is the signal.
    t.ok(await waitFor(() => status(d, id) === 'STOPPED', 5000), 'the last run ended');
    const count = labels(d, id)['tsctl.restart-count'];
    // The window under test: a third restart would come within the back-off (100, 200, 400 ms…)
    // plus a start, so nothing happening for 1.5 s after that is the assertion, not a wait.
    await sleep(1500);
    t.equal(labels(d, id)['tsctl.restart-count'], count, 'no more restarts once manually stopped');
    t.equal(status(d, id), 'STOPPED');
    t.equal(d.ctr(['task', 'delete', id]).status, 0);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });
}
