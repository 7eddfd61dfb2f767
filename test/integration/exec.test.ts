/**
 * exec: a process joins the running container's namespaces, cgroup and seccomp filter, with the
 * caller's stdio; the foreground status comes back, --detach writes the pid file, a failed exec
 * exits 255, and no fd of the caller leaks in. Runs against runc too.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { runDetached, waitForStatus } from '../helpers/container';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe } from '../helpers/runtime';

const dockerProfile = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/seccomp/docker-default.json'), 'utf8')) as unknown;

t.test('exec joins the container and returns the status', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sleep', '1000'],
    patch: (s) => {
      s.hostname = 'exec-target';
      s.process.noNewPrivileges = false;
      (s.linux as unknown as Record<string, unknown>)['seccomp'] = dockerProfile;
    },
  });
  const c = runDetached(b);
  const r = b.rt.exec(['exec', b.id, 'sh', '-c', [
    'echo "@@host $(hostname)"',
    'echo "@@pidns $(readlink /proc/self/ns/pid)"',
    'echo "@@one $(cat /proc/1/comm)"',
    'echo "@@seccomp $(grep ^Seccomp: /proc/self/status | cut -f2)"',
    // A block straight to stdout: inside $(...) or behind a redirect the shell holds fds itself.
    'echo "@@begin fds"',
    'ls /proc/$$/fd',
    'echo "@@end"',
    'exit 7',
  ].join('; ')], { extraFds: [fs.openSync(b.configPath, 'r')] });
  t.equal(r.code, 7, `the process's exit status comes back (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'host'), 'exec-target', "the container's uts namespace");
  t.equal(fact(f, 'pidns'), fs.readlinkSync(`/proc/${c.pid}/ns/pid`), "the container's pid namespace");
  t.equal(fact(f, 'one'), 'sleep', "the container's init is pid 1 there");
  t.equal(fact(f, 'seccomp'), '2', "the container's seccomp filter applies to exec too");
  t.equal((fact(f, 'fds') ?? '').split('\n').filter((l) => l !== '').join(' '), '0 1 2', 'only fds 0, 1, 2 (the caller leaked fd 3)');
  t.equal(b.rt.delete(b.id, { force: true }).code, 0, 'delete --force');
});

t.test('exec joins every namespace at once through a pidfd of init (Linux 5.8+)', async (t) => {
  if (!requires(t, 'root', 'busybox', 'not-runc')) return;
  const [major = 0, minor = 0] = os.release().split('.').map(Number);
  if (major < 5 || (major === 5 && minor < 8)) {
    t.plan(0, `setns(2) takes a pidfd from Linux 5.8; this kernel is ${os.release()}`);
    return;
  }
  const b = makeBundle(t, { args: ['sleep', '1000'], patch: (s) => (s.hostname = 'pidfd-target') });
  const c = runDetached(b);
  const r = b.rt.exec(['--debug', 'exec', b.id, 'sh', '-c', 'echo "@@host $(hostname)"; echo "@@mnt $(readlink /proc/self/ns/mnt)"; echo "@@net $(readlink /proc/self/ns/net)"']);
  t.equal(r.code, 0, describe(r));
  t.match(r.stderr, new RegExp(`joining the namespaces of init \\(pid ${c.pid}\\) through a pidfd`), 'the runtime opened a pidfd of init and used it');
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'host'), 'pidfd-target', 'uts');
  t.equal(fact(f, 'mnt'), fs.readlinkSync(`/proc/${c.pid}/ns/mnt`), 'mount');
  t.equal(fact(f, 'net'), fs.readlinkSync(`/proc/${c.pid}/ns/net`), 'network');
  t.equal(b.rt.delete(b.id, { force: true }).code, 0, 'delete --force');
});

t.test('exec --detach --pid-file and exec --process', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'] });
  const c = runDetached(b);
  const pidFile = path.join(b.sandbox, 'exec.pid');
  const d = b.rt.exec(['exec', '--detach', '--pid-file', pidFile, b.id, 'sleep', '30']);
  t.equal(d.code, 0, `exec --detach exits 0 (${describe(d)})`);
  const text = fs.readFileSync(pidFile, 'utf8');
  t.match(text, /^\d+$/, 'the pid file is a bare decimal without a newline');
  const pid = Number(text);
  t.equal(fs.readlinkSync(`/proc/${pid}/ns/pid`), fs.readlinkSync(`/proc/${c.pid}/ns/pid`), 'the detached process is in the container');
  const ps = b.rt.exec(['ps', '--format', 'json', b.id]);
  t.ok((JSON.parse(ps.stdout) as number[]).includes(pid), 'and in its cgroup (ps lists it)');

  const processFile = path.join(b.sandbox, 'process.json');
  fs.writeFileSync(processFile, JSON.stringify({
    terminal: false, user: { uid: 1000, gid: 1000 }, args: ['sh', '-c', 'echo "@@id $(id -u):$(id -g)"; echo "@@cwd $(pwd)"; echo "@@env $GREETING"'],
    env: ['PATH=/bin', 'GREETING=hello'], cwd: '/tmp',
  }));
  const p = b.rt.exec(['exec', '--process', processFile, b.id]);
  t.equal(p.code, 0, `exec --process exits 0 (${describe(p)})`);
  const f = parseFacts(p.stdout);
  t.equal(fact(f, 'id'), '1000:1000', 'user from process.json');
  t.equal(fact(f, 'cwd'), '/tmp', 'cwd from process.json');
  t.equal(fact(f, 'env'), 'hello', 'env from process.json');
  t.equal(b.rt.delete(b.id, { force: true }).code, 0, 'delete --force');
});

t.test('a failed exec exits 255 with the reason, and exec into a stopped container fails', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'], log: true });
  runDetached(b);
  const r = b.rt.exec(['exec', b.id, '/bin/nonexistent']);
  t.equal(r.code, 255, `exit 255 (${describe(r)})`);
  t.match(r.stderr, /no such file or directory/, 'says no such file or directory');
  t.equal(b.rt.kill(b.id, 'KILL').code, 0, 'kill the container');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped'), 'it stops');
  const s = b.rt.exec(['exec', b.id, 'true']);
  t.not(s.code, 0, `exec into a stopped container fails (${describe(s)})`);
});
