/** cp's operands, a snapshot's overlay dirs and the mountinfo lookup of a container's rootfs mount. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { side } from '../../../../supervisor/tsctl/commands/cp';
import { mountedOverlay, overlayDirs } from '../../../../supervisor/tsctl/container-fs';

t.test('cp operands: docker\'s splitCpArg', async (t) => {
  t.same(side('web:/etc/motd'), { kind: 'container', ref: 'web', path: '/etc/motd' });
  t.same(side('web:rel/x'), { kind: 'container', ref: 'web', path: 'rel/x' });
  t.same(side('web:'), { kind: 'container', ref: 'web', path: '' });
  t.same(side('/host/a:b'), { kind: 'host', path: '/host/a:b' }, 'an absolute path with a colon is local');
  t.same(side('./a:b'), { kind: 'host', path: './a:b' }, 'so is one starting with .');
  t.same(side('file.txt'), { kind: 'host', path: 'file.txt' });
  t.same(side('-'), { kind: 'host', path: '-' });
});

t.test('overlay dirs of a snapshot\'s mounts', async (t) => {
  const overlay = { type: 'overlay', source: 'overlay', target: '', options: ['index=off', 'workdir=/s/4/work', 'upperdir=/s/4/fs', 'lowerdir=/s/3/fs:/s/2/fs'] };
  t.same(overlayDirs([overlay]), { upper: '/s/4/fs', lowers: ['/s/3/fs', '/s/2/fs'] });
  t.same(overlayDirs([{ type: 'bind', source: '/s/1/fs', target: '', options: ['rbind', 'rw'] }]), { upper: '/s/1/fs', lowers: [] });
  t.equal(overlayDirs([{ ...overlay, options: ['lowerdir=/s/3/fs:/s/2/fs'] }]), undefined, 'a read-only view has no upper dir');
  t.equal(overlayDirs([overlay, overlay]), undefined);
  t.equal(overlayDirs([{ ...overlay, type: 'tmpfs' }]), undefined);
});

t.test('the rootfs mount found by its upperdir in mountinfo (escapes undone)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsctl-mountinfo-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const info = path.join(dir, 'mountinfo');
  fs.writeFileSync(
    info,
    [
      '26 1 0:23 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '55 26 0:41 / /run/rootfs/ns/other rw,relatime - overlay overlay rw,lowerdir=/s/1/fs,upperdir=/s/40/fs,workdir=/s/40/work',
      '56 26 0:42 / /run/root\\040fs/ns/mine rw,relatime shared:7 - overlay overlay rw,lowerdir=/s/3/fs:/s/1/fs,upperdir=/s/4/fs,workdir=/s/4/work,index=off',
      '',
    ].join('\n'),
  );
  t.equal(mountedOverlay('/s/4/fs', info), '/run/root fs/ns/mine');
  t.equal(mountedOverlay('/s/4', info), undefined, 'a prefix of the upper dir is not it');
  t.equal(mountedOverlay('/s/1/fs', info), undefined, 'a lower dir is not it');
});
