import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NATIVE_ABI, addonPath, loadAddon, type NativeLib } from '../../../../runtime/native';
import { NATIVE_EXPORTS, abiVersion, type NativeExport } from '../../../../runtime/native/exports';
import { NATIVE_LIB_FUNCTIONS } from '../../../../runtime/native/native-lib';

// The unit tests run from the source tree: the addon is build/ under the repository.
process.env['TSRUN_ADDON'] ??= path.resolve(__dirname, '..', '..', '..', '..', 'build', 'tsrun.node');
const skip = fs.existsSync(addonPath()) ? false : `no ${addonPath()} (run make native)`;

const EBADF = os.constants.errno.EBADF;
const ECHILD = os.constants.errno.ECHILD;
const EINVAL = os.constants.errno.EINVAL;

/** A value of the right kind for each argument, so a call reaches the C function. */
function argsFor(e: NativeExport): unknown[] {
  return e.args.map((a) => {
    switch (a.kind) {
      case 'i32':
        // No wait: a zero timeout, WNOHANG, LOCK_UN; every fd is a bad one.
        return ({ timeout_ms: 0, options: 1, op: 8 } as Record<string, number>)[a.name] ?? -1;
      case 'u32':
        return 64;
      case 'u64':
        return 0n;
      case 'str':
        return '/nonexistent/tsrun-unit-test';
      case 'in':
      case 'out':
        return a.ctype.startsWith('int32_t') ? new Int32Array(Math.max(16, (a.bytes ?? 0) / 4)) : Buffer.alloc(Math.max(64, a.bytes ?? 0));
    }
  });
}

t.test('every export in the table is bound, by name and ABI', { skip }, async (t) => {
  const l = loadAddon(addonPath());
  const bound = l as unknown as Record<string, unknown>;
  const names = NATIVE_EXPORTS.flatMap((e) => (e.async ? [e.name, `${e.name}Async`] : [e.name]));
  t.same([...NATIVE_LIB_FUNCTIONS], names, 'native-lib.ts lists the table');
  for (const n of names) t.type(bound[n], 'function', `${n} is a function of the addon`);
  t.equal(Object.keys(bound).sort().join(' '), [...names].sort().join(' '), 'and the addon has nothing else');
  t.equal(l.abiVersion(), NATIVE_ABI, 'the ABI version is the table hash');
  // Exports whose call with harmless arguments must not act: each reaches its C function, which
  // answers with its own -errno rather than the addon throwing.
  const harmless: Record<string, number> = {
    syncSend: -EBADF,
    syncRecv: -os.constants.errno.ETIMEDOUT, // poll(2) skips a negative fd
    unixConnect: -os.constants.errno.ENOENT,
    flock: -EBADF,
    waitpid: -ECHILD,
    pidfdOpen: -EINVAL,
    pidfdSendSignal: -EBADF,
    setWinsize: -EBADF,
    sendFd: -EBADF,
    recvFd: -EBADF,
  };
  for (const e of NATIVE_EXPORTS) {
    const want = harmless[e.name];
    if (want === undefined) continue;
    const rc = (bound[e.name] as (...a: unknown[]) => number)(...argsFor(e));
    t.equal(rc, want, `${e.name} reaches ${e.c}`);
  }
});

t.test('the ABI version follows the table', async (t) => {
  const changed = NATIVE_EXPORTS.map((e) => (e.name === 'flock' ? { ...e, args: [...e.args, { name: 'x', kind: 'i32' as const, ctype: 'int' }] } : e));
  t.not(abiVersion(changed), abiVersion(), 'a new argument changes it');
  t.ok(NATIVE_ABI > 0 && NATIVE_ABI <= 0x7fffffff, 'fits a C int');
});

t.test('addon calls', { skip }, async (t) => {
  const l: NativeLib = loadAddon(addonPath());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-native-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  const lockFile = path.join(dir, 'lock');
  const fd = fs.openSync(lockFile, 'w');
  t.equal(l.flock(fd, 2 | 4), 0, 'flock LOCK_EX|LOCK_NB');
  const other = fs.openSync(lockFile, 'r');
  t.equal(l.flock(other, 2 | 4), -os.constants.errno.EWOULDBLOCK, 'a second open file description is refused');
  fs.closeSync(other);
  fs.closeSync(fd);
  t.equal(l.flock(fd, 8), -EBADF, 'closed fd: -EBADF');

  t.equal(l.mkfifo(path.join(dir, 'fifo'), 0o600), 0, 'mkfifo');
  t.ok(fs.statSync(path.join(dir, 'fifo')).isFIFO(), 'made a fifo');
  t.equal(l.mkfifo(path.join(dir, 'fifo'), 0o600), -os.constants.errno.EEXIST, 'mkfifo again: -EEXIST');

  const status = new Int32Array(1);
  t.equal(l.waitpid(process.pid, status, 1), -ECHILD, 'waitpid on a non-child: -ECHILD');

  const pidfd = l.pidfdOpen(process.pid, 0);
  t.ok(pidfd >= 0, 'pidfd_open of ourselves');
  t.equal(l.pidfdSendSignal(pidfd, 0), 0, 'pidfd_send_signal 0');
  fs.closeSync(pidfd);
  t.equal(l.pidfdSendSignal(pidfd, 0), -EBADF, 'closed pidfd: -EBADF');

  t.equal(l.prctl(-1, 0n, 0n, 0n, 0n), -EINVAL, 'prctl of an unknown option: -EINVAL');

  const out = new Int32Array(2);
  const err = Buffer.alloc(256);
  const bad = Buffer.from('not a plan, but long enough');
  t.equal(l.spawn(bad, bad.length, out, err, err.length), -EINVAL, 'spawn refuses a bad plan');
  t.match(err.subarray(0, err.indexOf(0)).toString(), /magic|version|plan/, 'with a message');

  // A real child would race libuv, which reaps the children it spawns: a non-child shows the
  // worker-thread call and the callback without one.
  const got = await new Promise<number>((resolve, reject) => {
    l.waitpidAsync(process.pid, new Int32Array(1), 0, (e, rc) => (e ? reject(e) : resolve(rc)));
  });
  t.equal(got, -ECHILD, 'waitpidAsync on a non-child: -ECHILD, through the callback');
});

t.test('the addon checks its arguments', { skip }, async (t) => {
  const l = loadAddon(addonPath());
  t.throws(() => l.flock('x' as unknown as number, 2), { name: 'TypeError', message: /flock: wrong argument fd/ }, 'a string for an int');
  t.throws(() => l.mkfifo(1 as unknown as string, 0o600), { name: 'TypeError', message: /mkfifo: wrong argument path/ }, 'a number for a path');
  t.throws(() => l.mkfifo('a\0b', 0o600), TypeError, 'a path with a NUL');
  t.throws(() => l.spawn(Buffer.alloc(4), 8, new Int32Array(2), Buffer.alloc(8), 8), { message: /spawn: wrong argument plan/ }, 'a length past the buffer');
  t.throws(() => l.spawn(Buffer.alloc(4), 4, new Int32Array(1), Buffer.alloc(8), 8), { message: /spawn: wrong argument out/ }, 'an out array too small');
  t.throws(() => l.waitpid(1, new Int32Array(0), 0), TypeError, 'no room for the status');
  t.throws(() => l.prctl(1, 'x' as unknown as bigint, 0n, 0n, 0n), TypeError, 'a string for a u64');
  t.throws(() => (l.flock as unknown as (fd: number) => number)(1), { message: /too few arguments/ }, 'too few arguments');
  t.throws(() => l.waitpidAsync(1, new Int32Array(1), 0, undefined as unknown as () => void), { message: /wrong argument done/ }, 'no callback');
});

t.test('loadAddon: a missing, broken or foreign file is refused with the reason', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-native-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadAddon(path.join(dir, 'none.node')), { code: 'Unavailable', message: /none\.node: no such file \(run 'make build'\)/ }, 'missing');
  fs.writeFileSync(path.join(dir, 'broken.node'), 'not an ELF file');
  t.throws(() => loadAddon(path.join(dir, 'broken.node')), { code: 'Unavailable', message: /broken\.node/ }, 'not loadable');
});
