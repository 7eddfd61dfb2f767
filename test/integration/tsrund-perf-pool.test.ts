/**
 * tsrund's fast paths, functionally (no timings: speed is measured by `make bench`): the pool of
 * warm shims (--shim-pool) and containers sharing one shim by the io.tsrun.shim-group label —
 * output, exit codes, exec, delete one of a group, re-adoption after kill -9 of tsrund, and that
 * idle warm shims and emptied group shims go away.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { allPids, cmdline, isAlive, ppidOf } from '../helpers/host';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing();
const GROUP = 'io.tsrun.shim-group';
const show = (r: CtrResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;

/** The pid in a container's shim.pid. */
function shimPidOf(d: Tsrund, id: string): number {
  return Number(fs.readFileSync(path.join(d.shimRoot, d.ns, id, 'shim.pid'), 'utf8').trim());
}

/** Idle warm shims of this tsrund: its children still titled `… --pool …` (a taken one retitles itself `tsrun-shim <dir>`). */
function idleWarmShims(d: Tsrund): number[] {
  return allPids().filter((p) => isAlive(p) && ppidOf(p) === d.pid && cmdline(p).includes('tsrun-shim --pool'));
}

function status(d: Tsrund, id: string): string | undefined {
  const line = d.ctr(['task', 'ls']).stdout.split('\n').find((l) => l.trim().split(/\s+/)[0] === id);
  return line?.trim().split(/\s+/)[2];
}

async function removeAll(d: Tsrund, ids: readonly string[]): Promise<void> {
  for (const id of ids) d.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(() => ids.every((id) => status(d, id) !== 'RUNNING'), 10_000);
  for (const id of ids) {
    d.ctr(['task', 'delete', id]);
    d.ctr(['container', 'rm', id]);
  }
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('warm shims: kept ready, taken by creates, gone with tsrund', async (t) => {
    const d = await startTsrund(t, ['--shim-pool', '2']);
    t.ok(await waitFor(() => idleWarmShims(d).length === 2, 20_000), 'two warm shims wait');
    const hi = d.ctr(['run', '--rm', ...d.runArgs(), d.newId('hi'), '/bin/echo', 'hi']);
    t.equal(hi.status, 0, show(hi));
    t.equal(hi.stdout, 'hi\n', 'output of a container in a warm shim');
    const code = d.ctr(['run', '--rm', ...d.runArgs(), d.newId('code'), '/bin/sh', '-c', 'exit 7']);
    t.equal(code.status, 7, `exit status through a warm shim (${show(code)})`);

    const id = d.newId('sleep');
    t.equal(d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']).status, 0, 'sleep started');
    t.equal(cmdline(shimPidOf(d, id)), `tsrun-shim ${path.join(d.shimRoot, d.ns, id)}`, 'its shim was a warm one, retitled');
    const ex = d.ctr(['task', 'exec', '--exec-id', 'e1', id, '/bin/echo', 'exec-ok']);
    t.equal(ex.stdout, 'exec-ok\n', `exec in it (${show(ex)})`);
    t.ok(await waitFor(() => idleWarmShims(d).length === 2, 20_000), 'the pool is refilled');

    const pid = shimPidOf(d, id);
    const idle = idleWarmShims(d);
    await d.kill9();
    t.ok(await waitFor(() => idle.every((p) => !isAlive(p)), 10_000), 'idle warm shims exit with tsrund');
    t.ok(isAlive(pid), 'the shim serving a container stays');
    await d.start();
    t.equal(status(d, id), 'RUNNING', 're-adopted');
    await removeAll(d, [id]);
    t.ok(await waitFor(() => !isAlive(pid), 5000), 'its shim exits after delete');
  });

  t.test('--shim-pool 0: no warm shims, every shim started on demand', async (t) => {
    const d = await startTsrund(t, ['--shim-pool', '0']);
    const r = d.ctr(['run', '--rm', ...d.runArgs(), d.newId('cold'), '/bin/echo', 'cold']);
    t.equal(r.stdout, 'cold\n', show(r));
    t.same(idleWarmShims(d), [], 'no warm shims');
  });

  t.test('io.tsrun.shim-group: one shim per group and namespace', async (t) => {
    const d = await startTsrund(t);
    const a = [d.newId('ga'), d.newId('ga'), d.newId('ga')];
    const b = d.newId('gb');
    for (const id of a) t.equal(d.ctr(['run', '-d', '--label', `${GROUP}=a`, ...d.runArgs(), id, '/bin/sleep', '1000']).status, 0, `${id} started`);
    t.equal(d.ctr(['run', '-d', '--label', `${GROUP}=b`, ...d.runArgs(), b, '/bin/sleep', '1000']).status, 0, `${b} started`);
    const shimA = shimPidOf(d, a[0]!);
    t.same(a.map((id) => shimPidOf(d, id)), [shimA, shimA, shimA], 'group a shares one shim');
    t.not(shimPidOf(d, b), shimA, 'group b has its own');

    const out = d.ctr(['run', '--rm', '--label', `${GROUP}=a`, ...d.runArgs(), d.newId('gx'), '/bin/sh', '-c', 'echo grouped; exit 3']);
    t.equal(out.status, 3, `exit status in a group (${show(out)})`);
    t.equal(out.stdout, 'grouped\n', 'output in a group');
    const ex = d.ctr(['task', 'exec', '--exec-id', 'e1', a[1]!, '/bin/echo', 'exec-ok']);
    t.equal(ex.stdout, 'exec-ok\n', `exec in a grouped container (${show(ex)})`);

    await removeAll(d, [a[0]!]);
    t.equal(status(d, a[1]!), 'RUNNING', 'deleting one container leaves the group running');
    t.ok(isAlive(shimA), 'and its shim');

    await d.kill9();
    await d.start();
    t.equal(status(d, a[1]!), 'RUNNING', 'grouped containers re-adopted');
    t.equal(status(d, a[2]!), 'RUNNING');
    const late = d.newId('ga');
    t.equal(d.ctr(['run', '-d', '--label', `${GROUP}=a`, ...d.runArgs(), late, '/bin/sleep', '1000']).status, 0, 'a container joins the group after the restart');
    t.equal(shimPidOf(d, late), shimA, 'in the same shim');

    await removeAll(d, [a[1]!, a[2]!, late]);
    t.ok(await waitFor(() => !isAlive(shimA), 5000), 'the group shim exits with its last container');
    t.notOk(fs.existsSync(path.join(d.shimRoot, d.ns, '.groups', 'a.sock')), 'and removes its socket');
    await removeAll(d, [b]);
  });
}
