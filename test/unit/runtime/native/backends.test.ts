import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NATIVE_ABI, addonPath, libraryPath, loadAddon, loadKoffi, type NativeLib } from '../../../../runtime/native';
import { PLAN_VERSION } from '../../../../runtime/plan/ops';

// The unit tests run from the source tree: the helper is build/ under the repository.
process.env['TSRUN_LIBTSRUN'] ??= path.resolve(__dirname, '..', '..', '..', '..', 'build', 'libtsrun.so');

const EBADF = os.constants.errno.EBADF;
const ECHILD = os.constants.errno.ECHILD;
const EINVAL = os.constants.errno.EINVAL;

const backends: [string, () => NativeLib | undefined, string | false][] = [
  ['addon', () => loadAddon(addonPath()), fs.existsSync(addonPath()) ? false : `no ${addonPath()} (make native without Node-API headers)`],
  ['koffi', () => loadKoffi(libraryPath()), fs.existsSync(libraryPath()) ? false : `no ${libraryPath()} (run make native)`],
];

for (const [name, load, skip] of backends) {
  t.test(`${name} backend`, { skip }, async (t) => {
    const l = load();
    if (l === undefined) return t.fail(`${name}: did not load`);

    t.equal(l.abiVersion(), NATIVE_ABI, 'abi version');
    t.equal(l.planVersion(), PLAN_VERSION, 'plan version');

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
      l.waitpidAsync(process.pid, new Int32Array(1), 0, (e, rc) => (e ? reject(e instanceof Error ? e : new Error(String(e))) : resolve(rc)));
    });
    t.equal(got, -ECHILD, 'waitpidAsync on a non-child: -ECHILD, through the callback');
  });
}

t.test('the addon checks its arguments', { skip: backends[0]![2] }, async (t) => {
  const l = loadAddon(addonPath())!;
  t.throws(() => l.flock('x' as unknown as number, 2), TypeError, 'a string for an int');
  t.throws(() => l.mkfifo(1 as unknown as string, 0o600), TypeError, 'a number for a path');
  t.throws(() => l.spawn(Buffer.alloc(4), 8, new Int32Array(2), Buffer.alloc(8), 8), TypeError, 'a length past the buffer');
  t.throws(() => l.waitpid(1, new Int32Array(0), 0), TypeError, 'no room for the status');
});

t.test('loadAddon: a missing or broken file is no addon', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-native-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.equal(loadAddon(path.join(dir, 'none.node')), undefined, 'missing');
  fs.writeFileSync(path.join(dir, 'broken.node'), 'not an ELF file');
  t.equal(loadAddon(path.join(dir, 'broken.node')), undefined, 'not loadable');
});
