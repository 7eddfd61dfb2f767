import t from 'tap';
import {
  KNOWN_MOUNT_OPTIONS,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NODIRATIME,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_NOSYMFOLLOW,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_RELATIME,
  MOUNT_ATTR_STRICTATIME,
  MOUNT_ATTR__ATIME,
  MS_BIND,
  MS_DIRSYNC,
  MS_I_VERSION,
  MS_LAZYTIME,
  MS_MANDLOCK,
  MS_MOVE,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
  parseMountOptions,
  rootfsPropagationFlags,
} from '../../../spec';

t.test('constants match linux/mount.h', async (t) => {
  t.same(
    [MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOSYMFOLLOW],
    [1, 2, 4, 8, 16, 32, 64, 128, 256],
  );
  t.same([MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC, MS_SILENT], [1024, 2048, 4096, 8192, 16384, 32768]);
  t.same([MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_RELATIME], [0x20000, 0x40000, 0x80000, 0x100000, 0x200000]);
  t.same([MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME], [0x800000, 0x1000000, 0x2000000]);
  t.same(
    [MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME],
    [1, 2, 4, 8, 0x70, 0],
  );
  t.same([MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NOSYMFOLLOW], [0x10, 0x20, 0x80, 0x100000, 0x200000]);
});

// [option, flags it sets, flags it records as cleared]
const flagTable: readonly [string, number, number][] = [
  ['defaults', 0, 0],
  ['ro', MS_RDONLY, 0],
  ['rw', 0, MS_RDONLY],
  ['nosuid', MS_NOSUID, 0],
  ['suid', 0, MS_NOSUID],
  ['nodev', MS_NODEV, 0],
  ['dev', 0, MS_NODEV],
  ['noexec', MS_NOEXEC, 0],
  ['exec', 0, MS_NOEXEC],
  ['sync', MS_SYNCHRONOUS, 0],
  ['async', 0, MS_SYNCHRONOUS],
  ['dirsync', MS_DIRSYNC, 0],
  ['remount', MS_REMOUNT, 0],
  ['mand', MS_MANDLOCK, 0],
  ['nomand', 0, MS_MANDLOCK],
  ['noatime', MS_NOATIME, 0],
  ['atime', 0, MS_NOATIME],
  ['nodiratime', MS_NODIRATIME, 0],
  ['diratime', 0, MS_NODIRATIME],
  ['relatime', MS_RELATIME, 0],
  ['norelatime', 0, MS_RELATIME],
  ['strictatime', MS_STRICTATIME, 0],
  ['nostrictatime', 0, MS_STRICTATIME],
  ['nosymfollow', MS_NOSYMFOLLOW, 0],
  ['symfollow', 0, MS_NOSYMFOLLOW],
  ['silent', MS_SILENT, 0],
  ['loud', 0, MS_SILENT],
  ['iversion', MS_I_VERSION, 0],
  ['noiversion', 0, MS_I_VERSION],
  ['lazytime', MS_LAZYTIME, 0],
  ['nolazytime', 0, MS_LAZYTIME],
];

const none = {
  flags: 0,
  clearFlags: 0,
  propagation: 0,
  propagations: [],
  data: '',
  recAttrSet: 0,
  recAttrClr: 0,
  isBind: false,
  isRecursiveBind: false,
  isIdmap: false,
  isRecursiveIdmap: false,
  isTmpcopyup: false,
};

t.test('flag options', async (t) => {
  t.strictSame(parseMountOptions([]), none, 'no options, nothing set');
  for (const [option, flags, clearFlags] of flagTable) {
    t.strictSame(parseMountOptions([option]), { ...none, flags, clearFlags }, option);
  }
});

t.test('later options win', async (t) => {
  t.equal(parseMountOptions(['ro', 'rw']).flags, 0);
  t.equal(parseMountOptions(['ro', 'rw']).clearFlags, MS_RDONLY);
  t.equal(parseMountOptions(['rw', 'ro']).flags, MS_RDONLY);
  t.equal(parseMountOptions(['rw', 'ro']).clearFlags, 0);
  t.equal(parseMountOptions(['nosuid', 'nodev', 'noexec', 'ro']).flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY);
});

t.test('propagation options', async (t) => {
  const table: readonly [string, number][] = [
    ['private', MS_PRIVATE],
    ['rprivate', MS_PRIVATE | MS_REC],
    ['shared', MS_SHARED],
    ['rshared', MS_SHARED | MS_REC],
    ['slave', MS_SLAVE],
    ['rslave', MS_SLAVE | MS_REC],
    ['unbindable', MS_UNBINDABLE],
    ['runbindable', MS_UNBINDABLE | MS_REC],
  ];
  for (const [option, flags] of table) {
    t.strictSame(parseMountOptions([option]), { ...none, propagation: flags, propagations: [flags] }, option);
    t.equal(rootfsPropagationFlags(option), flags, `rootfsPropagation ${option}`);
  }
  const both = parseMountOptions(['rshared', 'rprivate']);
  t.equal(both.propagation, MS_PRIVATE | MS_REC, 'the last one is the propagation');
  t.same(both.propagations, [MS_SHARED | MS_REC, MS_PRIVATE | MS_REC], 'all are kept in order');
  t.throws(() => rootfsPropagationFlags('rprivat'), { code: 'InvalidArgument', message: 'linux.rootfsPropagation: unknown propagation "rprivat"' });
});

t.test('bind, idmap and tmpcopyup', async (t) => {
  t.strictSame(parseMountOptions(['bind']), { ...none, flags: MS_BIND, isBind: true });
  t.strictSame(parseMountOptions(['rbind']), { ...none, flags: MS_BIND | MS_REC, isBind: true, isRecursiveBind: true });
  t.strictSame(parseMountOptions(['idmap']), { ...none, isIdmap: true });
  t.strictSame(parseMountOptions(['ridmap']), { ...none, isIdmap: true, isRecursiveIdmap: true });
  t.strictSame(parseMountOptions(['tmpcopyup']), { ...none, isTmpcopyup: true });
  const docker = parseMountOptions(['rbind', 'rprivate']);
  t.equal(docker.flags, MS_BIND | MS_REC);
  t.equal(docker.propagation, MS_PRIVATE | MS_REC);
  t.equal(docker.data, '');
});

t.test('recursive attributes', async (t) => {
  const table: readonly [string, number, number][] = [
    ['rro', MOUNT_ATTR_RDONLY, 0],
    ['rrw', 0, MOUNT_ATTR_RDONLY],
    ['rnosuid', MOUNT_ATTR_NOSUID, 0],
    ['rsuid', 0, MOUNT_ATTR_NOSUID],
    ['rnodev', MOUNT_ATTR_NODEV, 0],
    ['rdev', 0, MOUNT_ATTR_NODEV],
    ['rnoexec', MOUNT_ATTR_NOEXEC, 0],
    ['rexec', 0, MOUNT_ATTR_NOEXEC],
    ['rnodiratime', MOUNT_ATTR_NODIRATIME, 0],
    ['rdiratime', 0, MOUNT_ATTR_NODIRATIME],
    ['rnosymfollow', MOUNT_ATTR_NOSYMFOLLOW, 0],
    ['rsymfollow', 0, MOUNT_ATTR_NOSYMFOLLOW],
    ['rrelatime', MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME],
    ['rnoatime', MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME],
    ['rstrictatime', MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME],
    ['ratime', MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME],
    ['rnostrictatime', MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME],
    ['rnorelatime', MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME],
  ];
  for (const [option, recAttrSet, recAttrClr] of table) {
    t.strictSame(parseMountOptions([option]), { ...none, recAttrSet, recAttrClr }, option);
  }
  const all = parseMountOptions(['rro', 'rnosuid', 'rnodev', 'rnoexec', 'rnoatime', 'rnodiratime', 'rnosymfollow']);
  t.equal(all.recAttrSet, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOATIME | MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW);
  t.equal(all.recAttrClr, MOUNT_ATTR__ATIME, 'the whole atime field is cleared when one atime value is set');
  const flip = parseMountOptions(['rro', 'rrw']);
  t.equal(flip.recAttrSet, 0, 'rrw after rro: not set');
  t.equal(flip.recAttrClr, MOUNT_ATTR_RDONLY, 'rrw after rro: cleared');
  const back = parseMountOptions(['rrw', 'rro']);
  t.equal(back.recAttrSet, MOUNT_ATTR_RDONLY);
  t.equal(back.recAttrClr, 0);
  const atime = parseMountOptions(['rnoatime', 'rstrictatime']);
  t.equal(atime.recAttrSet, MOUNT_ATTR_STRICTATIME, 'the last atime value wins');
  t.equal(atime.recAttrClr, MOUNT_ATTR__ATIME);
  t.equal(parseMountOptions(['rro']).flags, 0, 'recursive options set no mount(2) flags');
});

t.test('unknown options are filesystem data, in order', async (t) => {
  const devpts = parseMountOptions(['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
  t.equal(devpts.flags, MS_NOSUID | MS_NOEXEC);
  t.equal(devpts.data, 'newinstance,ptmxmode=0666,mode=0620,gid=5');
  const tmpfs = parseMountOptions(['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  t.equal(tmpfs.flags, MS_NOSUID | MS_STRICTATIME);
  t.equal(tmpfs.data, 'mode=755,size=65536k');
  t.equal(parseMountOptions(['bind', 'x-custom', 'ro']).data, 'x-custom', 'also for bind mounts');
});

t.test('the known option list', async (t) => {
  for (const option of KNOWN_MOUNT_OPTIONS) t.equal(parseMountOptions([option]).data, '', `${option} is not data`);
  for (const option of ['bind', 'rbind', 'idmap', 'ridmap', 'tmpcopyup', 'rro', 'rprivate', 'lazytime']) {
    t.ok(KNOWN_MOUNT_OPTIONS.includes(option), `${option} is known`);
  }
});
