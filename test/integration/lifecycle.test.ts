/**
 * The create → start → (exit) → delete lifecycle as engines drive it, plus `run`, `list`
 * and the stdio hand-over from `create` to the container.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { makeGate, parseState, readState, runDetached, statusOf, waitForStatus } from '../helpers/container';
import { isAlive } from '../helpers/host';
import { requires } from '../helpers/requires';
import { combined, describe, stderrNow, stdoutNow } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

t.test('create, start, exit, delete', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t);
  const gate = makeGate(b);
  b.writeSpec((s) => {
    s.mounts.push(gate.mount);
    s.process.args = ['sh', '-c', `${gate.wait}; exit 0`];
  });

  const create = b.rt.create(b.id, b.dir, { pidFile: b.pidFile });
  t.equal(create.code, 0, `create exits 0 (${describe(create)})`);
  t.equal(create.stdout, '', 'create prints nothing on stdout');

  const created = readState(b.rt, b.id);
  t.equal(created.status, 'created', 'status is "created" after create');
  t.equal(created.id, b.id, 'state carries the id');
  t.equal(created.bundle, b.dir, 'state carries the bundle path');
  t.ok(created.pid > 0, `pid is positive (${created.pid})`);
  t.ok(fs.existsSync(`/proc/${created.pid}`), '/proc/<pid> exists');

  const pidText = fs.readFileSync(b.pidFile, 'utf8');
  t.match(pidText, /^[1-9][0-9]*$/, 'pid file is a bare decimal with no newline (containerd uses strconv.Atoi)');
  t.equal(Number(pidText), created.pid, 'pid file matches state.pid');

  const start = b.rt.start(b.id);
  t.equal(start.code, 0, `start exits 0 (${describe(start)})`);
  const running = readState(b.rt, b.id);
  t.equal(running.status, 'running', 'status is "running" after start');
  t.equal(running.pid, created.pid, 'start execs in place: the pid does not change');

  gate.open();
  t.ok(await waitForStatus(b.rt, b.id, 'stopped'), 'status becomes "stopped" when the process exits');
  const stopped = readState(b.rt, b.id);
  t.equal(stopped.pid, 0, 'a stopped container reports pid 0');

  const del = b.rt.delete(b.id);
  t.equal(del.code, 0, `delete of a stopped container exits 0 (${describe(del)})`);
  const gone = b.rt.state(b.id);
  t.equal(gone.code, 1, 'state after delete exits 1');
  t.match(combined(gone), /container does not exist/, 'and says "container does not exist"');
  t.same(fs.readdirSync(b.rt.root), [], 'the root directory is empty after delete');
});

t.test('run in the foreground returns the container exit status', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', 'exit 3'] });
  const three = b.rt.run(b.id, b.dir);
  t.equal(three.code, 3, `sh -c 'exit 3' → 3 (${describe(three)})`);
  t.same(fs.readdirSync(b.rt.root), [], 'run removes the container when it exits');

  b.writeSpec((s) => {
    s.process.args = ['sh', '-c', 'echo out; echo err >&2'];
  });
  const zero = b.rt.run(b.newId(), b.dir);
  t.equal(zero.code, 0, 'exit 0 → 0');
  t.equal(zero.stdout, 'out\n', 'the container writes to run\'s stdout');
  t.match(zero.stderr, /err/, 'and to run\'s stderr');

  // A pid-namespace init ignores signals it has no handler for, so the TERM case runs
  // without a pid namespace: the shell then dies of its own SIGTERM.
  b.writeSpec((s) => {
    s.process.args = ['sh', '-c', 'kill -TERM $$; sleep 5'];
    s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'pid');
  });
  const term = b.rt.run(b.newId(), b.dir);
  t.equal(term.code, 128 + 15, `death by SIGTERM → 143 (${describe(term)})`);

  b.writeSpec((s) => {
    s.process.args = ['sleep', '100'];
    s.linux.namespaces.push({ type: 'pid' });
  });
  const id = b.newId();
  const pending = b.rt.runAsync(id, b.dir);
  t.ok(await waitForStatus(b.rt, id, 'running'), 'the foreground container is running');
  const kill = b.rt.kill(id, 'KILL');
  t.equal(kill.code, 0, 'kill KILL exits 0');
  const killed = await pending;
  t.equal(killed.code, 128 + 9, `death by SIGKILL → 137 (${describe(killed)})`);
});

t.test('run --detach', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  const started = Date.now();
  const r = b.rt.run(b.id, b.dir, { detach: true, pidFile: b.pidFile });
  t.equal(r.code, 0, `run --detach exits 0 (${describe(r)})`);
  t.ok(Date.now() - started < 10_000, 'and returns without waiting for the container');
  const s = readState(b.rt, b.id);
  t.equal(s.status, 'running', 'the container is running');
  t.equal(fs.readFileSync(b.pidFile, 'utf8'), String(s.pid), 'pid file matches state.pid');
  t.ok(isAlive(s.pid), 'its init is alive');
});

t.test('list: table, -q, --format json', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  const running = runDetached(b);
  const createdId = b.newId();
  t.equal(b.rt.create(createdId, b.dir).code, 0, 'a second container is created');

  const table = b.rt.list();
  t.equal(table.code, 0, `list exits 0 (${describe(table)})`);
  const rows = table.stdout.split('\n').filter((l) => l !== '');
  t.same(rows[0]?.trim().split(/\s+/), ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], 'table header');
  const byId = new Map(rows.slice(1).map((l) => [l.split(/\s+/)[0], l.split(/\s+/)]));
  t.same(byId.get(running.id)?.slice(1, 4), [String(running.pid), 'running', b.dir], 'running row: pid, status, bundle');
  t.equal(byId.get(createdId)?.[2], 'created', 'created row: status');
  t.equal(rows.length, 3, 'one row per container');

  const quiet = b.rt.list(['-q']);
  t.same(quiet.stdout.split('\n').filter((l) => l !== '').sort(), [running.id, createdId].sort(), 'list -q prints ids only');

  const json = b.rt.list(['--format', 'json']);
  t.equal(json.code, 0, 'list --format json exits 0');
  const parsed: unknown = JSON.parse(json.stdout);
  t.ok(Array.isArray(parsed), 'list --format json prints an array');
  const items = Array.isArray(parsed) ? parsed.map((v: unknown) => parseState(JSON.stringify(v))) : [];
  t.same(items.map((i) => i.id).sort(), [running.id, createdId].sort(), 'with every container');
  const first = Array.isArray(parsed) ? (parsed[0] as unknown) : undefined;
  t.same(
    Object.keys(typeof first === 'object' && first !== null ? first : {}).sort(),
    ['bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status'],
    'each entry has the runc key set',
  );

  const empty = makeBundle(t);
  const none = empty.rt.list(['--format', 'json']);
  t.equal(none.code, 0, 'list on an empty root exits 0');
  t.match(none.stdout.trim(), /^(\[\]|null)$/, 'and prints an empty JSON list');
});

t.test('duplicate create and double start fail without harm', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  t.equal(b.rt.create(b.id, b.dir).code, 0, 'first create succeeds');
  const first = readState(b.rt, b.id);

  const again = b.rt.create(b.id, b.dir);
  t.not(again.code, 0, `second create with the same id fails (${describe(again)})`);
  t.match(combined(again), /already exists/, 'saying the container already exists');
  const after = readState(b.rt, b.id);
  t.same([after.status, after.pid], ['created', first.pid], 'the first container is untouched');
  t.same(fs.readdirSync(b.rt.root), [b.id], 'exactly one entry under the root');

  t.equal(b.rt.start(b.id).code, 0, 'start succeeds');
  const twice = b.rt.start(b.id);
  t.not(twice.code, 0, `start on a running container fails (${describe(twice)})`);
  t.equal(statusOf(b.rt, b.id), 'running', 'and leaves it running');
});

t.test("create's stdio becomes the container's stdio", async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', 'echo to-stdout; echo to-stderr >&2'] });

  // Files: the runtime's own output (nothing) first, then the container's after start.
  const c = runDetached(b);
  t.equal(c.create.stdout, '', 'create itself wrote nothing to stdout');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped'), 'the container ran to completion');
  t.equal(stdoutNow(c.create), 'to-stdout\n', "the container's stdout is create's stdout");
  t.match(stderrNow(c.create), /to-stderr/, "the container's stderr is create's stderr");
  t.equal(c.start.stdout, '', 'nothing went to start\'s stdout');

  // A pipe: create must exit while the container still holds the write end, and the data
  // must arrive through it after start (Go callers wait for EOF on exactly this pipe).
  const id = b.newId();
  const errFd = fs.openSync(`${b.sandbox}/pipe-create.err`, 'w');
  const child = spawn(b.rt.binary, b.rt.argv(['create', '--bundle', b.dir, id]), { stdio: ['ignore', 'pipe', errFd] });
  fs.closeSync(errFd);
  let piped = '';
  let eof = false;
  const out = child.stdout;
  if (out === null) throw new Error('spawn gave no stdout pipe');
  out.setEncoding('utf8');
  out.on('data', (d: string) => {
    piped += d;
  });
  out.on('end', () => {
    eof = true;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.equal(code, 0, 'create with a stdout pipe exits 0 before the container runs');
  t.equal(piped, '', 'nothing on the pipe yet');
  t.equal(b.rt.start(id).code, 0, 'start exits 0');
  t.ok(await waitFor(() => eof, 5000), 'the pipe reaches EOF once the container exits');
  t.equal(piped, 'to-stdout\n', 'the container wrote through the pipe given to create');
});
