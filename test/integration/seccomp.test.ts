/**
 * linux.seccomp compiled with libseccomp in the runtime and installed by init: docker's default
 * profile as docker sends it (no_new_privs off, so the filter must go in before capabilities
 * drop), and a small profile with no_new_privs on (installed last, just before exec).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe } from '../helpers/runtime';

const dockerProfile = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/seccomp/docker-default.json'), 'utf8')) as unknown;

t.test("docker's default profile, no_new_privs off", async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', [
      'echo "@@seccomp $(grep ^Seccomp: /proc/self/status | cut -f2)"',
      'unshare -U true 2>/dev/null && echo "@@unshare allowed" || echo "@@unshare denied"',
      'echo "@@work $(echo ok)"',
    ].join('; ')],
    patch: (s) => {
      s.process.noNewPrivileges = false;
      (s.linux as typeof s.linux & Record<string, unknown>)['seccomp'] = dockerProfile;
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'seccomp'), '2', 'a seccomp filter is active in init (mode 2)');
  t.equal(fact(f, 'unshare'), 'denied', 'unshare of a user namespace is refused by the profile');
  t.equal(fact(f, 'work'), 'ok', 'ordinary work still runs');
});

t.test('an errno rule with no_new_privs on', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'mkdir /tmp/d 2>/dev/null && echo "@@mkdir ok" || echo "@@mkdir denied"; echo "@@nnp $(grep ^NoNewPrivs: /proc/self/status | cut -f2)"'],
    patch: (s) => {
      s.process.noNewPrivileges = true;
      (s.linux as typeof s.linux & Record<string, unknown>)['seccomp'] = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      };
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'mkdir'), 'denied', 'mkdir fails with the rule\'s errno');
  t.equal(fact(f, 'nnp'), '1', 'no_new_privs is set');
});

const agentScript = path.resolve(__dirname, '../helpers/seccomp-agent.py');

/** Start the test seccomp agent listening in the bundle's host dir; undefined (and a skip) without recv_fds. */
async function startAgent(t: Test, b: Bundle, name: string): Promise<{ sock: string; out: string } | undefined> {
  const probe = spawnSync('python3', ['-c', 'import socket; socket.recv_fds'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.plan(0, 'python3 with socket.recv_fds (3.9+) is needed for the test agent');
    return undefined;
  }
  const dir = b.hostDir(name);
  const sock = path.join(dir, 'agent.sock');
  const out = path.join(dir, 'agent.json');
  const agent = spawn('python3', [agentScript, sock, out], { stdio: 'ignore' });
  t.teardown(() => {
    agent.kill('SIGKILL');
  });
  for (let i = 0; i < 100 && !fs.existsSync(`${out}.ready`); i++) await new Promise((r) => setTimeout(r, 50));
  return { sock, out };
}

/** no_new_privs and a filter that sends mkdir/mkdirat to the agent at `sock`. */
function writeNotifyProfile(b: Bundle, sock: string, metadata?: string): void {
  b.writeSpec((s) => {
    s.process.noNewPrivileges = true;
    (s.linux as typeof s.linux & Record<string, unknown>)['seccomp'] = {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: sock,
      ...(metadata !== undefined ? { listenerMetadata: metadata } : {}),
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
    };
  });
}

t.test('SCMP_ACT_NOTIFY: the listener fd reaches the agent at listenerPath with the process state', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'mkdir /tmp/notified && echo "@@mkdir ok"; [ -d /tmp/notified ] && echo "@@exists yes" || echo "@@exists no"'],
  });
  const agent = await startAgent(t, b, 'agent');
  if (agent === undefined) return;
  const { sock, out } = agent;
  writeNotifyProfile(b, sock, 'test-metadata');
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'mkdir'), 'ok', 'mkdir returned success: the agent answered it');
  t.equal(fact(f, 'exists'), 'no', 'and nothing was created: the kernel never ran it');
  const got = JSON.parse(fs.readFileSync(out, 'utf8')) as { fds: number; state: { fds: string[]; metadata: string; pid: number; state: { id: string } } };
  t.equal(got.fds, 1, 'one fd came with the message');
  t.same(got.state.fds, ['seccompFd'], 'the state names it seccompFd');
  t.equal(got.state.metadata, 'test-metadata', 'listenerMetadata is passed on');
  t.equal(got.state.state.id, b.id, 'the container state is included');
  t.ok(got.state.pid > 0, 'with the process pid');
});

t.test('SCMP_ACT_NOTIFY and exec: the exec gets a filter of its own and its listener reaches the agent too', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'] });
  const agent = await startAgent(t, b, 'agent-exec');
  if (agent === undefined) return;
  const { sock, out } = agent;
  writeNotifyProfile(b, sock);
  const c = b.rt.create(b.id, b.dir);
  t.equal(c.code, 0, `create exits 0 (${describe(c)})`);
  t.equal(b.rt.start(b.id).code, 0, 'start');
  const e = b.rt.exec(['exec', b.id, 'sh', '-c', 'mkdir /tmp/by-exec && echo "@@mkdir ok"; [ -d /tmp/by-exec ] && echo "@@exists yes" || echo "@@exists no"; grep "^Seccomp:" /proc/self/status']);
  t.equal(e.code, 0, `exec exits 0 (${describe(e)})`);
  const f = parseFacts(e.stdout);
  t.equal(fact(f, 'mkdir'), 'ok', "the exec's mkdir was answered by the agent");
  t.equal(fact(f, 'exists'), 'no', 'and the kernel never ran it');
  t.match(e.stdout, /Seccomp:\s+2/, 'the exec runs filtered');
  for (let i = 0; i < 50 && !fs.existsSync(`${out}.2`); i++) await new Promise((r) => setTimeout(r, 100));
  const got = JSON.parse(fs.readFileSync(`${out}.2`, 'utf8')) as { fds: number; state: { fds: string[]; pid: number; state: { id: string; status: string } } };
  t.equal(got.fds, 1, "the exec's listener fd came in a second message");
  t.equal(got.state.state.id, b.id, 'with the container state');
  t.equal(got.state.state.status, 'running', 'of a running container');
  t.ok(got.state.pid > 0, "and the exec's pid");
  t.equal(b.rt.delete(b.id, { force: true }).code, 0, 'delete --force');
});
