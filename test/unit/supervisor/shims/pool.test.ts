/*
 * The warm shim pool without containers: warm shims come up and wait, close() ends them, one
 * exits on its own when its fd 3 reaches EOF; a taken one serves tsrund over that fd 3, or answers
 * with its error; shim answers and isShimAlive's open-directory rule.
 * Uses the built bin/tsrun-shim (skipped when it is not built).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { isShimAlive, shimAnswerError, shimCommand, shimEnv } from '../../../../supervisor/shims/client';
import { createShimPool, groupSocket } from '../../../../supervisor/shims/pool';

const binary = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'tsrun-shim');

/** This process's live children started as warm shims. */
function warmShimPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((p) => {
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(ppid) === process.pid && state !== 'Z' && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--pool');
      } catch {
        return false;
      }
    });
}

async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

t.test('shim answers', async (t) => {
  t.equal(shimAnswerError('ok', 'x'), undefined);
  t.match(shimAnswerError('{"code":"NotFound","message":"gone"}', 'start'), { code: 'NotFound', message: 'start: gone' });
  t.match(shimAnswerError(undefined, 'start'), { code: 'Internal', message: 'start: exited before it was ready' });
  t.match(shimAnswerError('{"code":"Bogus","message":"m"}', 's'), { code: 'Internal' });
  t.equal(groupSocket('/run/s', 'ns', 'g'), '/run/s/ns/.groups/g.sock');
});

t.test('isShimAlive: argv names the dir, or the process holds it open', { skip: !fs.existsSync(binary) && 'bin/tsrun-shim not built' }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-alive-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'ns', 'c');
  fs.mkdirSync(dir, { recursive: true });
  t.notOk(isShimAlive(process.pid, dir), 'not a tsrun-shim');
  t.notOk(isShimAlive(undefined, dir));
  // A process named like a shim holding the directory open (what a warm or grouped shim does).
  const holder = spawn(process.execPath, ['-e', `require('fs').openSync(${JSON.stringify(dir)}, 'r'); setInterval(() => {}, 1000)`, 'tsrun-shim'], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  t.ok(await until(() => isShimAlive(holder.pid, dir), 5000), 'holder counts as the shim of dir');
  t.notOk(isShimAlive(holder.pid, path.join(root, 'ns', 'other')), 'but not of another dir');
});

t.test('pool: warm shims wait, close() ends them', { skip: !fs.existsSync(binary) && 'bin/tsrun-shim not built' }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-pool-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const pool = createShimPool({ size: 2, stateRoot: root, shimBinary: binary });
  t.teardown(() => pool.close());
  t.ok(await until(() => warmShimPids().length === 2, 20_000), 'two warm shims');
  t.equal(pool.idle(), 2);
  pool.close();
  t.ok(await until(() => warmShimPids().length === 0, 10_000), 'gone after close');
});

t.test('a warm shim exits when its fd 3 reaches EOF', { skip: !fs.existsSync(binary) && 'bin/tsrun-shim not built' }, async (t) => {
  const [file, args] = shimCommand(binary, ['--pool']);
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const sock = child.stdio[3] as net.Socket;
  const ok = await new Promise<string>((r) => sock.once('data', (b: Buffer) => r(b.toString())));
  t.equal(ok, 'ok\n', 'ready');
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  sock.end();
  t.equal(await exited, 0, 'exits 0 on EOF');
});

t.test('shims start without NODE_EXTRA_CA_CERTS (certificates node would parse at every start) and with the rest of our env', async (t) => {
  const saved = process.env['NODE_EXTRA_CA_CERTS'];
  process.env['NODE_EXTRA_CA_CERTS'] = '/nonexistent/ca.pem';
  process.env['TSRUN_TEST_KEEP'] = 'kept';
  try {
    const env = shimEnv();
    t.notOk('NODE_EXTRA_CA_CERTS' in env, 'dropped');
    t.equal(env['TSRUN_TEST_KEEP'], 'kept', 'the rest stays');
    t.equal(process.env['NODE_EXTRA_CA_CERTS'], '/nonexistent/ca.pem', 'our own env is untouched');
  } finally {
    if (saved === undefined) delete process.env['NODE_EXTRA_CA_CERTS'];
    else process.env['NODE_EXTRA_CA_CERTS'] = saved;
    delete process.env['TSRUN_TEST_KEEP'];
  }
});

t.test('a taken warm shim keeps its fd 3 as the connection: hello and subscribe ride on the hand-off', { skip: !fs.existsSync(binary) && 'bin/tsrun-shim not built' }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-handoff-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const pool = createShimPool({ size: 1, stateRoot: root, shimBinary: binary });
  t.teardown(() => pool.close());
  t.ok(await until(() => warmShimPids().length === 1 && pool.idle() === 1, 20_000), 'one warm shim');
  const [warm] = warmShimPids();
  // No connect to shim.sock may happen: every socket this process opens goes through here.
  const connects: unknown[] = [];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const netModule = require('node:net') as { createConnection: unknown };
  const real = netModule.createConnection;
  netModule.createConnection = (...args: unknown[]) => {
    connects.push(args[0]);
    throw new Error('connect during a hand-off');
  };
  const conn = await pool
    .startShim({
      stateRoot: root,
      namespace: 'ns',
      id: 'c1',
      spec: Buffer.from('{}'),
      runtime: { kind: 'binary', path: '/bin/true' },
      stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
    })
    .finally(() => (netModule.createConnection = real));
  t.teardown(() => conn.close());
  t.same(connects, [], 'no connect to the shim');
  t.equal(conn.shimPid, warm, 'the warm shim took the container');
  t.same([conn.namespace, conn.id], ['ns', 'c1'], 'and answered hello for it');
  // With shim.sock gone, only the hand-off socket can carry the calls.
  fs.unlinkSync(path.join(root, 'ns', 'c1', 'shim.sock'));
  t.same(await conn.list(), [], 'calls go over fd 3');
  await t.rejects(conn.state(), { code: 'NotFound' }, 'no task yet');
  await conn.delete();
  t.ok(await until(() => !fs.existsSync(path.join(root, 'ns', 'c1')), 5000), 'delete removes the shim dir');
});

t.test('a warm shim that cannot take a container answers with its error on the hand-off; nothing is left', { skip: !fs.existsSync(binary) && 'bin/tsrun-shim not built' }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-handoff-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const pool = createShimPool({ size: 1, stateRoot: root, shimBinary: binary });
  t.teardown(() => pool.close());
  t.ok(await until(() => pool.idle() === 1 && warmShimPids().length === 1, 20_000), 'one warm shim');
  const [warm] = warmShimPids();
  await t.rejects(
    pool.startShim({
      stateRoot: root,
      namespace: 'ns',
      id: 'bad',
      spec: Buffer.from('{}'),
      // The shim makes the runtime's root first: under /dev/null it cannot.
      runtime: { kind: 'binary', path: '/bin/true', root: '/dev/null/root' },
      stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
    }),
    { message: /^start shim for ns\/bad: .*ENOTDIR.*\/dev\/null\/root/ },
  );
  t.notOk(fs.existsSync(path.join(root, 'ns', 'bad')), 'the shim dir is removed');
  t.ok(await until(() => !warmShimPids().includes(warm!), 5000), 'the shim that refused exited');
});
