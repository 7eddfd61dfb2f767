/**
 * process.terminal with --console-socket, as containerd, podman and docker use it: one message
 * with "/dev/ptmx" and the pty master; inside, 0-2 are the slave, it is the controlling tty and
 * /dev/console. Also for exec --tty. Runs against runc too.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { readState, runDetached, waitForStatus } from '../helpers/container';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

const receiver = path.resolve(__dirname, '../helpers/console-receiver.py');

/** Start the test console socket; resolves to its path and a reader of what the terminal showed. */
async function consoleSocket(t: { teardown(fn: () => void): void }, b: Bundle, name: string): Promise<{ sock: string; output: () => string; name: () => string; ended: () => boolean }> {
  const dir = b.hostDir(`console-${name}`);
  const sock = path.join(dir, 'console.sock');
  const out = path.join(dir, 'console.out');
  const p = spawn('python3', [receiver, sock, out], { stdio: 'ignore' });
  // The receiver exits once the last slave fd closes: everything the terminal showed is written.
  let ended = false;
  p.once('exit', () => (ended = true));
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  await waitFor(() => fs.existsSync(`${out}.ready`), 5000, 20);
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  return { sock, output: () => read(out), name: () => read(`${out}.name`), ended: () => ended };
}

const script = 'tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; stty size; stat -c "console %t:%T" /dev/console';

t.test('create --console-socket: the container gets a terminal', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', script],
    patch: (s) => {
      s.process.terminal = true;
      (s.process as unknown as Record<string, unknown>)['consoleSize'] = { height: 33, width: 101 };
    },
  });
  const cs = await consoleSocket(t, b, 'create');
  const c = b.rt.create(b.id, b.dir, { pidFile: b.pidFile });
  t.not(c.code, 0, 'without --console-socket create refuses a terminal');
  if (runtimeName === 'tsrun') t.match(c.stderr, /cannot allocate tty if tsrun will detach without setting console socket/, "runc's wording");
  const r = b.rt.exec(['create', '--bundle', b.dir, '--console-socket', cs.sock, b.id]);
  t.equal(r.code, 0, `create --console-socket exits 0 (${describe(r)})`);
  t.equal(b.rt.start(b.id).code, 0, 'start exits 0');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped', 10_000), 'the process ends');
  t.ok(await waitFor(cs.ended, 10_000), 'the console receiver saw the terminal close');
  t.equal(cs.name(), '/dev/ptmx 1', 'one message: the name /dev/ptmx and one fd');
  const out = cs.output();
  t.match(out, /\/dev\/pts\/\d+/, 'tty names a pts of the container');
  t.match(out, /all-tty/, 'fds 0, 1 and 2 are the terminal');
  t.match(out, /33 101/, 'consoleSize reached the terminal');
  t.match(out, /console 88:0|console 136:[0-9a-f]+/, '/dev/console is the pty');
});

t.test('exec --tty --console-socket', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'] });
  runDetached(b);
  t.equal(readState(b.rt, b.id).status, 'running', 'the container runs');
  const cs = await consoleSocket(t, b, 'exec');
  const r = b.rt.exec(['exec', '--tty', '--console-socket', cs.sock, '--detach', b.id, 'sh', '-c', 'tty; [ -t 0 ] && echo exec-tty']);
  t.equal(r.code, 0, `exec --tty exits 0 (${describe(r)})`);
  await waitFor(() => /exec-tty/.test(cs.output()), 6000, 50);
  t.match(cs.output(), /\/dev\/pts\/\d+[\s\S]*exec-tty/, 'the exec has a terminal of its own');
  t.equal(b.rt.delete(b.id, { force: true }).code, 0, 'delete --force');
});

const ptyDrive = path.resolve(__dirname, '../helpers/pty-drive.py');

/** Run the runtime on a terminal of our own (pty-drive.py); returns what the terminal showed and the exit code. */
function onOurTerminal(b: Bundle, args: readonly string[], script: object): { text: string; code: number } {
  const r = spawnSync('python3', [ptyDrive, JSON.stringify(script), b.rt.binary, ...b.rt.argv(args, false)], { encoding: 'utf8', timeout: 60_000 });
  const text = r.stdout ?? '';
  const m = /\nEXIT (-?\d+)\s*$/.exec(text);
  return { text, code: m ? Number(m[1]) : -1 };
}

const interactive = 'tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; stty size; read x; echo "got:$x"; sleep 1; stty size; exit 3';
const userScript = { rows: 25, cols: 81, steps: [{ after: '25 81', send: 'hello\r' }, { after: 'got:hello', resize: [30, 100] }] };

t.test('run without --console-socket: tsrun is the terminal (raw mode, window size, SIGWINCH)', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', interactive],
    patch: (s) => {
      s.process.terminal = true;
    },
  });
  const r = onOurTerminal(b, ['run', '--bundle', b.dir, b.id], userScript);
  t.equal(r.code, 3, `run exits with the process's status (${r.text.trim().split('\n').slice(-3).join(' | ')})`);
  t.match(r.text, /\/dev\/pts\/\d+/, 'the process has a pty of the container');
  t.match(r.text, /all-tty/, 'fds 0, 1 and 2 are the terminal');
  t.match(r.text, /^25 81\s*$/m, 'our window size is the container terminal size from the start');
  t.match(r.text, /got:hello/, 'our keystrokes reach the container');
  t.equal(r.text.split('hello').length - 1, 2, 'echoed once by the container terminal and not by ours: ours is in raw mode');
  t.match(r.text, /^30 100\s*$/m, 'a resize of our terminal (SIGWINCH) reaches the container');
  t.equal(b.rt.exec(['state', b.id]).code, 1, 'run deleted the container');
});

t.test('exec -t without --console-socket: tsrun is the terminal', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'] });
  runDetached(b);
  t.equal(readState(b.rt, b.id).status, 'running', 'the container runs');
  const r = onOurTerminal(b, ['exec', '-t', b.id, 'sh', '-c', interactive.replace('exit 3', 'exit 4')], userScript);
  t.equal(r.code, 4, `exec exits with the process's status (${r.text.trim().split('\n').slice(-3).join(' | ')})`);
  t.match(r.text, /all-tty/, 'fds 0, 1 and 2 are the terminal');
  t.match(r.text, /^25 81\s*$/m, 'our window size');
  t.match(r.text, /got:hello/, 'our keystrokes reach the process');
  t.match(r.text, /^30 100\s*$/m, 'resize');
  t.equal(b.rt.delete(b.id, { force: true }).code, 0, 'delete --force');
});
