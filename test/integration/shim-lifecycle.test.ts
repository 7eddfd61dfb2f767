/**
 * tsrun-shim end to end: create/start/wait with output through real FIFOs, exit codes, stdin,
 * exec, kill --all, delete leaving nothing — against every Runtime (library, tsrun, runc).
 */
import * as fs from 'node:fs';
import t from 'tap';
import type { ShimEvent } from '../../shim/api';
import { requires } from '../helpers/requires';
import { RUNTIMES, containerLeftovers, shimRig } from '../helpers/shim';
import { isAlive } from '../helpers/host';
import { waitFor } from '../helpers/wait';

for (const rt of RUNTIMES) {
  t.test(`${rt.name}: create, start, wait, output through fifos, delete leaves nothing`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const f = rig.fifos('init');
    const c = await rig.start(id, rt.choice, ['sh', '-c', 'echo hello out; echo hello err >&2; exit 3'], { stdio: f.stdio });
    const events: ShimEvent[] = [];
    c.onEvent((e) => events.push(e));
    t.equal(c.id, id, 'hello names the container');
    t.ok(c.shimPid > 0 && isAlive(c.shimPid), 'the shim runs');
    const { pid } = await c.create();
    t.ok(pid > 0, 'create returns the init pid');
    t.equal((await c.state()).status, 'created', 'created');
    const waited = c.wait();
    t.same(await c.start(), { pid }, 'start returns the same pid');
    const exit = await waited;
    t.equal(exit.exitStatus, 3, 'exit code 3');
    t.equal(exit.pid, pid, 'exit names init');
    t.match(exit.exitedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'RFC 3339 time');
    // The shim writes the output to the fifos before it answers wait, but our reader's data
    // event and wait's answer can come in one turn of the event loop, in either order.
    t.ok(await waitFor(() => f.out() === 'hello out\n' && f.err() === 'hello err\n', 2000), `stdout and stderr reached the fifos (${JSON.stringify([f.out(), f.err()])})`);
    const st = await c.state();
    t.equal(st.status, 'stopped');
    t.equal(st.exitStatus, 3);
    t.same((await c.wait()).exitStatus, 3, 'wait after exit returns at once');
    await waitFor(() => events.some((e) => e.type === 'exit'), 2000);
    t.same(events.filter((e) => e.type === 'exit').map((e) => e.type === 'exit' && e.exit.exitStatus), [3], 'one exit event');
    const closed = new Promise<void>((r) => c.onClose(r));
    const d = await c.delete();
    t.equal(d.exitStatus, 3, 'delete returns the exit');
    await closed;
    t.ok(await waitFor(() => !isAlive(c.shimPid), 5000), 'the shim exits after delete');
    t.notOk(fs.existsSync(rig.dir(id)), 'the shim dir is gone');
    t.same(containerLeftovers(id, [pid]), [], 'no cgroup, no process');
  });

  t.test(`${rt.name}: SIGKILL gives 137; stdin; kill of a finished process`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const c = await rig.start(id, rt.choice, ['sleep', '100']);
    await c.create();
    await c.start();
    await c.kill(9);
    t.equal((await c.wait()).exitStatus, 137, 'SIGKILL → 137');
    await t.rejects(c.kill(9), { code: 'NotFound', message: 'process already finished' });
    await c.delete();

    const id2 = rig.newId();
    const f = rig.fifos('cat', { stdin: true });
    const c2 = await rig.start(id2, rt.choice, ['sh', '-c', 'cat; echo done'], { stdio: f.stdio });
    await c2.create();
    const w = f.openStdin();
    await c2.start();
    w.write('abc\n');
    w.end(); // the writer going away is EOF
    const e = await c2.wait();
    t.equal(e.exitStatus, 0, 'cat saw EOF and exited 0');
    t.ok(await waitFor(() => f.out() === 'abc\ndone\n', 2000), `stdin went through (${JSON.stringify(f.out())})`);
    await c2.delete();
  });

  t.test(`${rt.name}: exec with output and exit code; events in order; kill --all`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const c = await rig.start(id, rt.choice, ['sleep', '100']);
    const events: ShimEvent[] = [];
    c.onEvent((e) => events.push(e));
    const { pid } = await c.create();
    await c.start();
    const f = rig.fifos('e1');
    const proc = JSON.parse(Buffer.from(rig.spec(id, ['x'])).toString()).process as Record<string, unknown>;
    await c.exec('e1', Buffer.from(JSON.stringify({ ...proc, args: ['sh', '-c', 'echo from exec; echo exec err >&2; exit 5'] })), f.stdio);
    t.equal((await c.state('e1')).status, 'created', 'registered exec is created');
    const ew = c.wait('e1');
    const { pid: epid } = await c.start('e1');
    t.ok(epid > 0 && epid !== pid, 'exec has its own pid');
    t.equal((await ew).exitStatus, 5, 'exec exit code');
    t.ok(await waitFor(() => f.out() === 'from exec\n' && f.err() === 'exec err\n', 2000), `exec stdout and stderr (${JSON.stringify([f.out(), f.err()])})`);
    await waitFor(() => events.length >= 2, 2000);
    t.same(events.slice(0, 2).map((e) => e.type), ['exec-started', 'exit'], 'exec-started then exit');
    t.equal((await c.deleteProcess('e1')).exitStatus, 5, 'deleteProcess returns the exit');
    await t.rejects(c.state('e1'), { code: 'NotFound' });

    // a long exec, then kill --all: the exec's exit comes before init's
    await c.exec('e2', Buffer.from(JSON.stringify({ ...proc, args: ['sleep', '50'] })), { stdin: '', stdout: '', stderr: '', terminal: false });
    const { pid: p2 } = await c.start('e2');
    const list = await c.list();
    t.same(list.map((p) => [p.execId, p.status]), [[undefined, 'running'], ['e2', 'running']], 'list: init first, then execs');
    const pids = await c.pids();
    t.ok(pids.some((p) => p.pid === pid), 'pids has init');
    t.ok(pids.some((p) => p.pid === p2 && p.execId === 'e2'), 'pids names the exec');
    events.length = 0;
    await c.kill(9, { all: true });
    t.equal((await c.wait()).exitStatus, 137, 'init killed');
    t.equal((await c.wait('e2')).exitStatus, 137, 'exec killed');
    await waitFor(() => events.length >= 2, 2000);
    t.same(events.map((e) => e.type === 'exit' && (e.exit.execId ?? 'init')), ['e2', 'init'], 'exec exit before init exit');
    await c.delete();
    t.same(containerLeftovers(id, [pid, p2]), [], 'nothing left');
  });
}
