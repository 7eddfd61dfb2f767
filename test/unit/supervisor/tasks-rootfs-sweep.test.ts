/**
 * The start-up sweep of leftover rootfs mounts touches mount points only: the directory it scans
 * is beside the shim root, so with a --shim-root of the user's choice it may hold the user's own
 * files (a rootfs with empty directories: those must stay).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { rootfsDir, unmountLeftoverRootfs } from '../../../supervisor/tasks/rootfs';

const isRoot = process.getuid?.() === 0;

t.test('an empty directory that is not a mount point stays', async (t) => {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'rootfs-sweep-'));
  t.teardown(() => fs.rmSync(top, { recursive: true, force: true }));
  const shimRoot = path.join(top, 's');
  const dir = rootfsDir(shimRoot, 'usr', 'sbin');
  fs.mkdirSync(dir, { recursive: true });
  t.equal(unmountLeftoverRootfs(dir), false);
  t.ok(fs.existsSync(dir), `${dir} kept`);
  t.equal(unmountLeftoverRootfs(path.join(top, 'missing')), false, 'a missing directory is nothing to do');
});

t.test('a leftover mount is unmounted and its directory removed', { skip: isRoot ? false : 'mounting needs root' }, async (t) => {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'rootfs-sweep-'));
  const dir = rootfsDir(path.join(top, 's'), 'ns', 'id');
  fs.mkdirSync(dir, { recursive: true });
  t.teardown(() => {
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(top, { recursive: true, force: true });
  });
  const m = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', dir], { encoding: 'utf8' });
  t.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
  t.equal(unmountLeftoverRootfs(dir), true);
  t.notOk(fs.existsSync(dir), 'removed');
});
