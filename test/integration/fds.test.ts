/**
 * File descriptors and cwd crossing into the container. containerd's shim leaks its socket
 * as fd 3 into `create` and `start`; it must not reach the container. podman passes fds on
 * purpose with `--preserve-fds N`; those must arrive as 3…3+N-1.
 *
 * The census lists /proc/$$/fd of the shell (PID 1 of the container), not /proc/self/fd of
 * `ls`, so the directory fd `ls` opens never shows up.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { makeGate, readState, waitForStatus } from '../helpers/container';
import { block, fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe, stdoutNow, type RunResult } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

// A plain command with no pipe or $(…): both would give the shell extra fds of its own.
const census = block('fds', 'ls /proc/$$/fd');

/** The census as "0 1 2 …". */
const fdsOf = (text: string): string | undefined => {
  const listed = fact(parseFacts(text), 'fds');
  if (listed === undefined) return undefined;
  return listed
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number)
    .sort((x, y) => x - y)
    .join(' ');
};

/** An fd open on a host file with known content (O_CLOEXEC is irrelevant: spawn dup2s it to 3). */
function extraFile(b: Bundle, name: string, content: string): number {
  const p = path.join(b.hostDir('fds'), name);
  fs.writeFileSync(p, content);
  return fs.openSync(p, 'r');
}

async function createStartWait(b: Bundle, create: () => RunResult, startFd: number): Promise<RunResult> {
  const c = create();
  if (c.code !== 0) throw new Error(`create failed: ${describe(c)}`);
  const s = b.rt.start(b.id, { extraFds: [startFd] });
  if (s.code !== 0) throw new Error(`start failed: ${describe(s)}`);
  await waitForStatus(b.rt, b.id, 'stopped');
  return c;
}

t.test('an fd leaked into create and start does not reach the container', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', census] });
  const fd = extraFile(b, 'leak', 'secret\n');
  t.teardown(() => fs.closeSync(fd));
  const c = await createStartWait(b, () => b.rt.create(b.id, b.dir, { extraFds: [fd] }), fd);
  t.equal(fdsOf(stdoutNow(c)), '0 1 2', 'the container has exactly fds 0, 1, 2');

  const run = b.rt.run(b.newId(), b.dir, { extraFds: [fd, fd] });
  t.equal(run.code, 0, `run with fds 3 and 4 open exits 0 (${describe(run)})`);
  t.equal(fdsOf(run.stdout), '0 1 2', 'run: the container has exactly fds 0, 1, 2');
});

t.test('--preserve-fds passes fds 3… on purpose', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', `${census}; echo "@@fd3 $(cat <&3)"; echo "@@fd4 $(cat <&4)"`] });
  const three = extraFile(b, 'three', 'passed-three\n');
  const four = extraFile(b, 'four', 'passed-four\n');
  t.teardown(() => {
    fs.closeSync(three);
    fs.closeSync(four);
  });

  const one = await createStartWait(b, () => b.rt.create(b.id, b.dir, { extraFds: [three, four], preserveFds: 1 }), three);
  const f1 = parseFacts(stdoutNow(one));
  t.equal(fdsOf(stdoutNow(one)), '0 1 2 3', '--preserve-fds 1: fds 0-3, and fd 4 was not passed');
  t.equal(fact(f1, 'fd3'), 'passed-three', 'fd 3 is the caller\'s fd 3');

  const id = b.newId();
  const c = b.rt.create(id, b.dir, { extraFds: [three, four], preserveFds: 2 });
  t.equal(c.code, 0, `create --preserve-fds 2 exits 0 (${describe(c)})`);
  t.equal(b.rt.start(id).code, 0, 'start exits 0');
  await waitForStatus(b.rt, id, 'stopped');
  const f2 = parseFacts(stdoutNow(c));
  t.equal(fdsOf(stdoutNow(c)), '0 1 2 3 4', '--preserve-fds 2: fds 0-4');
  t.equal(fact(f2, 'fd4'), 'passed-four', 'fd 4 is the caller\'s fd 4');
});

t.test('the container cwd is inside the rootfs', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t);
  const gate = makeGate(b);
  b.writeSpec((s) => {
    s.process.cwd = '/tmp';
    s.mounts.push(gate.mount);
    s.process.args = ['sh', '-c', `echo "@@cwd $(readlink /proc/self/cwd)"; ${gate.wait}`];
  });
  const c = b.rt.create(b.id, b.dir);
  t.equal(c.code, 0, `create exits 0 (${describe(c)})`);
  const pid = readState(b.rt, b.id).pid;
  const rootfsTmp = fs.statSync(path.join(b.rootfs, 'tmp'));
  const initCwd = fs.statSync(`/proc/${pid}/cwd`);
  t.same([initCwd.dev, initCwd.ino], [rootfsTmp.dev, rootfsTmp.ino], 'before start, init already sits in <rootfs>/tmp (host view)');
  const initRoot = fs.statSync(`/proc/${pid}/root`);
  const rootfs = fs.statSync(b.rootfs);
  t.same([initRoot.dev, initRoot.ino], [rootfs.dev, rootfs.ino], 'and its root is the rootfs');
  t.equal(b.rt.start(b.id).code, 0, 'start exits 0');
  gate.open();
  t.ok(await waitForStatus(b.rt, b.id, 'stopped'), 'the container exits');
  t.equal(fact(parseFacts(stdoutNow(c)), 'cwd'), '/tmp', 'readlink /proc/self/cwd inside is /tmp');
});

t.test('init is non-dumpable until it execs the user process', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  // While init waits for `start` it already runs as the configured user. If it were
  // dumpable, that user could ptrace it or open /proc/<pid>/exe and reach the runtime's
  // binary (CVE-2019-5736). A non-dumpable task's /proc/<pid>/* files are owned by root;
  // after execve of a readable binary the kernel makes it dumpable again.
  const b = makeBundle(t, {
    args: ['sleep', '100'],
    patch: (s) => {
      s.process.user = { uid: 1000, gid: 1000 };
    },
  });
  const c = b.rt.create(b.id, b.dir);
  t.equal(c.code, 0, `create exits 0 (${describe(c)})`);
  const pid = readState(b.rt, b.id).pid;
  const uidLine = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  t.equal(uidLine?.[1], '1000', 'the waiting init already runs as uid 1000');
  t.equal(fs.statSync(`/proc/${pid}/fd`).uid, 0, 'but its /proc entries are owned by root: it is non-dumpable');
  t.equal(b.rt.start(b.id).code, 0, 'start exits 0');
  t.ok(await waitFor(() => fs.statSync(`/proc/${pid}/fd`).uid === 1000), 'after exec the process is dumpable (owned by uid 1000)');
});

t.test('socket activation: LISTEN_FDS fds reach the container with LISTEN_FDS and LISTEN_PID=1', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', 'echo "@@env $LISTEN_FDS $LISTEN_PID"; echo "@@got $(cat <&3)"'] });
  const fd = extraFile(b, 'activation', 'from-the-listener\n');
  t.teardown(() => fs.closeSync(fd));
  // LISTEN_PID must name the runtime itself: exec keeps the shell's pid.
  const argv = b.rt.argv(['run', '--bundle', b.dir, b.id]).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('sh', ['-c', `LISTEN_FDS=1 LISTEN_PID=$$ exec ${b.rt.binary} ${argv}`], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `run exits 0 (${r.stderr})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'env'), '1 1', 'LISTEN_FDS=1 and LISTEN_PID=1 inside');
  t.equal(fact(f, 'got'), 'from-the-listener', 'fd 3 is the listener fd');
});
