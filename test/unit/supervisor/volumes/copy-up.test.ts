/** Copy-up reads only inside the rootfs: resolveInRoot clamps ".." and absolute symlinks to it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { copyUp, resolveInRoot } from '../../../../supervisor/volumes/copy-up';
import { listTree, tempDir } from '../../../helpers/layers';

function arena(t: Parameters<typeof tempDir>[0]): { rootfs: string; outside: string; data: string } {
  const base = tempDir(t, 'tsrun-copyup-');
  const rootfs = path.join(base, 'rootfs');
  const outside = path.join(base, 'outside');
  const data = path.join(base, 'data');
  for (const d of [rootfs, outside, data]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  return { rootfs, outside, data };
}

t.test('resolveInRoot follows symlinks as the container sees them and never leaves the root', async (t) => {
  const { rootfs, outside } = arena(t);
  fs.mkdirSync(path.join(rootfs, 'usr/lib'), { recursive: true });
  fs.symlinkSync('usr/lib', path.join(rootfs, 'lib'));
  fs.symlinkSync('/usr/lib', path.join(rootfs, 'abs'));
  fs.symlinkSync(outside, path.join(rootfs, 'host'));
  fs.symlinkSync('../../../../../..', path.join(rootfs, 'up'));
  fs.symlinkSync('loop', path.join(rootfs, 'loop'));
  t.equal(resolveInRoot(rootfs, '/lib/x'), path.join(rootfs, 'usr/lib/x'));
  t.equal(resolveInRoot(rootfs, '/abs/x'), path.join(rootfs, 'usr/lib/x'));
  t.equal(resolveInRoot(rootfs, '/host'), path.join(rootfs, outside), 'an absolute target restarts at the root');
  t.equal(resolveInRoot(rootfs, '/up/etc'), path.join(rootfs, 'etc'), '".." stops at the root');
  t.equal(resolveInRoot(rootfs, '/../../etc'), path.join(rootfs, 'etc'));
  t.throws(() => resolveInRoot(rootfs, '/loop'), /too many levels of symbolic links/);
});

t.test('copyUp copies the directory, not what a symlink to the host names', async (t) => {
  const { rootfs, outside, data } = arena(t);
  fs.mkdirSync(path.join(rootfs, 'seed/sub'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'seed/sub/f'), 'f');
  fs.symlinkSync(path.join(outside, 'secret'), path.join(rootfs, 'seed/link'));
  fs.chmodSync(path.join(rootfs, 'seed'), 0o751);
  t.equal(await copyUp(rootfs, '/seed', data), true);
  t.same(listTree(data), ['l link', 'd sub', 'f sub/f']);
  t.equal(fs.readlinkSync(path.join(data, 'link')), path.join(outside, 'secret'), 'a symlink is copied as a symlink');
  t.equal(fs.statSync(data).mode & 0o777, 0o751, 'the volume root takes the directory mode');
  const data2 = path.join(path.dirname(data), 'data2');
  fs.mkdirSync(data2);
  fs.symlinkSync(outside, path.join(rootfs, 'escape'));
  fs.mkdirSync(path.join(outside, 'dir'));
  fs.writeFileSync(path.join(outside, 'dir', 'host-file'), 'host');
  t.equal(await copyUp(rootfs, '/escape', data2), false, 'a symlink as the last component is not a directory to copy');
  t.equal(await copyUp(rootfs, '/escape/dir', data2), false, 'a symlinked parent is resolved inside the rootfs, where nothing is');
  t.same(fs.readdirSync(data2), []);
  t.equal(await copyUp(rootfs, '/missing', data2), false);
});
