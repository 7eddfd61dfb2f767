/**
 * containerd 1.6 (containerd-shim-runc-v2) driving the runtime under test through
 * `ctr run --runc-binary`, checked through ctr itself (docs/engines.md §3a): output, exit codes,
 * stdin, detached run + exec (also -t), kill, pause/resume, task ps, metrics, a memory limit
 * reaching the cgroup, seccomp in init and exec, fds, default devices, and nothing left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { requires } from '../helpers/requires';
import {
  cgroupFile,
  defaultDevices,
  describeCli,
  leakedFds,
  leakedFdsScript,
  listTree,
  missingTools,
  onTerminal,
  startContainerd,
  type Containerd,
  WAIT_FOR_TTY_SIZE,
} from '../helpers/engines';

const skip = missingTools('containerd', 'ctr', 'containerd-shim-runc-v2', 'script');

t.test('containerd 1.6 with ctr', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  if (skip !== undefined) {
    t.plan(0, skip);
    return;
  }
  const c: Containerd = await startContainerd(t);
  let seq = 0;
  const newId = () => `c${process.pid}-${++seq}`;
  const run = (id: string, args: readonly string[], flags: readonly string[] = [], input?: string) =>
    c.ctr(['run', '--rm', ...c.runFlags, ...flags, '--rootfs', c.rootfs, id, ...args], input === undefined ? {} : { input });
  const noState = (t: { same: (a: unknown, b: unknown, m: string) => void; notOk: (a: unknown, m: string) => void }, id: string) => {
    t.same(listTree(c.runtimeRoot).filter((p) => p.includes(id)), [], `no runtime state is left for ${id}`);
    t.notOk(fs.existsSync(path.join('/sys/fs/cgroup/memory', c.cgroupPath(id))), `the cgroup of ${id} is gone`);
  };

  await t.test('ctr run: output and exit codes', async (t) => {
    const id = newId();
    const r = run(id, ['/bin/sh', '-c', 'echo hello from $(hostname); exit 3']);
    t.equal(r.code, 3, `the container's exit code is ctr's (${describeCli(r)})`);
    t.match(r.stdout, /hello from/, 'output reaches ctr');
    noState(t, id);
    const ok = run(newId(), ['/bin/true']);
    t.equal(ok.code, 0, `exit 0 (${describeCli(ok)})`);
    const missing = run(newId(), ['/bin/nonexistent']);
    t.equal(missing.code, 1, 'a missing executable fails the create');
    t.match(missing.stderr, /OCI runtime create failed: .*"\/bin\/nonexistent": stat \/bin\/nonexistent: no such file or directory/, `runc's wording reaches ctr (${missing.stderr.trim()})`);
    const denied = run(newId(), ['/etc/passwd']);
    t.equal(denied.code, 1, 'a non-executable file fails the create');
    t.match(denied.stderr, /permission denied/, `"permission denied" reaches ctr (${denied.stderr.trim()})`);
    t.same(c.ctr(['c', 'ls', '-q']).stdout.trim(), '', 'run --rm removed every container, failed ones too');
  });

  await t.test('stdin reaches the container', async (t) => {
    const r = run(newId(), ['/bin/sh', '-c', 'read line; echo got:$line'], [], 'piped text\n');
    t.equal(r.code, 0, describeCli(r));
    t.match(r.stdout, /got:piped text/, 'the line read from stdin');
  });

  await t.test('seccomp, fds and devices in init', async (t) => {
    const r = run(newId(), ['/bin/sh', '-c', `grep '^Seccomp:' /proc/self/status; ${leakedFdsScript}; ls /dev | tr '\\n' ' '`], ['--seccomp']);
    t.equal(r.code, 0, describeCli(r));
    t.match(r.stdout, /Seccomp:\s+2/, 'ctr --seccomp: a filter is installed in init');
    t.match(r.stdout, /fds-checked/, 'the fd check ran');
    t.same(leakedFds(r.stdout), [], "only fds 0-2 in init: the shim's fd 3 did not leak");
    for (const d of defaultDevices) t.match(r.stdout, new RegExp(`(^|\\s)${d}(\\s|$)`), `/dev/${d} exists`);
  });

  await t.test('detached task: exec, ps, pause/resume, metrics, memory limit, kill', async (t) => {
    const id = newId();
    const d = c.ctr(['run', '-d', ...c.runFlags, '--seccomp', '--memory-limit', String(64 << 20), '--rootfs', c.rootfs, id, '/bin/sh', '-c', 'trap "exit 7" TERM; while :; do sleep 0.1; done']);
    t.equal(d.code, 0, `run -d (${describeCli(d)})`);
    t.teardown(() => {
      c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]);
      c.ctr(['task', 'delete', '--force', id]);
      c.ctr(['c', 'rm', id]);
    });
    const ls = c.ctr(['task', 'ls']).stdout;
    const m = new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(ls);
    t.ok(m, `task ls shows it RUNNING (${ls.trim()})`);
    const pid = Number(m?.[1] ?? 0);

    const e = c.ctr(['task', 'exec', '--fifo-dir', path.join(c.dir, 'fifo'), '--exec-id', 'e1', id, '/bin/sh', '-c', `grep '^Seccomp:' /proc/self/status; ls /proc/1/fd | tr '\\n' ' '; echo; ${leakedFdsScript}; exit 4`]);
    t.equal(e.code, 4, `the exec's exit code is ctr's (${describeCli(e)})`);
    t.match(e.stdout, /Seccomp:\s+2/, 'the exec runs under the container seccomp filter');
    t.match(e.stdout, /^0 1 2 $/m, 'init has exactly fds 0 1 2');
    t.same(leakedFds(e.stdout), [], 'the exec has only fds 0-2');

    const tty = onTerminal(['ctr', '--address', c.socket, '-n', c.namespace, 'task', 'exec', '-t', '--fifo-dir', path.join(c.dir, 'fifo'), '--exec-id', 'e2', id, '/bin/sh', '-c', `tty; ${WAIT_FOR_TTY_SIZE}; stty size`], 31, 97);
    t.equal(tty.code, 0, `task exec -t (${describeCli(tty)})`);
    t.match(tty.stdout, /\/dev\/pts\/\d+/, 'the exec has a terminal');
    t.match(tty.stdout, /31 97/, "ctr's window size reached the pty");

    const ps = c.ctr(['task', 'ps', id]);
    t.match(ps.stdout, new RegExp(`^${pid}\\s`, 'm'), `task ps lists init (${ps.stdout.trim()})`);

    const freezer = cgroupFile('freezer', c.cgroupPath(id), 'freezer.state');
    t.equal(c.ctr(['task', 'pause', id]).code, 0, 'pause');
    t.match(c.ctr(['task', 'ls']).stdout, new RegExp(`^${id}\\s+\\d+\\s+PAUSED`, 'm'), 'ctr shows PAUSED');
    t.equal(fs.readFileSync(freezer, 'utf8').trim(), 'FROZEN', 'the freezer cgroup is frozen');
    t.equal(c.ctr(['task', 'resume', id]).code, 0, 'resume');
    t.equal(fs.readFileSync(freezer, 'utf8').trim(), 'THAWED', 'thawed again');

    t.equal(fs.readFileSync(cgroupFile('memory', c.cgroupPath(id), 'memory.limit_in_bytes'), 'utf8').trim(), String(64 << 20), '--memory-limit reached memory.limit_in_bytes');
    const metrics = c.ctr(['task', 'metrics', id]);
    t.match(metrics.stdout, new RegExp(`memory.limit_in_bytes\\s+${64 << 20}`), `task metrics reads the cgroup (${describeCli(metrics)})`);

    t.equal(c.ctr(['task', 'kill', id]).code, 0, 'task kill sends SIGTERM');
    let status = '';
    for (let i = 0; i < 50 && !/STOPPED/.test(status); i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = c.ctr(['task', 'ls']).stdout;
    }
    t.match(status, new RegExp(`^${id}\\s+\\d+\\s+STOPPED`, 'm'), 'the trap ran and the task stopped');
    const del = c.ctr(['task', 'delete', id]);
    t.equal(del.code, 0, `task delete (${describeCli(del)})`);
    t.match(del.stderr, /exit code 7/, 'the exit status the trap chose');
    t.equal(c.ctr(['c', 'rm', id]).code, 0, 'container rm');
    noState(t, id);
  });

  await t.test('kill -s SIGKILL of a running task gives 137', async (t) => {
    const id = newId();
    t.equal(c.ctr(['run', '-d', ...c.runFlags, '--rootfs', c.rootfs, id, '/bin/sleep', '1000']).code, 0, 'run -d');
    t.teardown(() => {
      c.ctr(['task', 'delete', '--force', id]);
      c.ctr(['c', 'rm', id]);
    });
    t.equal(c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]).code, 0, 'kill --all SIGKILL');
    for (let i = 0; i < 50 && !/STOPPED/.test(c.ctr(['task', 'ls']).stdout); i++) await new Promise((r) => setTimeout(r, 100));
    const del = c.ctr(['task', 'delete', id]);
    t.match(del.stderr, /exit code 137/, `exit status 137 (${describeCli(del)})`);
    c.ctr(['c', 'rm', id]);
    noState(t, id);
  });

  await t.test('ctr run -t: a terminal from the console socket', async (t) => {
    const id = newId();
    const r = onTerminal(['ctr', '--address', c.socket, '-n', c.namespace, 'run', '--rm', '-t', ...c.runFlags, '--rootfs', c.rootfs, id, '/bin/sh', '-c', `tty; [ -t 0 ] && [ -t 1 ] && echo all-tty; ${WAIT_FOR_TTY_SIZE}; stty size; exit 2`], 27, 88);
    t.equal(r.code, 2, `exit code through the terminal (${describeCli(r)})`);
    t.match(r.stdout, /\/dev\/pts\/\d+/, 'the process has a pty');
    t.match(r.stdout, /all-tty/, 'stdin and stdout are the terminal');
    t.match(r.stdout, /27 88/, 'window size');
    noState(t, id);
  });
});
