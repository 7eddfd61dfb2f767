/**
 * tsctl against a private tsrund: run (attached and detached), exit codes, ps, logs, exec,
 * stop/start/restart/kill, rm, wait, inspect, names, binds and process flags.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { startTsctl, tsctlMissing, tsctlPath, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';
import { sleep, waitFor } from '../helpers/wait';

const why = tsctlMissing();
let e: TsctlEnv;
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;

interface PsRow {
  ID: string;
  Names: string;
  State: string;
  Status: string;
  Command: string;
}
const psJson = (): PsRow[] =>
  e
    .tsctl(['ps', '-a', '--format', 'json'])
    .stdout.split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as PsRow);
const stateOf = (name: string): string | undefined => psJson().find((r) => r.Names === name)?.State;

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
  });

  t.test('run attached: output, exit codes 0 and 3, 127 and 126, --rm', async (t) => {
    const rootfs = e.d.rootfs;
    let r = e.tsctl(['run', '--rm', rootfs, 'sh', '-c', 'echo out; echo err >&2']);
    t.equal(r.status, 0, show(r));
    t.equal(r.stdout, 'out\n');
    t.equal(r.stderr, 'err\n');
    r = e.tsctl(['run', '--rm', rootfs, 'sh', '-c', 'exit 3']);
    t.equal(r.status, 3, show(r));
    r = e.tsctl(['run', '--rm', rootfs, '/no/such/binary']);
    t.equal(r.status, 127, show(r));
    t.match(r.stderr, /^tsctl: .*no such file or directory\n$/, 'one line');
    r = e.tsctl(['run', '--rm', rootfs, '/etc']);
    t.equal(r.status, 126, show(r));
    fs.writeFileSync(path.join(rootfs, 'noexec'), '#!/bin/sh\n', { mode: 0o644 });
    r = e.tsctl(['run', '--rm', rootfs, '/noexec']);
    t.equal(r.status, 126, show(r));
    r = e.tsctl(['run', '--rm', '-i', rootfs, 'cat'], { input: 'piped\n' });
    t.equal(r.stdout, 'piped\n', 'stdin with -i');
    r = e.tsctl(['run', '--rm', rootfs, 'cat'], { input: 'ignored\n' });
    t.equal(r.stdout, '', 'no stdin without -i');
    t.same(psJson(), [], '--rm left nothing');
    r = e.tsctl(['run', '--rm', '/no/such/dir', 'true']);
    t.equal(r.status, 125, 'a missing image is tsctl\'s error');
    // an empty name once ran the working directory as the rootfs and wrote its etc/hosts there
    const cwd = fs.mkdtempSync(path.join(e.tmp, 'cwd-'));
    const empty = spawnSync(tsctlPath, ['run', '--rm', '', 'true'], { encoding: 'utf8', cwd, env: e.env, timeout: 60_000 });
    t.equal(empty.status, 125, `an empty image name: ${empty.stderr}`);
    t.match(empty.stderr, 'invalid reference format');
    t.same(fs.readdirSync(cwd), [], 'nothing written to the working directory');
    fs.rmSync(cwd, { recursive: true, force: true });
    r = e.tsctl(['run', '--bogus', rootfs]);
    t.equal(r.status, 125, show(r));
    t.match(r.stderr, 'tsctl: unknown flag: --bogus');
  });

  t.test('run -d, ps, logs --tail -t --since, exec, stop, start, restart, rm', async (t) => {
    const r0 = e.tsctl(['run', '-d', '--name', 'web', e.d.rootfs, 'sh', '-c', 'trap "exit 0" TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done']);
    t.equal(r0.status, 0, show(r0));
    const id = r0.stdout.trim();
    t.match(id, /^[0-9a-f]{64}$/, '64 hex id');
    let r = e.tsctl(['ps']);
    t.match(r.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES\n/);
    t.match(r.stdout, new RegExp(`${id.slice(0, 12)}\\s+\\S+\\s+"sh -c 'trap "exit 0…"\\s+.*ago\\s+Up .*\\s+web\\n`));
    t.ok(await waitFor(() => (e.tsctl(['logs', 'web']).stdout.match(/line/g) ?? []).length >= 5, 5000), 'logs show output');
    r = e.tsctl(['logs', '--tail', '2', 'web']);
    t.equal(r.stdout.split('\n').filter((l) => l !== '').length, 2, `--tail 2: ${r.stdout}`);
    r = e.tsctl(['logs', '-t', '--tail', '1', id.slice(0, 5)]);
    t.match(r.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line \d+\n$/, '-t prefixes the time; short id prefix resolves');
    await sleep(1200);
    r = e.tsctl(['logs', '--since', '1s', 'web']);
    const n = r.stdout.split('\n').filter((l) => l !== '').length;
    t.ok(n >= 3 && n <= 14, `--since 1s shows the last second only (${n} lines)`);
    const raw = fs.readFileSync(e.tsctl(['inspect', 'web']).stdout.match(/"LogPath": "([^"]+)"/)![1]!, 'utf8').split('\n')[0]!;
    t.match(JSON.parse(raw), { log: 'line 0\n', stream: 'stdout', time: /Z$/ }, "docker's json-file format");
    r = e.tsctl(['exec', 'web', 'sh', '-c', 'echo in; echo err >&2; exit 4']);
    t.equal(r.status, 4, show(r));
    t.equal(r.stdout, 'in\n');
    t.equal(r.stderr, 'err\n');
    r = e.tsctl(['exec', '-i', 'web', 'cat'], { input: 'to exec\n' });
    t.equal(r.stdout, 'to exec\n', 'exec -i');
    t.equal(e.tsctl(['exec', 'web', '/nope']).status, 127);
    r = e.tsctl(['exec', '-e', 'A=1', '-w', '/tmp', 'web', 'sh', '-c', 'echo $A $(pwd)']);
    t.equal(r.stdout, '1 /tmp\n', 'exec -e -w');
    {
      // A signal to tsctl exec goes to the process (as ctr's task exec), so tsctl ends with it and cleans up.
      const before = fs.readdirSync(e.tmp);
      const c = spawn(tsctlPath, ['exec', 'web', 'sh', '-c', 'trap "exit 9" TERM; echo ready; while :; do sleep 0.1; done'], { stdio: ['ignore', 'pipe', 'pipe'], env: e.env });
      let out = '';
      c.stdout.setEncoding('utf8').on('data', (x: string) => (out += x));
      const closed = new Promise<number | null>((res) => c.on('close', (code) => res(code)));
      for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((res) => setTimeout(res, 100));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
      const code = await closed;
      clearTimeout(timer);
      t.equal(code, 9, 'SIGTERM reached the exec, whose trap chose the status');
      t.same(fs.readdirSync(e.tmp), before, 'no fifo dir left behind');
    }
    const t0 = Date.now();
    r = e.tsctl(['stop', 'web']);
    t.equal(r.status, 0, show(r));
    t.equal(r.stdout, 'web\n');
    t.ok(Date.now() - t0 < 5000, 'SIGTERM ended it before the grace period');
    t.equal(stateOf('web'), 'exited');
    t.match(e.tsctl(['ps', '-a']).stdout, /Exited \(0\) .* ago\s+web/);
    t.notMatch(e.tsctl(['ps']).stdout, 'web', 'ps without -a hides exited');
    t.equal(e.tsctl(['start', 'web']).status, 0);
    t.equal(stateOf('web'), 'running');
    t.equal(e.tsctl(['restart', 'web']).status, 0);
    t.equal(stateOf('web'), 'running');
    r = e.tsctl(['rm', 'web']);
    t.equal(r.status, 1, 'rm of a running container fails');
    t.match(r.stderr, /^tsctl: You cannot remove a running container/);
    r = e.tsctl(['rm', '-f', 'web']);
    t.equal(r.status, 0, show(r));
    t.equal(stateOf('web'), undefined);
  });

  t.test('stop -t: SIGTERM ignored, SIGKILL after the grace period', async (t) => {
    const id = e.tsctl(['run', '-d', e.d.rootfs, 'sh', '-c', 'trap "" TERM; sleep 1000']).stdout.trim();
    const t0 = Date.now();
    const r = e.tsctl(['stop', '-t', '1', id]);
    t.equal(r.status, 0, show(r));
    const took = Date.now() - t0;
    t.ok(took >= 900 && took < 6000, `took ${took} ms`);
    t.match(e.tsctl(['ps', '-a']).stdout, /Exited \(137\)/);
    t.equal(e.tsctl(['rm', id]).status, 0);
  });

  t.test('kill -s, wait', async (t) => {
    const id = e.tsctl(['run', '-d', e.d.rootfs, 'sh', '-c', 'trap "exit 7" USR1; while true; do sleep 0.1; done']).stdout.trim();
    const waiting = e.tsctlAsync(['wait', id]);
    await sleep(300);
    let r = e.tsctl(['kill', '-s', 'USR1', id]);
    t.equal(r.status, 0, show(r));
    r = await waiting;
    t.equal(r.stdout, '7\n', 'wait prints the exit code');
    t.equal(r.status, 0);
    r = e.tsctl(['kill', id]);
    t.equal(r.status, 1, 'kill of a stopped container fails');
    t.match(r.stderr, /is not running/);
    r = e.tsctl(['wait', id]);
    t.equal(r.stdout, '7\n', 'wait on an exited container answers at once');
    t.equal(e.tsctl(['rm', id]).status, 0);
  });

  t.test('inspect', async (t) => {
    const id = e.tsctl(['run', '-d', '--name', 'insp', '--restart', 'on-failure:3', '--memory', '32m', e.d.rootfs, 'sleep', '1000']).stdout.trim();
    const r = e.tsctl(['inspect', 'insp']);
    t.equal(r.status, 0, show(r));
    const [o] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    t.match(o, {
      Id: id,
      Name: '/insp',
      State: { Status: 'running', Running: true, Paused: false, Restarting: false, ExitCode: 0, Pid: Number, StartedAt: /^\d{4}-/, FinishedAt: '0001-01-01T00:00:00Z' },
      Config: { Cmd: ['sleep', '1000'], Hostname: id.slice(0, 12) },
      HostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 }, Memory: 32 * 1024 * 1024 },
    });
    t.ok(fs.existsSync(`/proc/${String((o!['State'] as { Pid: number }).Pid)}`), 'Pid is a live host process');
    const f = e.tsctl(['inspect', '-f', '{{.State.Pid}} {{.Name}} {{if .State.Running}}up{{end}} {{json .HostConfig.RestartPolicy}}', 'insp', 'nosuch']);
    t.equal(f.status, 1, 'a missing container among them: exit 1');
    t.equal(f.stdout, `${String((o!['State'] as { Pid: number }).Pid)} /insp up {"Name":"on-failure","MaximumRetryCount":3}\n`, '-f renders one line per container');
    t.match(f.stderr, /nosuch/);
    const bad = e.tsctl(['inspect', '-f', '{{.Name | upper}}', 'insp']);
    t.not(bad.status, 0, show(bad));
    t.match(bad.stderr, /template: pipelines are not supported/);
    const rmr = e.tsctl(['rm', '-f', 'insp']);
    t.equal(rmr.status, 0, show(rmr));
  });

  t.test('inspect: OOMKilled after an OOM kill, cleared by the next start', async (t) => {
    // The first run fills a 64 MiB buffer under a 16 MiB limit; the marker makes the second one sleep.
    const marker = `/tmp/oom-once-${process.pid}`;
    t.teardown(() => fs.rmSync(path.join(e.d.rootfs, marker), { force: true }));
    const script = `if [ -e ${marker} ]; then exec sleep 1000; fi; touch ${marker}; exec dd if=/dev/zero of=/dev/null bs=64M count=1`;
    let r = e.tsctl(['run', '--name', 'oomer', '--memory', '16m', e.d.rootfs, 'sh', '-c', script]);
    t.equal(r.status, 137, `the OOM killer ends it (${show(r)})`);
    const state = (): Record<string, unknown> => (JSON.parse(e.tsctl(['inspect', 'oomer']).stdout) as Array<{ State: Record<string, unknown> }>)[0]!.State;
    t.match(state(), { Status: 'exited', OOMKilled: true, ExitCode: 137 });
    r = e.tsctl(['start', 'oomer']);
    t.equal(r.status, 0, show(r));
    t.ok(await waitFor(() => stateOf('oomer') === 'running', 10_000), 'running again');
    t.match(state(), { Status: 'running', OOMKilled: false });
    r = e.tsctl(['rm', '-f', 'oomer']);
    t.equal(r.status, 0, show(r));
  });

  t.test('unknown containers, name conflicts', async (t) => {
    for (const cmd of [['stop'], ['start'], ['rm'], ['kill'], ['logs'], ['inspect'], ['wait'], ['pause'], ['top'], ['exec', 'x', 'true']]) {
      const args = cmd[0] === 'exec' ? ['exec', 'nosuch', 'true'] : [...cmd, 'nosuch'];
      const r = e.tsctl(args);
      t.equal(r.status, 1, `${cmd[0]}: ${show(r)}`);
      t.match(r.stderr, /^tsctl: (Error: )?No such container: nosuch\n$/, `${cmd[0]}: one clear line`);
    }
    t.equal(e.tsctl(['run', '-d', '--name', 'dup', e.d.rootfs, 'sleep', '100']).status, 0);
    const r = e.tsctl(['run', '-d', '--name', 'dup', e.d.rootfs, 'sleep', '100']);
    t.equal(r.status, 125, show(r));
    t.match(r.stderr, /^tsctl: Conflict\. The container name "\/dup" is already in use by container "[0-9a-f]{64}"/);
    const rmr = e.tsctl(['rm', '-f', 'dup']);
    t.equal(rmr.status, 0, show(rmr));
  });

  t.test('-e --env-file -w -u -h -v (rw and ro)', async (t) => {
    const envFile = path.join(e.d.sandbox, 'env.list');
    fs.writeFileSync(envFile, '# comment\nFROM_FILE=yes\nPASSED\n\n');
    fs.appendFileSync(path.join(e.d.rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
    const vol = path.join(e.d.sandbox, 'vol');
    fs.mkdirSync(vol, { mode: 0o777 });
    fs.chmodSync(vol, 0o777);
    fs.writeFileSync(path.join(vol, 'in.txt'), 'from host\n');
    const r = e.tsctl(
      ['run', '--rm', '-e', 'A=1', '-e', 'PASSED', '--env-file', envFile, '-w', '/tmp', '-u', 'nobody', '-h', 'box', '-v', `${vol}:/data`, '-v', `${vol}:/ro:ro`,
        e.d.rootfs, 'sh', '-c', 'echo $A $FROM_FILE $PASSED $HOSTNAME; pwd; id -u; hostname; cat /data/in.txt; echo w > /data/out.txt && echo rw-ok; echo w > /ro/x 2>/dev/null || echo ro-refused; echo $PATH'],
      { env: { PASSED: 'through' } },
    );
    t.equal(r.status, 0, show(r));
    t.equal(
      r.stdout,
      '1 yes through box\n/tmp\n65534\nbox\nfrom host\nrw-ok\nro-refused\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n',
    );
    t.equal(fs.readFileSync(path.join(vol, 'out.txt'), 'utf8'), 'w\n', 'the write reached the host');
    t.notOk(fs.existsSync(path.join(vol, 'x')));
  });

  t.test('run -d --rm removes the container when it exits', async (t) => {
    const id = e.tsctl(['run', '-d', '--rm', e.d.rootfs, 'sh', '-c', 'sleep 0.3']).stdout.trim();
    t.match(id, /^[0-9a-f]{64}$/);
    t.ok(await waitFor(() => !e.tsctl(['ps', '-aq', '--no-trunc']).stdout.includes(id), 10_000), 'gone after its exit');
  });
}
