/**
 * tsrund with `--shim native` (docs/native-shim.md), continued from native-shim.test.ts: a slow
 * hook in one container's create does not delay another container; the json-file log with
 * rotation; kill -9 of tsrund: the container keeps running and logging, an exit while tsrund is
 * down is written to the shim directory and reported after the restart, and so is an OOM kill
 * (before that exit); tsctl over the native shim (run, -i, -d, logs, stop, restart policy, rm).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectTsrund } from '../../supervisor/client';
import { startTsrund, taskStatusOf, tsrundMissing, type CtrResult } from '../helpers/tsrund';
import { startTsctl, tsctlMissing } from '../helpers/tsctl';
import { waitFor } from '../helpers/wait';

const repoRoot = path.resolve(__dirname, '..', '..');
const nativeShim = path.join(repoRoot, 'build', 'tsrun-shim');
const why = tsrundMissing() ?? (fs.existsSync(nativeShim) ? undefined : `native shim not built at ${nativeShim}: run "make build/tsrun-shim"`);
const show = (r: CtrResult): string => `status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.trim())}`;

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('a slow createRuntime hook of one container does not delay another container', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const slow = d.newId('hook');
    const started = path.join(d.sandbox, `${slow}.started`);
    const release = path.join(d.sandbox, `${slow}.release`);
    const spec = JSON.parse(d.ctr(['oci', 'spec']).stdout) as Record<string, unknown> & { process: Record<string, unknown>; linux: Record<string, unknown> };
    spec['root'] = { path: d.rootfs, readonly: false };
    spec.process['args'] = ['/bin/true'];
    spec.process['terminal'] = false;
    spec.linux['cgroupsPath'] = `/${d.ns}/${slow}`;
    // the hook runs on the host: it says it started, then waits (at most 60 s) for the test to release it
    const wait = `touch ${started}; i=0; while [ ! -e ${release} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done`;
    spec['hooks'] = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', wait] }] };
    const specFile = path.join(d.sandbox, `${slow}.json`);
    fs.writeFileSync(specFile, JSON.stringify(spec));
    const slowRun = d.ctrAsync(['run', '--rm', '--fifo-dir', d.fifoDir, '--config', specFile, slow], { timeoutMs: 120_000 });
    t.teardown(() => fs.writeFileSync(release, ''));
    t.ok(await waitFor(() => fs.existsSync(started), 30_000), "the slow container's hook is running");
    const r = d.ctr(['run', '--rm', ...d.runArgs(), d.newId('fast'), '/bin/sh', '-c', 'echo fast']);
    t.equal(r.stdout, 'fast\n', `another container runs to completion meanwhile (${show(r)})`);
    t.notOk(fs.existsSync(release), 'while the hook still waits');
    t.equal(d.ctr(['task', 'ls']).stdout.includes(slow), false, 'the slow one has no task yet (still in create)');
    fs.writeFileSync(release, '');
    const done = await slowRun;
    t.equal(done.status, 0, `the slow container finishes once released (${show(done)})`);
  });

  t.test('json-file log with rotation; kill -9 of tsrund: logs keep flowing, an exit while it is down is reported after the restart', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const id = d.newId('log');
    // prints until /tmp/stop exists, then exits 7: the test ends it while tsrund is down
    const script = 'i=0; while [ ! -e /tmp/stop ]; do echo "line $i"; i=$((i+1)); usleep 20000; done; echo bye; exit 7';
    let r = d.ctr(['run', '-d', '--label', 'tsctl.log-driver=json-file', '--label', 'tsctl.log-max-size=2000', '--label', 'tsctl.log-max-file=3', ...d.runArgs(), id, '/bin/sh', '-c', script]);
    t.equal(r.status, 0, `run -d with a json-file log (${show(r)})`);
    const logPath = path.join(d.root, 'logs', d.ns, id, `${id}-json.log`);
    t.ok(await waitFor(() => fs.existsSync(`${logPath}.1`), 20_000), 'the log rotated (path.1 exists)');
    const lines = fs.readFileSync(`${logPath}.1`, 'utf8').split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    t.ok(parsed.length > 0 && parsed.every((p) => /^line \d+\n$/.test(p.log) && p.stream === 'stdout' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(p.time)), 'each line is a json-file record');
    t.ok(fs.statSync(`${logPath}.1`).size <= 2000, 'a rotated file stays within max-size');

    const before = taskStatusOf(d, id);
    t.equal(before, 'RUNNING', 'task running');
    await d.kill9();
    const lastLine = (): number => {
      try {
        const text = fs.readFileSync(logPath, 'utf8').trim().split('\n');
        return Number(/line (\d+)/.exec(text[text.length - 1] ?? '')?.[1] ?? -1);
      } catch {
        return -1;
      }
    };
    const at = lastLine();
    t.ok(await waitFor(() => lastLine() > at + 5 || fs.existsSync(`${logPath}.1`), 10_000), 'output still reaches the log with tsrund down');
    const dir = path.join(d.shimRoot, d.ns, id);
    const init = Number(fs.readFileSync(path.join(dir, 'init.pid'), 'utf8'));
    fs.writeFileSync(path.join(d.rootfs, 'tmp', 'stop'), '');
    t.teardown(() => fs.rmSync(path.join(d.rootfs, 'tmp', 'stop'), { force: true }));
    t.ok(await waitFor(() => fs.existsSync(path.join(dir, 'exit-init.json')), 10_000), 'the exit is recorded in the shim directory while tsrund is down');
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'exit-init.json'), 'utf8')) as { pid: number; exitStatus: number };
    t.same([rec.pid, rec.exitStatus], [init, 7], 'the record has the pid and exit status');

    await d.start();
    t.equal(taskStatusOf(d, id), 'STOPPED', 'after the restart the task is STOPPED');
    const c = connectTsrund(d.socket, { namespace: d.ns });
    t.teardown(() => c.close());
    const w = await c.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: id }, { timeoutMs: 5000 });
    t.equal(w.exitStatus, 7, 'Wait returns the exit status of the exit missed');
    const tail = fs.readFileSync(logPath, 'utf8');
    t.match(tail, /"log":"bye\\n"/, 'the last output is in the log');
    r = d.ctr(['task', 'delete', id]);
    t.equal(r.status, 0, `task delete (${show(r)})`);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0, 'container removed');
    t.ok(await waitFor(() => d.shimPids().length === 0, 10_000), 'no shim left');
  });

  t.test('kill -9 of tsrund: an OOM kill while it is down is reported after the restart, /tasks/oom before /tasks/exit', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const id = d.newId('oomdown');
    // waits for /tmp/oom-go, then becomes busybox dd, which reads a whole 64 MiB block into one
    // buffer: more than the 16 MiB limit allows, so the OOM killer ends init (137)
    const script = 'while [ ! -e /tmp/oom-go ]; do usleep 20000; done; exec /bin/dd if=/dev/zero of=/dev/null bs=64M count=1';
    let r = d.ctr(['run', '-d', '--memory-limit', String(16 * 1024 * 1024), ...d.runArgs(), id, '/bin/sh', '-c', script]);
    t.equal(r.status, 0, `run -d with a memory limit (${show(r)})`);
    t.equal(taskStatusOf(d, id), 'RUNNING', 'task running');
    await d.kill9();
    const dir = path.join(d.shimRoot, d.ns, id);
    fs.writeFileSync(path.join(d.rootfs, 'tmp', 'oom-go'), '');
    t.teardown(() => fs.rmSync(path.join(d.rootfs, 'tmp', 'oom-go'), { force: true }));
    t.ok(await waitFor(() => fs.existsSync(path.join(dir, 'exit-init.json')), 10_000), 'init exited while tsrund was down');
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'exit-init.json'), 'utf8')) as { exitStatus: number };
    t.equal(rec.exitStatus, 137, 'killed by the OOM killer');

    await d.start();
    // the events published while re-adopting are replayed to a subscriber arriving soon after
    const events = d.ctrSpawn(['events', 'topic~="/tasks/(oom|exit)"']);
    let out = '';
    events.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    t.teardown(() => void events.kill('SIGKILL'));
    t.ok(await waitFor(() => out.includes(`/tasks/exit {"container_id":"${id}"`), 10_000), `the exit is published after the restart (${out})`);
    const topics = out
      .split('\n')
      .filter((l) => l.includes(`"container_id":"${id}"`))
      .map((l) => /\s(\/tasks\/[a-z]+)\s/.exec(l)?.[1]);
    t.same(topics, ['/tasks/oom', '/tasks/exit'], `oom, then exit (${out})`);
    const info = JSON.parse(d.ctr(['containers', 'info', id]).stdout) as { Labels?: Record<string, string> };
    t.equal(info.Labels?.['tsctl.oom-killed'], 'true', 'the container is marked OOM-killed');
    r = d.ctr(['task', 'delete', id]);
    t.equal(r.status, 0, `task delete (${show(r)})`);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0, 'container removed');
    t.ok(await waitFor(() => d.shimPids().length === 0, 10_000), 'no shim left');
  });

  t.test('tsctl under the native shim: run, exit codes, -i, -d, logs, stop, restart policy, rm', { skip: tsctlMissing() ?? false }, async (t) => {
    const e = await startTsctl(t, ['--shim', 'native']);
    const rootfs = e.d.rootfs;
    let r = e.tsctl(['run', '--rm', rootfs, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.equal(r.status, 3, `exit code (${JSON.stringify(r)})`);
    t.equal(r.stdout, 'out\n', 'stdout');
    t.equal(r.stderr, 'err\n', 'stderr');
    r = e.tsctl(['run', '--rm', '-i', rootfs, 'cat'], { input: 'piped\n' });
    t.equal(r.stdout, 'piped\n', 'stdin with -i');
    r = e.tsctl(['run', '-d', '--name', 'nd', rootfs, 'sh', '-c', 'echo hello; exec sleep 1000']);
    t.equal(r.status, 0, `run -d (${JSON.stringify(r)})`);
    t.ok(await waitFor(() => e.tsctl(['logs', 'nd']).stdout === 'hello\n', 10_000), 'logs reads the json-file log the shim wrote');
    r = e.tsctl(['stop', '-t', '1', 'nd']);
    t.equal(r.status, 0, `stop (${JSON.stringify(r)})`);
    t.equal(e.tsctl(['rm', 'nd']).status, 0, 'rm');
    // on-failure:2 restarts through tsrund's restart loop, which sees the exits the shim reports
    e.tsctl(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', rootfs, 'sh', '-c', 'echo run; exit 2']);
    const done = await waitFor(() => {
      const o = JSON.parse(e.tsctl(['inspect', 'flaky']).stdout) as Array<{ RestartCount: number; State: { Status: string } }>;
      return o[0]?.RestartCount === 2 && o[0].State.Status === 'exited';
    }, 30_000, 50);
    t.ok(done, 'restarted twice, then exited');
    t.equal(e.tsctl(['rm', '-f', 'flaky']).status, 0, 'rm -f');
  });
}
