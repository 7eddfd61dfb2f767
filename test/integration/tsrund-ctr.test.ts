/**
 * tsrund driven by the real ctr (containerd 1.6.20's client): every command of the contract
 * (docs/containerd-api.md §9) against one private tsrund, busybox --rootfs containers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { sleep, waitFor } from '../helpers/wait';

const why = tsrundMissing();
let d: Tsrund;

const show = (r: CtrResult): string => `status ${r.status} signal ${r.signal} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    d = await startTsrund(t);
  });

  t.test('version prints the server version and uuid', async (t) => {
    const r = d.ctr(['version']);
    t.equal(r.status, 0, show(r));
    t.match(r.stdout, /Server:\s+Version:\s+1\.6\.20\+tsrund/);
    t.match(r.stdout, /UUID: [0-9a-f-]{36}/);
  });

  t.test('namespaces: create with labels, label, ls, rm', async (t) => {
    const ns = `ns${process.pid}`;
    let r = d.ctr(['namespaces', 'create', ns, 'a=b']);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['namespaces', 'create', ns]);
    t.equal(r.status, 1, 'duplicate create fails');
    t.match(r.stderr, `namespace "${ns}": already exists`);
    r = d.ctr(['namespaces', 'label', ns, 'c=d']);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['namespaces', 'ls']);
    t.match(r.stdout, new RegExp(`${ns}\\s+a=b,c=d`), 'labels listed');
    r = d.ctr(['namespaces', 'label', ns, 'a=']);
    r = d.ctr(['namespaces', 'ls']);
    t.match(r.stdout, new RegExp(`${ns}\\s+c=d\\s`), 'label removed by an empty value');
    r = d.ctr(['namespaces', 'rm', ns]);
    t.equal(r.status, 0, show(r));
    t.notMatch(d.ctr(['namespaces', 'ls']).stdout, ns, 'gone');
    r = d.ctr(['namespaces', 'rm', 'neverexisted']);
    t.equal(r.status, 0, 'rm of a missing namespace is tolerated by ctr (NotFound)');
  });

  t.test('a namespace with containers cannot be removed', async (t) => {
    const ns = `busy${process.pid}`;
    const id = d.newId();
    let r = d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/true'], { ns });
    t.equal(r.status, 0, show(r));
    r = d.ctr(['namespaces', 'rm', ns]);
    t.equal(r.status, 1);
    t.match(r.stderr, `namespace "${ns}" must be empty, but it still has containers`);
    t.equal(d.ctr(['containers', 'rm', id], { ns }).status, 0);
    t.equal(d.ctr(['namespaces', 'rm', ns]).status, 0);
  });

  t.test('containers: create, ls, info (spec byte-for-byte), rm', async (t) => {
    const id = d.newId();
    let r = d.ctr(['containers', 'create', '--label', 'k=v', '--rootfs', d.rootfs, id, '/bin/echo', 'hi']);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['containers', 'ls']);
    t.match(r.stdout, new RegExp(`${id}\\s+-\\s+io\\.containerd\\.runc\\.v2`));
    r = d.ctr(['containers', 'ls', 'labels.k==v']);
    t.match(r.stdout, id, 'label filter matches');
    r = d.ctr(['containers', 'ls', 'labels.k==other']);
    t.notMatch(r.stdout, id, 'label filter excludes');
    r = d.ctr(['containers', 'info', id]);
    t.equal(r.status, 0, show(r));
    const info = JSON.parse(r.stdout) as { ID: string; Labels: Record<string, string>; Spec: { process: { args: string[] }; linux: { cgroupsPath: string } } };
    t.equal(info.ID, id);
    t.same(info.Labels, { k: 'v' });
    t.same(info.Spec.process.args, ['/bin/echo', 'hi']);
    t.equal(info.Spec.linux.cgroupsPath, `/${d.ns}/${id}`);
    r = d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/true']);
    t.equal(r.status, 1);
    t.match(r.stderr, `container "${id}": already exists`);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
    r = d.ctr(['containers', 'info', id]);
    t.equal(r.status, 1);
    t.match(r.stderr, `container "${id}" in namespace "${d.ns}": not found`);
  });

  t.test('bad container ids are refused with containerd wording', async (t) => {
    const r = d.ctr(['containers', 'create', '--rootfs', d.rootfs, 'bad..id', '/bin/true']);
    t.equal(r.status, 1);
    t.match(r.stderr, 'create container failed validation: container.ID: identifier "bad..id" must match');
    t.notMatch(d.ctr(['containers', 'ls']).stdout, 'bad..id');
  });

  t.test('run --rm: output, exit codes 0 and 3, nothing left', async (t) => {
    const id = d.newId();
    let r = d.ctr(['run', '--rm', ...d.runArgs(), id, '/bin/sh', '-c', 'echo out; echo err >&2']);
    t.equal(r.status, 0, show(r));
    t.equal(r.stdout, 'out\n');
    t.match(r.stderr, 'err\n');
    r = d.ctr(['run', '--rm', ...d.runArgs(), d.newId(), '/bin/sh', '-c', 'exit 3']);
    t.equal(r.status, 3, show(r));
    r = d.ctr(['run', '--rm', ...d.runArgs(), d.newId(), '/bin/cat'], { input: 'piped stdin\n' });
    t.equal(r.stdout, 'piped stdin\n', 'stdin reaches the container and EOF closes it');
    t.equal(d.ctr(['containers', 'ls', '-q']).stdout, '');
    t.equal(d.ctr(['task', 'ls', '-q']).stdout, '');
  });

  t.test('--runc-binary picks an OCI runtime binary per container', async (t) => {
    for (const bin of ['/usr/sbin/runc', path.resolve(__dirname, '..', '..', 'bin', 'tsrun')]) {
      if (!fs.existsSync(bin)) continue;
      const r = d.ctr(['run', '--rm', '--runc-binary', bin, ...d.runArgs(), d.newId(), '/bin/sh', '-c', 'echo via; exit 2']);
      t.equal(r.status, 2, `${bin}: ${show(r)}`);
      t.equal(r.stdout, 'via\n');
    }
  });

  t.test('run --rm -t gives the process a terminal', async (t) => {
    const id = d.newId();
    const cmd = ['ctr', '--address', d.socket, '-n', d.ns, 'run', '--rm', '-t', ...d.runArgs(), id, '/bin/sh', '-c', 'tty; exit 5'];
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync('script', ['-qec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 5, `exit status through the terminal (${r.stdout} ${r.stderr})`);
    t.match(r.stdout, /\/dev\/pts\/\d+/, 'tty names a pty');
  });

  t.test('run -d, task ls/ps/metrics/pause/resume/exec/kill/delete', async (t) => {
    const id = d.newId();
    let r = d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['task', 'ls']);
    const m = new RegExp(`${id}\\s+(\\d+)\\s+RUNNING`).exec(r.stdout);
    t.ok(m, `task ls shows RUNNING (${r.stdout})`);
    const pid = Number(m?.[1]);
    t.ok(fs.existsSync(`/proc/${pid}`), 'the pid is a live host process');
    r = d.ctr(['task', 'ps', id]);
    t.match(r.stdout, new RegExp(`^${pid}\\s+-`, 'm'), 'ps lists init');
    r = d.ctr(['task', 'metrics', id]);
    t.equal(r.status, 0, show(r));
    t.match(r.stdout, /memory\.usage_in_bytes\s+\d+/);
    t.match(r.stdout, /pids\.current\s+1/);
    r = d.ctr(['task', 'metrics', '--format', 'json', id]);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['task', 'exec', '--fifo-dir', d.fifoDir, '--exec-id', 'e1', id, '/bin/sh', '-c', 'echo from-exec; exit 4']);
    t.equal(r.status, 4, show(r));
    t.equal(r.stdout, 'from-exec\n');
    const longExec = d.ctrSpawn(['task', 'exec', '--fifo-dir', d.fifoDir, '--exec-id', 'e2', id, '/bin/sleep', '1000']);
    t.ok(await waitFor(() => /ExecID:e2,/.test(d.ctr(['task', 'ps', id]).stdout), 10_000), 'ps shows the exec with its exec id');
    r = d.ctr(['task', 'kill', '-s', 'SIGKILL', '--exec-id', 'e2', id]);
    t.equal(r.status, 0, show(r));
    const execExit = await new Promise<number | null>((resolve) => longExec.on('exit', (c) => resolve(c)));
    t.equal(execExit, 137, 'killed exec exits 137');
    r = d.ctr(['task', 'pause', id]);
    t.equal(r.status, 0, show(r));
    t.match(d.ctr(['task', 'ls']).stdout, new RegExp(`${id}\\s+${pid}\\s+PAUSED`));
    r = d.ctr(['task', 'resume', id]);
    t.equal(r.status, 0, show(r));
    t.match(d.ctr(['task', 'ls']).stdout, new RegExp(`${id}\\s+${pid}\\s+RUNNING`));
    r = d.ctr(['task', 'delete', id]);
    t.equal(r.status, 1, 'delete of a running task is refused (by ctr)');
    r = d.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    t.equal(r.status, 0, show(r));
    t.ok(await waitFor(() => /STOPPED/.test(d.ctr(['task', 'ls']).stdout), 10_000), 'STOPPED after SIGKILL');
    r = d.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    t.equal(r.status, 1, 'kill of an exited task fails');
    t.match(r.stderr, 'process already finished');
    r = d.ctr(['task', 'pause', id]);
    t.match(r.stderr, 'cannot pause a stopped container');
    r = d.ctr(['task', 'delete', id]);
    t.equal(r.status, 0, show(r));
    t.match(r.stderr, 'exit with non-zero exit code 137', 'task delete reports the exit status');
    t.equal(d.ctr(['task', 'ls', '-q']).stdout, '');
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });

  t.test('containers create + task start (attached and -d) + attach', async (t) => {
    const id = d.newId();
    // `ctr containers create` reorders flags, so the command takes none: a script in the rootfs
    fs.writeFileSync(path.join(d.rootfs, 'late.sh'), 'sleep 1; echo late; exit 6\n');
    let r = d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/sh', '/late.sh']);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['task', 'start', '--fifo-dir', d.fifoDir, id]);
    t.equal(r.status, 6, show(r));
    t.equal(r.stdout, 'late\n');
    r = d.ctr(['task', 'start', '-d', '--fifo-dir', d.fifoDir, id]);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['task', 'attach', id], { timeoutMs: 30_000 });
    t.equal(r.status, 6, `attach returns the exit status (${show(r)})`);
    t.match(r.stdout, 'late', 'attach relays output');
    t.equal(d.ctr(['task', 'ls', '-q']).stdout, '', 'attach deleted the task');
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
  });

  t.test('SIGKILL from outside: ctr run exits 137', async (t) => {
    const id = d.newId();
    const run = d.ctrAsync(['run', '--rm', ...d.runArgs(), id, '/bin/sleep', '1000']);
    t.ok(await waitFor(() => /RUNNING/.test(d.ctr(['task', 'ls']).stdout), 20_000), 'running');
    t.equal(d.ctr(['task', 'kill', '-s', 'SIGKILL', id]).status, 0);
    const r = await run;
    t.equal(r.status, 137, show(r));
  });

  t.test('an OOM kill: /tasks/oom before the exit, 137', async (t) => {
    const events = d.ctrSpawn(['events', 'topic~="/tasks/(oom|exit)"']);
    let out = '';
    events.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    await sleep(500);
    const id = d.newId();
    // busybox dd reads a whole 64 MiB block into one buffer: more than the 16 MiB limit allows (no swap counts here).
    const r = d.ctr(['run', '--rm', '--memory-limit', String(16 * 1024 * 1024), ...d.runArgs(), id, '/bin/dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    t.equal(r.status, 137, `killed by the OOM killer (${show(r)})`);
    t.ok(await waitFor(() => out.includes(`/tasks/exit {"container_id":"${id}"`), 5000), 'the exit event arrived');
    events.kill('SIGTERM');
    const topics = out
      .split('\n')
      .filter((l) => l.includes(`"container_id":"${id}"`))
      .map((l) => /\s(\/tasks\/[a-z]+)\s/.exec(l)?.[1]);
    t.same(topics, ['/tasks/oom', '/tasks/exit'], `oom, then exit (${out})`);
    t.match(out, new RegExp(`/tasks/oom \\{"container_id":"${id}"\\}`), 'the oom event names the container');
  });

  t.test('events: every topic in order, filters', async (t) => {
    const all = d.ctrSpawn(['events']);
    const filtered = d.ctrSpawn(['events', `topic~="/tasks/(start|exit)"`, 'topic=="/containers/delete"']);
    const other = d.ctrSpawn(['events', 'namespace==someoneelse']);
    let out = '';
    let fout = '';
    let oout = '';
    all.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    filtered.stdout!.setEncoding('utf8').on('data', (s: string) => (fout += s));
    other.stdout!.setEncoding('utf8').on('data', (s: string) => (oout += s));
    await sleep(500);
    const id = d.newId();
    let r = d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['task', 'exec', '--fifo-dir', d.fifoDir, '--exec-id', 'x1', id, '/bin/true']);
    t.equal(r.status, 0, show(r));
    d.ctr(['task', 'pause', id]);
    d.ctr(['task', 'resume', id]);
    d.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await waitFor(() => /STOPPED/.test(d.ctr(['task', 'ls']).stdout), 10_000);
    d.ctr(['task', 'delete', id]);
    d.ctr(['containers', 'rm', id]);
    const ns = `ev${process.pid}`;
    d.ctr(['namespaces', 'create', ns]);
    d.ctr(['namespaces', 'label', ns, 'x=y']);
    d.ctr(['namespaces', 'rm', ns]);
    await waitFor(() => out.includes('/namespaces/delete'), 5000);
    await sleep(200);
    for (const c of [all, filtered, other]) c.kill('SIGTERM');
    const topics = out
      .split('\n')
      .filter((l) => l.includes(` ${d.ns} `) || l.includes('/namespaces/'))
      .map((l) => /\s(\/[a-z-]+\/[a-z-]+)\s/.exec(l)?.[1])
      .filter((x) => x !== undefined);
    t.same(topics, [
      '/containers/create',
      '/tasks/create',
      '/tasks/start',
      '/tasks/exec-added',
      '/tasks/exec-started',
      '/tasks/exit',
      '/tasks/paused',
      '/tasks/resumed',
      '/tasks/exit',
      '/tasks/delete',
      '/containers/delete',
      '/namespaces/create',
      '/namespaces/update',
      '/namespaces/delete',
    ]);
    t.match(out, new RegExp(`/tasks/exit \\{"container_id":"${id}","id":"x1"`), 'exec exit carries the exec id');
    t.match(out, new RegExp(`/tasks/exit \\{"container_id":"${id}","id":"${id}","pid":\\d+,"exit_status":137`), 'init exit 137');
    const ftopics = fout.split('\n').map((l) => /\s(\/[a-z-]+\/[a-z-]+)\s/.exec(l)?.[1]).filter((x) => x !== undefined);
    t.same(ftopics, ['/tasks/start', '/tasks/exit', '/tasks/exit', '/containers/delete'], 'filters: ~= and ==, or between filters');
    t.equal(oout, '', 'namespace filter excludes');
  });

  t.test('errors: unknown ids, wrong namespace, bad specs leave nothing behind', async (t) => {
    let r = d.ctr(['task', 'start', 'nosuch']);
    t.equal(r.status, 1);
    t.match(r.stderr, 'container "nosuch" in namespace');
    r = d.ctr(['task', 'kill', 'nosuch']);
    t.equal(r.status, 1);
    const id = d.newId();
    r = d.ctr(['containers', 'create', '--rootfs', d.rootfs, id, '/bin/true']);
    r = d.ctr(['task', 'start', '--fifo-dir', d.fifoDir, id], { ns: 'elsewhere' });
    t.equal(r.status, 1, 'the container is not visible from another namespace');
    t.match(r.stderr, `container "${id}" in namespace "elsewhere": not found`);
    t.equal(d.ctr(['containers', 'rm', id]).status, 0);
    d.ctr(['namespaces', 'rm', 'elsewhere']);
    r = d.ctr(['run', '--rm', ...d.runArgs(), d.newId(), '/no/such/binary']);
    t.equal(r.status, 1, `a missing program fails the run (${show(r)})`);
    t.match(r.stderr, /no such file|not found|executable/i);
    r = d.ctr(['run', '--rm', '--fifo-dir', d.fifoDir, '--rootfs', path.join(d.sandbox, 'nonexistent'), d.newId(), '/bin/true']);
    t.equal(r.status, 1, `a missing rootfs fails the run (${show(r)})`);
    t.equal(d.ctr(['task', 'ls', '-q']).stdout, '', 'no task left');
    for (const c of d.ctr(['containers', 'ls', '-q']).stdout.split('\n').filter((x) => x !== '')) d.ctr(['containers', 'rm', c]);
    t.ok(await waitFor(() => fs.readdirSync(path.join(d.shimRoot, d.ns)).length === 0, 10_000), 'no shim directory left');
    t.ok(await waitFor(() => d.shimPids().length === 0, 10_000), 'no shim process left');
  });

  t.test('20 containers in parallel', async (t) => {
    const ids = Array.from({ length: 20 }, () => d.newId('par'));
    const results = await Promise.all(
      ids.map((id, i) => d.ctrAsync(['run', '--rm', ...d.runArgs(), id, '/bin/sh', '-c', `echo ${id}; exit ${i % 5}`], { timeoutMs: 120_000 })),
    );
    results.forEach((r, i) => {
      t.equal(r.status, i % 5, `container ${i} exit status (${show(r)})`);
      t.equal(r.stdout, `${ids[i]}\n`, `container ${i} output`);
    });
    t.equal(d.ctr(['containers', 'ls', '-q']).stdout, '');
    t.ok(await waitFor(() => d.shimPids().length === 0, 10_000), 'every shim exited');
  });
}
