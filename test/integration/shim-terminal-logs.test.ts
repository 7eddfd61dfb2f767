/**
 * tsrun-shim terminal mode (a pty through --console-socket, resize visible to `stty size`) and
 * docker json-file logs with rotation — against every Runtime.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { requires } from '../helpers/requires';
import { RUNTIMES, shimRig } from '../helpers/shim';
import { waitFor } from '../helpers/wait';

for (const rt of RUNTIMES) {
  t.test(`${rt.name}: terminal: pty relayed, resize reaches the container`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const f = rig.fifos('tty', { terminal: true, stdin: true });
    const c = await rig.start(id, rt.choice, ['sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo is-a-tty; read line; stty size; echo got:$line'], {
      stdio: f.stdio,
      patch: (s) => {
        s.process.terminal = true;
      },
    });
    await c.create();
    const w = f.openStdin();
    await c.start();
    await c.resizePty(123, 45);
    t.ok(await waitFor(() => f.out().includes('is-a-tty'), 5000), 'the process has a terminal');
    w.write('hello\n');
    const e = await c.wait();
    t.equal(e.exitStatus, 0, 'exit 0');
    // The output can reach our fifo reader after wait's answer (same event-loop turn, any order).
    t.ok(await waitFor(() => /45 123/.test(f.out()) && /got:hello/.test(f.out()), 2000), `stty size shows the resize and stdin reached the terminal (${JSON.stringify(f.out())})`);

    // exec with a terminal as well
    const c2id = rig.newId();
    const c2 = await rig.start(c2id, rt.choice, ['sleep', '100']);
    await c2.create();
    await c2.start();
    const fe = rig.fifos('etty', { terminal: true });
    const proc = JSON.parse(Buffer.from(rig.spec(c2id, ['x'])).toString()).process as Record<string, unknown>;
    await c2.exec('t1', Buffer.from(JSON.stringify({ ...proc, terminal: true, args: ['sh', '-c', 'sleep 0.3; stty size'] })), fe.stdio);
    await c2.start('t1');
    await c2.resizePty(77, 22, 't1');
    t.equal((await c2.wait('t1')).exitStatus, 0);
    t.ok(await waitFor(() => /22 77/.test(fe.out()), 2000), `exec terminal resized (${JSON.stringify(fe.out())})`);
    await c2.kill(9);
    await c2.wait();
    await c.delete();
    await c2.delete();
  });

  t.test(`${rt.name}: json-file logs with rotation`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const rig = shimRig(t);
    const id = rig.newId();
    const logDir = rig.bundle.hostDir('logs');
    const log = path.join(logDir, 'c.log');
    const f = rig.fifos('log');
    const c = await rig.start(id, rt.choice, ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); done; echo oops >&2; printf partial'], {
      stdio: f.stdio,
      log: { path: log, maxSize: 1000, maxFiles: 3 },
    });
    await c.create();
    await c.start();
    t.equal((await c.wait()).exitStatus, 0);
    t.ok(await waitFor(() => /line-39\npartial$/.test(f.out()), 2000), `the fifo still gets the output (${JSON.stringify(f.out().slice(-40))})`);
    const files = fs.readdirSync(logDir).sort();
    t.same(files, ['c.log', 'c.log.1', 'c.log.2'], 'rotated, three files kept');
    for (const fl of files) t.ok(fs.statSync(path.join(logDir, fl)).size <= 1000, `${fl} within maxSize`);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    const stdoutLines = lines.filter((l) => l.stream === 'stdout');
    const last = stdoutLines[stdoutLines.length - 1]!;
    t.same([last.log, last.stream], ['partial', 'stdout'], 'partial last line kept, no newline');
    t.ok(lines.some((l) => l.log === 'oops\n' && l.stream === 'stderr'), 'stderr lines are marked stderr');
    t.match(lines[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'RFC3339Nano time');
    await c.delete();
  });
}
