/**
 * tsrun-shim control calls and re-adoption: pause/resume (freezer), pids, stats, update reaching
 * the cgroup, reconnecting with the same pids, an exit while disconnected reported on reconnect,
 * and a shim killed -9 cleaned up by reapDeadShim — against every Runtime.
 */
import * as fs from 'node:fs';
import t from 'tap';
import type { ShimEvent } from '../../shim/api';
import { connectShim, listShimDirs, reapDeadShim } from '../../supervisor/shims/client';
import { readShimState } from '../../shim/state';
import { requires } from '../helpers/requires';
import { RUNTIMES, containerLeftovers, shimRig } from '../helpers/shim';
import { isAlive } from '../helpers/host';
import { waitFor } from '../helpers/wait';

function cgroupFile(controller: string, id: string, file: string): string {
  return fs.readFileSync(`/sys/fs/cgroup/${controller}/${id}/${file}`, 'utf8').trim();
}

for (const rt of RUNTIMES) {
  t.test(`${rt.name}: pause/resume, pids, stats, update`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const c = await rig.start(id, rt.choice, ['sleep', '100']);
    const { pid } = await c.create();
    await c.start();
    await c.pause();
    t.equal(cgroupFile('freezer', id, 'freezer.state'), 'FROZEN', 'frozen');
    t.equal((await c.state()).status, 'paused', 'state says paused');
    await c.resume();
    t.equal(cgroupFile('freezer', id, 'freezer.state'), 'THAWED', 'thawed');
    t.equal((await c.state()).status, 'running');
    t.same((await c.pids()).map((p) => p.pid), [pid], 'pids: init');
    const stats = (await c.stats()) as { pids?: { current?: unknown }; memory?: unknown };
    t.equal(String(stats.pids?.current), '1', 'stats: one pid');
    t.ok(stats.memory, 'stats: memory');
    await c.update(Buffer.from(JSON.stringify({ memory: { limit: 64 * 1024 * 1024 } })));
    t.equal(cgroupFile('memory', id, 'memory.limit_in_bytes'), String(64 * 1024 * 1024), 'update reached the cgroup');
    await c.kill(9);
    await c.wait();
    await t.rejects(c.pause(), { code: 'FailedPrecondition' }, 'pause of a stopped container');
    await c.delete();
  });

  t.test(`${rt.name}: reconnect keeps pids; an exit while disconnected is reported on reconnect`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const c = await rig.start(id, rt.choice, ['sleep', '100']);
    const { pid } = await c.create();
    await c.start();
    const proc = JSON.parse(Buffer.from(rig.spec(id, ['x'])).toString()).process as Record<string, unknown>;
    await c.exec('e1', Buffer.from(JSON.stringify({ ...proc, args: ['sleep', '100'] })), { stdin: '', stdout: '', stderr: '', terminal: false });
    const { pid: epid } = await c.start('e1');
    const before = await c.list();
    const closed = new Promise<void>((r) => c.onClose(r));
    c.close();
    await closed;
    t.same(listShimDirs(rig.stateRoot).map((e) => [e.id, e.shimPid]), [[id, c.shimPid]], 'listShimDirs finds the shim');
    const c2 = await connectShim(rig.dir(id));
    t.equal(c2.shimPid, c.shimPid, 'same shim');
    t.same(await c2.list(), before, 'same processes and pids');
    c2.close();

    // exits while nobody is connected
    process.kill(epid, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid) && !isAlive(epid), 5000);
    // The shim stores exits nobody received in its state file: both there means both recorded.
    t.ok(await waitFor(() => readShimState(rig.dir(id)).undelivered.length >= 2, 5000), 'both exits stored');
    const c3 = await connectShim(rig.dir(id));
    const events: ShimEvent[] = [];
    c3.onEvent((e) => events.push(e));
    const w = await c3.wait();
    t.equal(w.exitStatus, 137, 'wait resolves at once with the stored exit');
    await waitFor(() => events.length >= 2, 2000);
    t.same(events.map((e) => e.type === 'exit' && [e.exit.execId ?? 'init', e.exit.exitStatus]), [['e1', 137], ['init', 137]], 'buffered exits, exec first');
    c3.close();
    const c4 = await connectShim(rig.dir(id));
    const again: ShimEvent[] = [];
    c4.onEvent((e) => again.push(e));
    t.same(readShimState(rig.dir(id)).undelivered, [], 'nothing left stored');
    await c4.list(); // a round trip: an exit sent on subscribing would have arrived before its answer
    t.same(again, [], 'buffered exits are delivered once');
    await c4.delete();
    c4.close();
  });

  t.test(`${rt.name}: shim killed -9, reapDeadShim kills the container and cleans up`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const c = await rig.start(id, rt.choice, ['sleep', '100']);
    const { pid } = await c.create();
    await c.start();
    await t.rejects(reapDeadShim(rig.dir(id)), { code: 'FailedPrecondition' }, 'refuses a live shim');
    const closed = new Promise<void>((r) => c.onClose(r));
    process.kill(c.shimPid, 'SIGKILL');
    await closed;
    t.ok(isAlive(pid), 'the container outlives its shim');
    const exit = await reapDeadShim(rig.dir(id));
    t.equal(exit.exitStatus, 137, 'reported as killed');
    t.equal(exit.pid, pid);
    t.ok(await waitFor(() => !isAlive(pid), 5000), 'init is gone');
    t.notOk(fs.existsSync(rig.dir(id)), 'the dir is gone');
    t.same(containerLeftovers(id, [pid]), [], 'no cgroup left');
  });
}
