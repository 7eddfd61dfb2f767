import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { startDetached } from '../../../shim/detached';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-detached-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A script that runs as the daemon: $1 is the argument startDetached passes. */
function script(dir: string, body: string): string {
  const p = path.join(dir, 'daemon.sh');
  fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return p;
}

/** Our unreaped children (the main thread's), from /proc. */
function children(): string[] {
  try {
    return fs.readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

async function noChildren(): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (children().length === 0) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

t.test('the readiness line comes back; the first process is reaped; the daemon is in its own session with 0-2 on /dev/null', async (t) => {
  const d = tmp(t);
  const out = path.join(d, 'seen');
  // the double fork: the grandchild reports, the first process exits at once
  const bin = script(d, `( echo "$0 $1 $(ps -o sid= -p $$ | tr -d ' ') $$ $(readlink /proc/self/fd/0) $(readlink /proc/self/fd/2)" > ${out}; echo ok >&3 ) &\nexit 0`);
  t.equal(await startDetached(bin, 'argv0-ignored-by-sh', 'the-arg', 5000, 'start test daemon'), 'ok\n');
  t.ok(await noChildren(), 'no zombie left behind');
  const [, arg, sid, pid, fd0, fd2] = fs.readFileSync(out, 'utf8').trim().split(' ');
  t.equal(arg, 'the-arg');
  t.equal(sid, pid, 'the daemon leads its own session');
  t.equal(fd0, '/dev/null');
  t.equal(fd2, '/dev/null');
});

t.test('a daemon that exits without a word: empty answer, reaped', async (t) => {
  const d = tmp(t);
  t.equal(await startDetached(script(d, 'exit 3'), 'x', 'y', 5000, 'start test daemon'), '');
  t.ok(await noChildren());
});

t.test('a missing binary is Unavailable, naming what was started', async (t) => {
  const d = tmp(t);
  await t.rejects(startDetached(path.join(d, 'missing'), 'x', 'y', 5000, 'start test daemon'), { code: 'Unavailable', message: /start test daemon/ });
  t.same(children(), []);
});

t.test('a daemon that never answers is killed and reaped after the timeout', async (t) => {
  const d = tmp(t);
  await t.rejects(startDetached(script(d, 'exec sleep 30'), 'x', 'y', 200, 'start test daemon'), { code: 'Unavailable', message: /not ready within 200 ms/ });
  t.ok(await noChildren(), 'the stuck process was killed and reaped');
});
