/**
 * tsrund with `--shim native` (docs/native-shim.md) through the real ctr: the per-container
 * process is the C tsrun-shim (build/tsrun-shim), not node; exit codes and output of `ctr run`
 * with the library runtime (bin/tsrun), runc and crun; stdin, terminals, exec, ps, metrics,
 * pause/resume; OOM events (of init, and of another process while init runs).
 * native-shim-restart.test.ts has the rest (hooks, kill -9 of tsrund, the json-file log, tsctl).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTsrund, taskStatusOf, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import type { TeardownHost } from '../helpers/bundle';
import { cmdline, isAlive } from '../helpers/host';
import { waitFor } from '../helpers/wait';

const repoRoot = path.resolve(__dirname, '..', '..');
const nativeShim = path.join(repoRoot, 'build', 'tsrun-shim');
const why = tsrundMissing() ?? (fs.existsSync(nativeShim) ? undefined : `native shim not built at ${nativeShim}: run "make build/tsrun-shim"`);
const show = (r: CtrResult): string => `status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.trim())}`;
const onPath = (bin: string): boolean => (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, bin)));

/** The shim process serving id, by its directory in its argv. */
/** `ctr events` for /tasks/oom, /tasks/exit and /tasks/create, subscribed (an event made after it started showed up). */
async function taskEvents(t: TeardownHost & { ok(v: unknown, m: string): unknown }, d: Tsrund): Promise<{ out: () => string; topics: (id: string) => (string | undefined)[] }> {
  const events = d.ctrSpawn(['events', 'topic~="/tasks/(oom|exit|create)"']);
  let out = '';
  events.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  t.teardown(() => void events.kill('SIGKILL'));
  const probe = d.newId('probe');
  t.ok(await waitFor(() => {
    if (out.includes(probe)) return true;
    d.ctr(['run', '--rm', ...d.runArgs(), probe, '/bin/true']);
    return false;
  }, 20_000, 200), 'ctr events is subscribed');
  return {
    out: () => out,
    // the task topics of container id, in order, without its create
    topics: (id) => out
      .split('\n')
      .filter((l) => l.includes(`"container_id":"${id}"`))
      .map((l) => /\s(\/tasks\/[a-z]+)\s/.exec(l)?.[1])
      .filter((x) => x !== '/tasks/create'),
  };
}

function shimOf(shimPids: number[], dir: string): number | undefined {
  return shimPids.find((p) => cmdline(p).split('\0').includes(dir) || cmdline(p).includes(dir));
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('ctr run under the native shim: output, exit codes, runtimes, the shim is the C one', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const runtimes: Array<[string, string[]]> = [['library (bin/tsrun)', []], ['runc', ['--runc-binary', 'runc']]];
    // crun refuses cgroup v1 hierarchies beside a v2 one ("cgroups in hybrid mode not supported")
    const hybrid = fs.existsSync('/sys/fs/cgroup/unified') && fs.readdirSync('/sys/fs/cgroup/unified').length > 0;
    if (onPath('crun') && !hybrid) runtimes.push(['crun', ['--runc-binary', 'crun']]);
    else t.comment(`crun case skipped: ${hybrid ? 'crun does not support this hybrid cgroup host' : 'crun not installed'}`);
    for (const [name, flags] of runtimes) {
      const id = d.newId('run');
      const r = d.ctr(['run', '--rm', ...flags, ...d.runArgs(), id, '/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
      t.equal(r.status, 3, `${name}: ctr run --rm returns the container's exit code (${show(r)})`);
      t.equal(r.stdout, 'out\n', `${name}: stdout reaches ctr`);
      t.match(r.stderr, /err/, `${name}: stderr reaches ctr`);
      t.notOk(fs.existsSync(path.join(d.shimRoot, d.ns, id)), `${name}: the shim directory is gone after --rm`);
    }

    const id = d.newId('det');
    let r = d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']);
    t.equal(r.status, 0, `run -d (${show(r)})`);
    const dir = path.join(d.shimRoot, d.ns, id);
    const shim = shimOf(d.shimPids(), dir);
    t.ok(shim !== undefined, 'a tsrun-shim process serves the container');
    if (shim !== undefined) {
      t.match(fs.readFileSync(`/proc/${shim}/cmdline`, 'utf8'), /^tsrun-shim\0/, 'its command line starts with tsrun-shim');
      t.equal(fs.readlinkSync(`/proc/${shim}/exe`), nativeShim, 'it runs the native binary, not node');
      const init = Number(fs.readFileSync(path.join(dir, 'init.pid'), 'utf8'));
      const ppid = Number(/\) \S (\d+)/.exec(fs.readFileSync(`/proc/${init}/stat`, 'utf8'))?.[1]);
      t.equal(ppid, shim, "the shim is the parent of the container's init");
      t.equal(Number(/\) \S (\d+)/.exec(fs.readFileSync(`/proc/${shim}/stat`, 'utf8'))?.[1]) === d.pid, false, 'the shim is not a child of tsrund (double fork)');
    }
    r = d.ctr(['task', 'exec', '--exec-id', 'e1', id, '/bin/sh', '-c', 'echo from-exec; exit 5']);
    t.equal(r.status, 5, `exec returns its exit code (${show(r)})`);
    t.equal(r.stdout, 'from-exec\n', 'exec output reaches ctr');
    r = d.ctr(['task', 'kill', '-s', 'KILL', id]);
    t.equal(r.status, 0, `kill (${show(r)})`);
    t.ok(await waitFor(() => taskStatusOf(d, id) === 'STOPPED', 10_000), 'the task stops');
    r = d.ctr(['task', 'delete', id]);
    t.equal(r.status, 0, `task delete (${show(r)})`);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0, 'container removed');
    t.ok(await waitFor(() => shim === undefined || !isAlive(shim), 10_000), 'the shim exits after delete');
  });

  t.test('stdin, terminals, ps, metrics, pause/resume, exec kill under the native shim', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    let r = d.ctr(['run', '--rm', ...d.runArgs(), d.newId('in'), '/bin/sh', '-c', 'cat; echo done'], { input: 'hello\n' });
    t.equal(r.stdout, 'hello\ndone\n', `stdin reaches the process and its end is EOF (${show(r)})`);

    const { spawnSync } = await import('node:child_process');
    const viaTerminal = (args: readonly string[]): { status: number | null; stdout: string } => {
      const cmd = ['ctr', '--address', d.socket, '-n', d.ns, ...args];
      return spawnSync('script', ['-qec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    };
    const tr = viaTerminal(['run', '--rm', '-t', ...d.runArgs(), d.newId('tty'), '/bin/sh', '-c', 'tty; exit 5']);
    t.equal(tr.status, 5, `run -t: exit status through the terminal (${tr.stdout})`);
    t.match(tr.stdout, /\/dev\/pts\/\d+/, 'run -t: the process has a pty');

    const id = d.newId('ops');
    r = d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']);
    t.equal(r.status, 0, `run -d (${show(r)})`);
    const te = viaTerminal(['task', 'exec', '-t', '--exec-id', 'te', id, '/bin/sh', '-c', 'tty; exit 6']);
    t.equal(te.status, 6, `exec -t: exit status (${te.stdout})`);
    t.match(te.stdout, /\/dev\/pts\/\d+/, 'exec -t: the exec has a pty');
    const pid = Number(new RegExp(`${id}\\s+(\\d+)\\s+RUNNING`).exec(d.ctr(['task', 'ls']).stdout)?.[1]);
    t.ok(pid > 0 && isAlive(pid), 'task ls shows RUNNING with a live pid');
    t.match(d.ctr(['task', 'ps', id]).stdout, new RegExp(`^${pid}\\s`, 'm'), 'ps lists init');
    r = d.ctr(['task', 'metrics', id]);
    t.equal(r.status, 0, `metrics (${show(r)})`);
    t.match(r.stdout, /pids\.current\s+1/, 'metrics from the container cgroup');
    t.equal(d.ctr(['task', 'pause', id]).status, 0, 'pause');
    t.ok(await waitFor(() => taskStatusOf(d, id) === 'PAUSED', 5000), 'task PAUSED');
    t.equal(d.ctr(['task', 'resume', id]).status, 0, 'resume');
    t.ok(await waitFor(() => taskStatusOf(d, id) === 'RUNNING', 5000), 'task RUNNING again');
    const longExec = d.ctrSpawn(['task', 'exec', '--fifo-dir', d.fifoDir, '--exec-id', 'e2', id, '/bin/sleep', '1000']);
    t.ok(await waitFor(() => /ExecID:e2,/.test(d.ctr(['task', 'ps', id]).stdout), 10_000), 'ps shows the exec with its exec id');
    r = d.ctr(['task', 'kill', '-s', 'SIGKILL', '--exec-id', 'e2', id]);
    t.equal(r.status, 0, `kill of the exec (${show(r)})`);
    const code = await new Promise<number | null>((resolve) => longExec.on('close', (c) => resolve(c)));
    t.equal(code, 137, 'the exec ends with 137');
    t.equal(d.ctr(['task', 'kill', '-s', 'KILL', id]).status, 0, 'kill init');
    t.ok(await waitFor(() => taskStatusOf(d, id) === 'STOPPED', 10_000), 'the task stops');
    t.equal(d.ctr(['task', 'delete', id]).status, 0, 'task delete');
    t.equal(d.ctr(['containers', 'rm', id]).status, 0, 'container removed');
  });

  t.test('an OOM kill under the native shim: /tasks/oom before the exit, 137', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const ev = await taskEvents(t, d);
    const id = d.newId('oom');
    // busybox dd reads a whole 64 MiB block into one buffer: more than the 16 MiB limit allows
    const r = d.ctr(['run', '--rm', '--memory-limit', String(16 * 1024 * 1024), ...d.runArgs(), id, '/bin/dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    t.equal(r.status, 137, `killed by the OOM killer (${show(r)})`);
    t.ok(await waitFor(() => ev.out().includes(`/tasks/exit {"container_id":"${id}"`), 5000), 'the exit event arrived');
    t.same(ev.topics(id), ['/tasks/oom', '/tasks/exit'], `oom, then exit (${ev.out()})`);
  });

  t.test('an OOM kill of a process other than init is reported while init runs (the shim watches the cgroup)', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const ev = await taskEvents(t, d);
    const id = d.newId('oomchild');
    // sh runs dd as its child: the OOM killer ends dd, and sh (init) goes on sleeping
    const script = '/bin/dd if=/dev/zero of=/dev/null bs=64M count=1; exec sleep 1000';
    let r = d.ctr(['run', '-d', '--memory-limit', String(16 * 1024 * 1024), ...d.runArgs(), id, '/bin/sh', '-c', script]);
    t.equal(r.status, 0, `run -d with a memory limit (${show(r)})`);
    t.ok(await waitFor(() => ev.out().includes(`/tasks/oom {"container_id":"${id}"`), 10_000), `/tasks/oom arrives while init runs (${ev.out()})`);
    t.notOk(ev.out().includes(`/tasks/exit {"container_id":"${id}"`), 'no exit yet');
    t.equal(taskStatusOf(d, id), 'RUNNING', 'init still runs');
    t.equal(d.ctr(['task', 'kill', '-s', 'KILL', id]).status, 0, 'kill init');
    t.ok(await waitFor(() => ev.out().includes(`/tasks/exit {"container_id":"${id}"`), 10_000), 'the exit event arrived');
    t.same(ev.topics(id), ['/tasks/oom', '/tasks/exit'], `one oom, then the exit (${ev.out()})`);
    r = d.ctr(['task', 'delete', id]);
    t.equal(r.status, 0, `task delete (${show(r)})`);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0, 'container removed');
  });

}
