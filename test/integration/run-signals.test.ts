/**
 * `run` in the foreground: signals sent to the runtime reach the container's init, and the
 * runtime exits with init's status (128+signal when a signal killed it), then the container is
 * gone. runc does the same, so this runs against either.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { waitForStatus } from '../helpers/container';
import { requires } from '../helpers/requires';
import { waitFor } from '../helpers/wait';

/** `run` in the foreground; the container's stdout is the runtime's, collected in `output()`. */
function runInForeground(binary: string, argv: readonly string[]): { pid: number; output(): string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(binary, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { pid: child.pid ?? -1, output: () => out, done };
}

t.test('SIGTERM to run reaches init, and run exits with init status', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', 'trap "exit 42" TERM; echo trapped; while true; do sleep 0.05; done'] });
  const r = runInForeground(b.rt.binary, b.rt.argv(['run', '--bundle', b.dir, b.id]));
  t.ok(await waitForStatus(b.rt, b.id, 'running', 10_000), 'the container runs');
  t.ok(await waitFor(() => r.output().includes('trapped\n'), 10_000), 'the shell installed its trap');
  process.kill(r.pid, 'SIGTERM');
  const end = await r.done;
  t.same(end, { code: 42, signal: null }, 'run exits 42: the trap ran inside the container');
  t.same(fs.readdirSync(b.rt.root), [], 'the container is deleted after it exits');
});

t.test('a signal that kills init gives 128+signal', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  // Without a pid namespace of its own, sh is not an init and SIGHUP kills it.
  const b = makeBundle(t, {
    args: ['sh', '-c', 'while true; do sleep 0.05; done'],
    patch: (s) => {
      s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'pid');
    },
  });
  const r = runInForeground(b.rt.binary, b.rt.argv(['run', '--bundle', b.dir, b.id]));
  t.ok(await waitForStatus(b.rt, b.id, 'running', 10_000), 'the container runs');
  process.kill(r.pid, 'SIGHUP');
  const end = await r.done;
  t.same(end, { code: 128 + 1, signal: null }, 'run exits 129');
  t.same(fs.readdirSync(b.rt.root), [], 'the container is deleted after it exits');
});
