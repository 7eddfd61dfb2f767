/** run's storage flags: -v, --mount, --tmpfs, --volumes-from parsing and mount merging. */
import t from 'tap';
import { mergeMounts, parseMountFlag, parseTmpfsFlag, parseVolumeFlag, parseVolumesFrom } from '../../../../supervisor/tsctl/mounts';

t.test('-v', async (t) => {
  t.match(parseVolumeFlag('/h:/c:ro'), { kind: 'bind', source: '/h', target: '/c', readonly: true, create: true });
  t.match(parseVolumeFlag('data:/d'), { kind: 'volume', name: 'data', anonymous: false, target: '/d', readonly: false, copy: true });
  t.match(parseVolumeFlag('data:/d:ro,nocopy'), { kind: 'volume', readonly: true, copy: false });
  const anon = parseVolumeFlag('/anon');
  t.match(anon, { kind: 'volume', anonymous: true, target: '/anon' });
  t.match(anon.kind === 'volume' ? anon.name : '', /^[0-9a-f]{64}$/);
  t.throws(() => parseVolumeFlag('../x:/d'), /invalid characters for a local volume name/);
  t.throws(() => parseVolumeFlag('data:rel'), /must be an absolute path/);
  t.throws(() => parseVolumeFlag('data:/'), /cannot be \//);
  t.throws(() => parseVolumeFlag('data:/d:bogus'), /invalid mode "bogus"/);
});

t.test('--mount', async (t) => {
  t.match(parseMountFlag('type=bind,src=/h,dst=/c,readonly'), { kind: 'bind', source: '/h', target: '/c', readonly: true, create: false });
  t.match(parseMountFlag('type=volume,source=vol,target=/c,volume-nocopy,volume-label=a=b'), { kind: 'volume', name: 'vol', copy: false, labels: { a: 'b' } });
  t.match(parseMountFlag('target=/c'), { kind: 'volume', anonymous: true });
  t.same(parseMountFlag('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700'), { kind: 'tmpfs', target: '/t', options: ['nosuid', 'nodev', 'noexec', 'size=1048576', 'mode=700'] });
  t.throws(() => parseMountFlag('type=volume,source=v,target=/c'), /invalid volume name "v"/, 'docker needs two characters too');
  t.throws(() => parseMountFlag('type=bind,source=rel,target=/c'), /absolute source/);
  t.throws(() => parseMountFlag('type=volume,source=v'), /target is required/);
  t.throws(() => parseMountFlag('type=volume,target=/c,bogus=1'), /unexpected key 'bogus'/);
  t.throws(() => parseMountFlag('type=tmpfs,target=/t,tmpfs-mode=9'), /invalid tmpfs-mode/);
});

t.test('--tmpfs and --volumes-from', async (t) => {
  t.same(parseTmpfsFlag('/run'), { kind: 'tmpfs', target: '/run', options: ['noexec', 'nosuid', 'nodev'] });
  t.same(parseTmpfsFlag('/run:exec,size=64k'), { kind: 'tmpfs', target: '/run', options: ['nosuid', 'nodev', 'exec', 'size=64k'] });
  t.throws(() => parseTmpfsFlag('/run:bind'), /unsupported option "bind"/);
  t.same(parseVolumesFrom('web:ro'), { kind: 'from', container: 'web', mode: 'ro' });
  t.throws(() => parseVolumesFrom('web:rx'), /invalid mode/);
});

t.test('mergeMounts: a user mount replaces one on the same destination; shallower first, else in flag order', async (t) => {
  const base = [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/dev/shm', type: 'tmpfs', source: 'shm' }];
  const user = [
    { destination: '/a/b', type: 'bind', source: '/x' },
    { destination: '/dev/shm', type: 'bind', source: '/s' },
    { destination: '/a', type: 'bind', source: '/y' },
  ];
  t.same(mergeMounts(base, user).map((m) => `${m.destination}=${m.source}`), ['/proc=proc', '/a=/y', '/a/b=/x', '/dev/shm=/s']);
});
