/** Container paths on the host across the spec's mounts: bind sources, tmpfs refused, links inside. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { pathMounts, resolveInContainer } from '../../../../supervisor/volumes/container-paths';
import { tempDir } from '../../../helpers/layers';

t.test('a path in a bind mount reaches its source; links resolve as the container sees them', async (t) => {
  const base = tempDir(t, 'tsrun-cpaths-');
  const root = path.join(base, 'root');
  const vol = path.join(base, 'vol');
  const file = path.join(base, 'hosts');
  for (const d of [root, vol, path.join(root, 'data'), path.join(root, 'etc'), path.join(root, 'var')]) fs.mkdirSync(d);
  fs.writeFileSync(file, '');
  fs.symlinkSync('/data', path.join(root, 'var', 'lnk')); // a link to the mount point
  fs.symlinkSync('/etc', path.join(vol, 'up')); // a link in the volume to the root's /etc
  fs.symlinkSync('../../../../etc', path.join(vol, 'rel'));
  const spec = {
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/var/lnk/', type: 'bind', source: vol, options: ['rbind', 'rw'] },
      { destination: '/etc/hosts', type: 'bind', source: file, options: ['rbind', 'ro'] },
      { destination: '/scratch', type: 'tmpfs', source: 'tmpfs' },
    ],
  };
  const mounts = pathMounts(root, spec);
  t.same(
    mounts.map((m) => [m.dest.join('/'), m.source, m.type, m.readonly]),
    [
      ['proc', undefined, 'proc', false],
      ['data', vol, 'bind', false],
      ['etc/hosts', file, 'bind', true],
      ['scratch', undefined, 'tmpfs', false],
    ],
    'destinations resolved inside the root (/var/lnk is /data)',
  );
  const r = (p: string, keepLast = false): [string, string | undefined] => {
    const x = resolveInContainer(root, mounts, p, keepLast);
    return [x.host, x.mount?.dest.join('/')];
  };
  t.same(r('/data/x'), [path.join(vol, 'x'), 'data']);
  t.same(r('/var/lnk/x'), [path.join(vol, 'x'), 'data'], 'through a link to the mount point');
  t.same(r('/data'), [vol, 'data']);
  t.same(r('/etc/hosts'), [file, 'etc/hosts']);
  t.same(r('/etc/passwd'), [path.join(root, 'etc/passwd'), undefined]);
  t.same(r('/data/up/passwd'), [path.join(root, 'etc/passwd'), undefined], 'an absolute link in the volume restarts at the root');
  t.same(r('/data/rel/passwd'), [path.join(root, 'etc/passwd'), undefined], '".." out of the volume goes up the container path and stops at the root');
  t.same(r('/data/up', true), [path.join(vol, 'up'), 'data'], 'the last component kept');
  t.same(r('/data/../etc'), [path.join(root, 'etc'), undefined]);
  t.throws(() => r('/scratch/x'), /\/scratch\/x is on a tmpfs mount of the container \(\/scratch\)/);
  t.throws(() => r('/proc/1/root'), /proc mount/);
});
