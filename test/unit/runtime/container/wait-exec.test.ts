/**
 * `start` runs poststart hooks only once init has exec'd the container's process: waitForExec
 * watches init's comm name, which exec replaces with the program's.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { waitForExec } from '../../../../runtime/container/lifecycle';
import { INIT_PROCESS_NAME } from '../../../../runtime/plan/names';

/** A process whose comm is init's: /bin/sh run through a link named like it. */
function fakeInit(t: { teardown(fn: () => void): void }, script: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-wait-exec-'));
  const link = path.join(dir, INIT_PROCESS_NAME);
  fs.symlinkSync('/bin/sh', link);
  const child = spawn(link, ['-c', script], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return child;
}

t.test('waits while the process is still init, then sees the exec', async (t) => {
  const child = fakeInit(t, 'sleep 0.4; exec sleep 5');
  await new Promise((r) => setTimeout(r, 100));
  t.match(fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8'), INIT_PROCESS_NAME.slice(0, 15), 'still named init');
  t.equal(waitForExec(child.pid!, 50), false, 'not yet');
  const t0 = Date.now();
  t.equal(waitForExec(child.pid!, 5000), true, 'exec seen');
  t.ok(Date.now() - t0 >= 100, 'after the exec, not before');
  t.equal(fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim(), 'sleep');
});

t.test('a process that exits without exec ends the wait', async (t) => {
  const child = fakeInit(t, 'sleep 0.2; exit 3');
  const exited = new Promise((r) => child.once('exit', r));
  t.equal(waitForExec(child.pid!, 5000), true, 'zombie or gone counts');
  await exited;
  t.equal(waitForExec(999_999_999, 10), true, 'no such pid');
});
