/**
 * podman 4.3 with conmon driving the runtime under test (`--runtime`, docs/engines.md §3b), checked
 * through podman itself: output, exit codes 0 / n / 127 / 126 (podman maps the runtime's error
 * text), stdin, detached run + exec (also -t), kill and stop, pause/unpause (cgroup frozen), top,
 * a --memory limit reaching the cgroup, seccomp in init and exec, fds, default devices, and `rm`
 * leaving no runtime state. podman passes no --root: the runtime's default root is used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { requires } from '../helpers/requires';
import { cgroupFile, defaultDevices, describeCli, leakedFds, leakedFdsScript, listTree, missingTools, onTerminal, setupPodman, WAIT_FOR_TTY_SIZE } from '../helpers/engines';

const skip = missingTools('podman', 'conmon', 'script');
const defaultRoot = '/run/tsrun';

t.test('podman 4.3 with conmon', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  if (skip !== undefined) {
    t.plan(0, skip);
    return;
  }
  const p = setupPodman(t);
  let seq = 0;
  const newName = () => `p${process.pid}-${++seq}`;
  const run = (args: readonly string[], flags: readonly string[] = [], input?: string) =>
    p.podman(['run', '--rm', ...flags, ...p.runFlags, ...args], input === undefined ? {} : { input });
  const idOf = (name: string) => p.podman(['inspect', '--format', '{{.Id}}', name]).stdout.trim();
  const noState = (t: { same: (a: unknown, b: unknown, m: string) => void }, id: string) => {
    t.same(listTree(defaultRoot).filter((x) => x.includes(id)), [], `no runtime state is left for ${id.slice(0, 12)}`);
  };

  await t.test('podman run: output and exit codes', async (t) => {
    const r = run(['/bin/sh', '-c', 'echo hello; exit 4']);
    t.equal(r.code, 4, `the container's exit code (${describeCli(r)})`);
    t.match(r.stdout, /hello/, 'output');
    t.equal(run(['/bin/true']).code, 0, 'exit 0');
    const missing = run(['/bin/nonexistent']);
    t.equal(missing.code, 127, `a missing executable is 127 (${describeCli(missing)})`);
    t.match(missing.stderr, /no such file or directory/, 'podman shows the runtime message');
    const denied = run(['/etc/passwd']);
    t.equal(denied.code, 126, `a non-executable file is 126 (${describeCli(denied)})`);
    t.same(p.podman(['ps', '-aq']).stdout.trim(), '', 'run --rm removed every container, failed ones too');
  });

  await t.test('stdin with -i', async (t) => {
    const r = run(['/bin/sh', '-c', 'read line; echo got:$line'], ['-i'], 'piped text\n');
    t.equal(r.code, 0, describeCli(r));
    t.match(r.stdout, /got:piped text/, 'the line read from stdin');
  });

  await t.test('seccomp, fds and devices in init', async (t) => {
    const r = run(['/bin/sh', '-c', `grep '^Seccomp:' /proc/self/status; ${leakedFdsScript}; ls /dev | tr '\\n' ' '`]);
    t.equal(r.code, 0, describeCli(r));
    t.match(r.stdout, /Seccomp:\s+2/, "podman's default seccomp profile is installed");
    t.match(r.stdout, /fds-checked/, 'the fd check ran');
    t.same(leakedFds(r.stdout), [], 'only fds 0-2 in init');
    for (const d of defaultDevices) t.match(r.stdout, new RegExp(`(^|\\s)${d}(\\s|$)`), `/dev/${d} exists`);
  });

  await t.test('detached: exec, top, pause/unpause, memory limit, kill, rm', async (t) => {
    const name = newName();
    const d = p.podman(['run', '-d', '--name', name, '--memory', '64m', ...p.runFlags, '/bin/sleep', '1000']);
    t.equal(d.code, 0, `run -d (${describeCli(d)})`);
    t.teardown(() => {
      p.podman(['rm', '-f', '-t', '0', name]);
    });
    const id = idOf(name);
    t.match(id, /^[0-9a-f]{64}$/, 'podman knows the container');
    const cg = `${p.cgroupParent}/libpod-${id}`;

    const e = p.podman(['exec', name, '/bin/sh', '-c', `grep '^Seccomp:' /proc/self/status; ls /proc/1/fd | tr '\\n' ' '; echo; ${leakedFdsScript}; exit 6`]);
    t.equal(e.code, 6, `the exec's exit code (${describeCli(e)})`);
    t.match(e.stdout, /Seccomp:\s+2/, 'the exec runs under the seccomp filter');
    t.match(e.stdout, /^0 1 2 $/m, 'init has exactly fds 0 1 2');
    t.same(leakedFds(e.stdout), [], 'the exec has only fds 0-2');
    const eMissing = p.podman(['exec', name, '/bin/nonexistent']);
    t.equal(eMissing.code, 127, `exec of a missing executable is 127 (${describeCli(eMissing)})`);

    const tty = onTerminal(p.argv(['exec', '-t', name, '/bin/sh', '-c', `tty; ${WAIT_FOR_TTY_SIZE}; stty size`]), 29, 91, { env: p.env });
    t.equal(tty.code, 0, `exec -t (${describeCli(tty)})`);
    t.match(tty.stdout, /\/dev\/pts\/\d+/, 'the exec has a terminal');
    t.match(tty.stdout, /29 91/, 'window size');

    const top = p.podman(['top', name]);
    t.match(top.stdout, /sleep 1000/, `top lists the process (${describeCli(top)})`);

    t.equal(p.podman(['pause', name]).code, 0, 'pause');
    t.equal(fs.readFileSync(cgroupFile('freezer', cg, 'freezer.state'), 'utf8').trim(), 'FROZEN', 'the freezer cgroup is frozen');
    const st = p.podman(['inspect', '--format', '{{.State.Status}}', name]);
    t.equal(st.stdout.trim(), 'paused', `podman shows it paused (${describeCli(st)})`);
    t.equal(p.podman(['unpause', name]).code, 0, 'unpause');
    t.equal(fs.readFileSync(cgroupFile('freezer', cg, 'freezer.state'), 'utf8').trim(), 'THAWED', 'thawed');

    t.equal(fs.readFileSync(cgroupFile('memory', cg, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 << 20), '--memory reached memory.limit_in_bytes');

    const k = p.podman(['kill', name]);
    t.equal(k.code, 0, `kill (${describeCli(k)})`);
    const w = p.podman(['wait', name]);
    t.equal(w.stdout.trim(), '137', 'killed with SIGKILL: 137');
    t.equal(p.podman(['rm', name]).code, 0, 'rm');
    noState(t, id);
    t.notOk(fs.existsSync(path.join('/sys/fs/cgroup/memory', cg)), 'the cgroup is gone');
  });

  await t.test('stop: SIGTERM, then SIGKILL after the timeout', async (t) => {
    const name = newName();
    t.equal(p.podman(['run', '-d', '--name', name, ...p.runFlags, '/bin/sh', '-c', 'trap "exit 9" TERM; while :; do sleep 0.1; done']).code, 0, 'run -d');
    t.teardown(() => {
      p.podman(['rm', '-f', '-t', '0', name]);
    });
    const id = idOf(name);
    const s = p.podman(['stop', '-t', '5', name]);
    t.equal(s.code, 0, `stop (${describeCli(s)})`);
    t.equal(p.podman(['inspect', '--format', '{{.State.ExitCode}}', name]).stdout.trim(), '9', 'the TERM trap ran');
    const name2 = newName();
    t.equal(p.podman(['run', '-d', '--name', name2, ...p.runFlags, '/bin/sleep', '1000']).code, 0, 'run -d a process that ignores SIGTERM');
    t.teardown(() => {
      p.podman(['rm', '-f', '-t', '0', name2]);
    });
    const s2 = p.podman(['stop', '-t', '1', name2]);
    t.equal(s2.code, 0, `stop -t 1 (${describeCli(s2)})`);
    t.equal(p.podman(['inspect', '--format', '{{.State.ExitCode}}', name2]).stdout.trim(), '137', 'then SIGKILL');
    t.equal(p.podman(['rm', name, name2]).code, 0, 'rm both');
    noState(t, id);
  });

  await t.test('run -t: a terminal from the console socket', async (t) => {
    const r = onTerminal(p.argv(['run', '--rm', '-t', ...p.runFlags, '/bin/sh', '-c', `tty; [ -t 0 ] && [ -t 1 ] && echo all-tty; ${WAIT_FOR_TTY_SIZE}; stty size; exit 2`]), 27, 88, { env: p.env });
    t.equal(r.code, 2, `exit code through the terminal (${describeCli(r)})`);
    t.match(r.stdout, /\/dev\/pts\/\d+/, 'the process has a pty');
    t.match(r.stdout, /all-tty/, 'stdin and stdout are the terminal');
    t.match(r.stdout, /27 88/, 'window size');
  });
});
