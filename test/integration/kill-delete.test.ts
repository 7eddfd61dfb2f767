/**
 * `kill` and `delete` semantics engines depend on: signal spellings, the exact error
 * wording containerd string-matches, `--force` on missing containers, and the JSON log line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { isErrorLogLine, logLines, makeGate, readState, runDetached, statusOf, waitForStatus } from '../helpers/container';
import { cgroupDirsFor, childrenOf, cmdline, isAlive } from '../helpers/host';
import { requires } from '../helpers/requires';
import { combined, describe, runcPath, runtimeName } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

t.test('kill accepts KILL, SIGKILL and 9', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  for (const sig of ['KILL', 'SIGKILL', '9']) {
    const c = runDetached(b, { id: b.newId() });
    const r = b.rt.kill(c.id, sig);
    t.equal(r.code, 0, `kill ${sig} exits 0 (${describe(r)})`);
    t.ok(await waitForStatus(b.rt, c.id, 'stopped'), `kill ${sig} stops the container`);
    t.ok(await waitFor(() => !isAlive(c.pid)), `kill ${sig}: init ${c.pid} is gone`);
  }
});

t.test('kill delivers non-fatal signals by name, SIG-name and number', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t);
  const gate = makeGate(b);
  // A handler makes PID 1 of the pid namespace accept USR1 from the host.
  b.writeSpec((s) => {
    s.mounts.push(gate.mount);
    s.process.args = ['sh', '-c', `trap 'echo usr1 >> /ctl/got' USR1; touch /ctl/ready; while :; do sleep 0.05; done`];
  });
  const c = runDetached(b);
  t.ok(await waitFor(() => fs.existsSync(path.join(gate.hostDir, 'ready'))), 'the trap is installed');
  const got = (): number => {
    try {
      return fs.readFileSync(path.join(gate.hostDir, 'got'), 'utf8').split('\n').filter((l) => l !== '').length;
    } catch {
      return 0;
    }
  };
  let expected = 0;
  for (const sig of ['USR1', 'SIGUSR1', '10']) {
    const r = b.rt.kill(c.id, sig);
    t.equal(r.code, 0, `kill ${sig} exits 0 (${describe(r)})`);
    expected++;
    t.ok(await waitFor(() => got() >= expected), `kill ${sig} reached the trap`);
  }
  t.equal(statusOf(b.rt, c.id), 'running', 'the container is still running');
});

t.test('kill on stopped and missing containers', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['true'] });
  const c = runDetached(b);
  t.ok(await waitForStatus(b.rt, c.id, 'stopped'), 'the container stopped by itself');
  const stopped = b.rt.kill(c.id, 'KILL');
  t.equal(stopped.code, 1, `kill on a stopped container exits 1 (${describe(stopped)})`);
  t.match(combined(stopped), /container not running/, 'with "container not running"');

  const missing = b.rt.kill('no-such-container', '9');
  t.equal(missing.code, 1, 'kill on a missing container exits 1');
  t.match(combined(missing), /container does not exist/, 'with "container does not exist"');
});

t.test('kill --all signals every process in the container', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  // init (sh, PID 1 without a TERM handler) is immune to TERM from the host; its two
  // background sleeps are not. So plain `kill TERM` changes nothing and `--all TERM`
  // kills exactly the children.
  const b = makeBundle(t, { args: ['sh', '-c', 'sleep 100 & sleep 100 & while :; do sleep 1; done'] });
  const c = runDetached(b);
  // A forked child shows sh's cmdline until it has exec'd sleep, so wait for the exec, not
  // just the fork.
  let background: number[] = [];
  const found = await waitFor(() => (background = childrenOf(c.pid).filter((k) => cmdline(k) === 'sleep 100')).length === 2);
  t.ok(found, `init has its two background sleeps (found ${background.length}: ${background.map((p) => `${p}=${cmdline(p)}`).join(', ')})`);

  const plain = b.rt.kill(c.id, 'TERM');
  t.equal(plain.code, 0, 'kill TERM exits 0');
  await new Promise((r) => setTimeout(r, 200));
  t.ok(background.every(isAlive), 'plain kill reaches only init (which ignores TERM): the children live');

  const all = b.rt.kill(c.id, 'TERM', { all: true });
  t.equal(all.code, 0, `kill --all TERM exits 0 (${describe(all)})`);
  t.ok(await waitFor(() => !background.some(isAlive)), 'kill --all reached the children');
  t.ok(isAlive(c.pid), 'init survived (no TERM handler in a pid namespace init)');

  const allKill = b.rt.kill(c.id, 'KILL', { all: true });
  t.equal(allKill.code, 0, 'kill --all KILL exits 0');
  t.ok(await waitForStatus(b.rt, c.id, 'stopped'), 'and stops the container');
});

t.test('delete refuses live containers without --force', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  const c = runDetached(b);
  const r = b.rt.delete(c.id);
  t.not(r.code, 0, `delete of a running container fails (${describe(r)})`);
  t.equal(statusOf(b.rt, c.id), 'running', 'it is still running');
  t.ok(isAlive(c.pid), 'its init is alive');

  // runtime-spec: "Attempting to delete a container that is not stopped MUST have no effect
  // on the container and MUST generate an error." runc 1.1.5 instead kills and deletes a
  // *created* container, so these two assertions are TODO under runc.
  const todo = runtimeName === 'runc' ? 'runc 1.1.5 deletes a created container without --force (exit 0)' : false;
  const id = b.newId();
  t.equal(b.rt.create(id, b.dir).code, 0, 'another container is created');
  const created = b.rt.delete(id);
  t.not(created.code, 0, `delete of a created container fails (${describe(created)})`, { todo });
  t.equal(statusOf(b.rt, id), 'created', 'and leaves it created', { todo });
});

t.test('delete --force', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  const c = runDetached(b);
  const r = b.rt.delete(c.id, { force: true });
  t.equal(r.code, 0, `delete --force of a running container exits 0 (${describe(r)})`);
  t.ok(await waitFor(() => !isAlive(c.pid)), 'its init is dead');
  t.equal(statusOf(b.rt, c.id), 'missing', 'its state is gone');
  t.same(fs.readdirSync(b.rt.root), [], 'nothing is left under the root');

  const created = b.newId();
  t.equal(b.rt.create(created, b.dir).code, 0, 'a created container');
  const pid = readState(b.rt, created).pid;
  t.equal(b.rt.delete(created, { force: true }).code, 0, 'delete --force of a created container exits 0');
  t.ok(await waitFor(() => !isAlive(pid)), 'its init is dead');

  const missing = b.rt.delete('no-such-container', { force: true });
  t.equal(missing.code, 0, 'delete --force of a missing container exits 0');
  t.equal(missing.stdout, '', 'with empty stdout');
  t.equal(missing.stderr, '', 'and empty stderr');

  const plain = b.rt.delete('no-such-container');
  t.equal(plain.code, 1, 'delete without --force of a missing container exits 1');
  t.match(combined(plain), /container does not exist/, 'with "container does not exist"');
});

t.test('--log FILE --log-format json', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'], log: true });

  const fail = b.rt.kill('no-such-container', '9');
  t.equal(fail.code, 1, 'a failing kill exits 1');
  t.match(fail.stderr, /container does not exist/, 'the message also goes to stderr');
  let lines = logLines(b.logFile);
  t.equal(lines.length, 1, 'a failure appends exactly one line');
  t.ok(isErrorLogLine(lines[0]), `shaped {"level":"error","msg":…,"time":RFC3339} (${JSON.stringify(lines[0])})`);

  const c = runDetached(b);
  t.equal(b.rt.state(c.id).code, 0, 'state succeeds');
  t.equal(b.rt.kill(c.id, 'KILL').code, 0, 'kill succeeds');
  await waitForStatus(b.rt, c.id, 'stopped');
  t.equal(b.rt.delete(c.id).code, 0, 'delete succeeds');
  t.equal(b.rt.delete(c.id, { force: true }).code, 0, 'delete --force of the now missing container succeeds');
  lines = logLines(b.logFile);
  t.equal(lines.length, 1, 'successful calls (create, start, state, kill, delete, delete --force) append nothing');

  const again = b.rt.delete('no-such-container');
  t.equal(again.code, 1, 'a second failure exits 1');
  lines = logLines(b.logFile);
  t.equal(lines.length, 2, 'and appends one more line');
  t.ok(isErrorLogLine(lines[1]), 'also an error line');
});

t.test('kill --all on a stopped container signals what is left in its cgroup and succeeds, as runc does', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  // Without a pid namespace init's exit leaves its background sleep running in the cgroup:
  // containerd's shim then runs `kill --all <id> KILL` to kill it.
  const b = makeBundle(t, {
    patch: (s) => {
      s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'pid');
      s.process.args = ['sh', '-c', 'sleep 100 & exit 0'];
    },
  });
  const runtimes = [b.rt, ...(runcPath !== undefined && runtimeName !== 'runc' ? [b.runtime(runcPath)] : [])];
  for (const rt of runtimes) {
    const id = b.newId();
    const r = rt.run(id, b.dir, { detach: true });
    t.equal(r.code, 0, `${rt.name}: run -d (${describe(r)})`);
    const inCgroup = (): number[] => {
      const out: number[] = [];
      for (const dir of cgroupDirsFor(id)) {
        try {
          for (const l of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l !== '' && !out.includes(Number(l))) out.push(Number(l));
        } catch {
          // a hierarchy without cgroup.procs
        }
      }
      return out;
    };
    t.ok(await waitForStatus(rt, id, 'stopped'), `${rt.name}: init exited`);
    let left: number[] = [];
    t.ok(await waitFor(() => (left = inCgroup()).length > 0), `${rt.name}: the background sleep is still in the cgroup (${left.join(' ')})`);
    const all = rt.kill(id, 'KILL', { all: true });
    t.equal(all.code, 0, `${rt.name}: kill --all on the stopped container exits 0 (${describe(all)})`);
    t.ok(await waitFor(() => left.every((p) => !isAlive(p))), `${rt.name}: and killed what was left (${left.filter((p) => isAlive(p)).join(' ')})`);
    const again = rt.kill(id, 'KILL', { all: true });
    t.equal(again.code, 0, `${rt.name}: kill --all with nothing left exits 0 too (${describe(again)})`);
    const plain = rt.kill(id, 'KILL');
    t.equal(plain.code, 1, `${rt.name}: kill without --all still refuses a stopped container`);
    t.match(combined(plain), /container not running/, `${rt.name}: with "container not running"`);
    t.equal(rt.delete(id).code, 0, `${rt.name}: delete`);
  }
});
