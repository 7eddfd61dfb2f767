/**
 * docker 20.10 (dockerd with its managed containerd and containerd-shim-runc-v2) driving the
 * runtime under test registered with `--add-runtime` (docs/engines.md §3c), checked through the
 * docker CLI: output, exit codes 0 / n / 127 / 126 (docker maps the runtime's error text), stdin,
 * detached run + exec (also -t), kill and stop, pause/unpause (cgroup frozen), top, a --memory
 * limit reaching the cgroup and `docker update` changing it, seccomp in init and exec, fds,
 * default devices, and `rm` leaving no runtime state.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { requires } from '../helpers/requires';
import { cgroupFile, defaultDevices, describeCli, leakedFds, leakedFdsScript, listTree, missingTools, onTerminal, startDockerd, WAIT_FOR_TTY_SIZE } from '../helpers/engines';

const skip = missingTools('dockerd', 'containerd', 'containerd-shim-runc-v2', 'script');

t.test('docker 20.10', async (t) => {
  if (!requires(t, 'root', 'busybox', 'cgroup1')) return;
  if (skip !== undefined) {
    t.plan(0, skip);
    return;
  }
  const d = await startDockerd(t);
  let seq = 0;
  const newName = () => `d${process.pid}-${++seq}`;
  const run = (args: readonly string[], flags: readonly string[] = [], input?: string) =>
    d.docker(['run', '--rm', ...flags, d.image, ...args], input === undefined ? {} : { input });
  const idOf = (name: string) => d.docker(['inspect', '--format', '{{.Id}}', name]).stdout.trim();
  const noState = (t: { same: (a: unknown, b: unknown, m: string) => void }, id: string) => {
    t.same(listTree(d.runtimeRoot).filter((x) => x.includes(id)), [], `no runtime state is left for ${id.slice(0, 12)}`);
  };

  await t.test('docker run: output and exit codes', async (t) => {
    const r = run(['/bin/sh', '-c', 'echo hello; exit 5']);
    t.equal(r.code, 5, `the container's exit code (${describeCli(r)})`);
    t.match(r.stdout, /hello/, 'output');
    t.equal(run(['/bin/true']).code, 0, 'exit 0');
    const missing = run(['/bin/nonexistent']);
    t.equal(missing.code, 127, `a missing executable is 127 (${describeCli(missing)})`);
    const denied = run(['/etc/passwd']);
    t.equal(denied.code, 126, `a non-executable file is 126 (${describeCli(denied)})`);
    t.same(d.docker(['ps', '-aq']).stdout.trim(), '', 'run --rm removed every container, failed ones too');
  });

  await t.test('stdin with -i', async (t) => {
    const r = run(['/bin/sh', '-c', 'read line; echo got:$line'], ['-i'], 'piped text\n');
    t.equal(r.code, 0, describeCli(r));
    t.match(r.stdout, /got:piped text/, 'the line read from stdin');
  });

  await t.test('seccomp, fds and devices in init', async (t) => {
    const r = run(['/bin/sh', '-c', `grep '^Seccomp:' /proc/self/status; ${leakedFdsScript}; ls /dev | tr '\\n' ' '`]);
    t.equal(r.code, 0, describeCli(r));
    t.match(r.stdout, /Seccomp:\s+2/, "docker's default seccomp profile is installed");
    t.match(r.stdout, /fds-checked/, 'the fd check ran');
    t.same(leakedFds(r.stdout), [], "only fds 0-2 in init: the shim's fd 3 did not leak");
    for (const dev of defaultDevices) t.match(r.stdout, new RegExp(`(^|\\s)${dev}(\\s|$)`), `/dev/${dev} exists`);
  });

  await t.test('detached: exec, top, pause/unpause, memory limit, update, kill, rm', async (t) => {
    const name = newName();
    const r = d.docker(['run', '-d', '--name', name, '--memory', '64m', d.image, '/bin/sleep', '1000']);
    t.equal(r.code, 0, `run -d (${describeCli(r)})`);
    t.teardown(() => {
      d.docker(['rm', '-f', name]);
    });
    const id = idOf(name);
    const cg = `${d.cgroupParent}/${id}`;

    const e = d.docker(['exec', name, '/bin/sh', '-c', `grep '^Seccomp:' /proc/self/status; ls /proc/1/fd | tr '\\n' ' '; echo; ${leakedFdsScript}; exit 6`]);
    t.equal(e.code, 6, `the exec's exit code (${describeCli(e)})`);
    t.match(e.stdout, /Seccomp:\s+2/, 'the exec runs under the seccomp filter');
    t.match(e.stdout, /^0 1 2 $/m, 'init has exactly fds 0 1 2');
    t.same(leakedFds(e.stdout), [], 'the exec has only fds 0-2');
    const eMissing = d.docker(['exec', name, '/bin/nonexistent']);
    t.equal(eMissing.code, 126, `exec of a missing executable: docker 20.10 reports 126 for exec failures (${describeCli(eMissing)})`);
    t.match(eMissing.stdout + eMissing.stderr, /no such file or directory/, 'with the runtime message');

    const tty = onTerminal(d.argv(['exec', '-t', name, '/bin/sh', '-c', `tty; ${WAIT_FOR_TTY_SIZE}; stty size`]), 29, 91);
    t.equal(tty.code, 0, `exec -t (${describeCli(tty)})`);
    t.match(tty.stdout, /\/dev\/pts\/\d+/, 'the exec has a terminal');
    t.match(tty.stdout, /29 91/, 'window size');

    const top = d.docker(['top', name]);
    t.match(top.stdout, /sleep 1000/, `top lists the process (${describeCli(top)})`);

    t.equal(d.docker(['pause', name]).code, 0, 'pause');
    t.equal(fs.readFileSync(cgroupFile('freezer', cg, 'freezer.state'), 'utf8').trim(), 'FROZEN', 'the freezer cgroup is frozen');
    t.equal(d.docker(['inspect', '--format', '{{.State.Status}}', name]).stdout.trim(), 'paused', 'docker shows it paused');
    t.equal(d.docker(['unpause', name]).code, 0, 'unpause');
    t.equal(fs.readFileSync(cgroupFile('freezer', cg, 'freezer.state'), 'utf8').trim(), 'THAWED', 'thawed');

    const limit = () => fs.readFileSync(cgroupFile('memory', cg, 'memory.limit_in_bytes'), 'utf8').trim();
    t.equal(limit(), String(64 << 20), '--memory reached memory.limit_in_bytes');
    const u = d.docker(['update', '--memory', '96m', '--memory-swap', '192m', name]);
    t.equal(u.code, 0, `update (${describeCli(u)})`);
    t.equal(limit(), String(96 << 20), 'docker update changed the limit (update --resources - with zeros for unset fields)');

    const k = d.docker(['kill', name]);
    t.equal(k.code, 0, `kill (${describeCli(k)})`);
    t.equal(d.docker(['wait', name]).stdout.trim(), '137', 'killed with SIGKILL: 137');
    t.equal(d.docker(['rm', name]).code, 0, 'rm');
    noState(t, id);
    t.notOk(fs.existsSync(path.join('/sys/fs/cgroup/memory', cg)), 'the cgroup is gone');
  });

  await t.test('stop: SIGTERM, then SIGKILL after the timeout', async (t) => {
    const name = newName();
    t.equal(d.docker(['run', '-d', '--name', name, d.image, '/bin/sh', '-c', 'trap "exit 9" TERM; while :; do sleep 0.1; done']).code, 0, 'run -d');
    t.teardown(() => {
      d.docker(['rm', '-f', name]);
    });
    const s = d.docker(['stop', '-t', '5', name]);
    t.equal(s.code, 0, `stop (${describeCli(s)})`);
    t.equal(d.docker(['inspect', '--format', '{{.State.ExitCode}}', name]).stdout.trim(), '9', 'the TERM trap ran');
    const name2 = newName();
    t.equal(d.docker(['run', '-d', '--name', name2, d.image, '/bin/sleep', '1000']).code, 0, 'run -d a process that ignores SIGTERM');
    t.teardown(() => {
      d.docker(['rm', '-f', name2]);
    });
    const s2 = d.docker(['stop', '-t', '1', name2]);
    t.equal(s2.code, 0, `stop -t 1 (${describeCli(s2)})`);
    t.equal(d.docker(['inspect', '--format', '{{.State.ExitCode}}', name2]).stdout.trim(), '137', 'then SIGKILL');
    const id2 = idOf(name2);
    t.equal(d.docker(['rm', name, name2]).code, 0, 'rm both');
    noState(t, id2);
  });

  await t.test('run -it: a terminal from the console socket', async (t) => {
    const r = onTerminal(d.argv(['run', '--rm', '-it', d.image, '/bin/sh', '-c', `tty; [ -t 0 ] && [ -t 1 ] && echo all-tty; ${WAIT_FOR_TTY_SIZE}; stty size; exit 2`]), 27, 88);
    t.equal(r.code, 2, `exit code through the terminal (${describeCli(r)})`);
    t.match(r.stdout, /\/dev\/pts\/\d+/, 'the process has a pty');
    t.match(r.stdout, /all-tty/, 'stdin and stdout are the terminal');
    t.match(r.stdout, /27 88/, 'window size');
  });
});
