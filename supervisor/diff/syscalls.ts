/*
 * The few file-system calls Node lacks: mknod(2) (device nodes, fifos, overlay whiteouts), the
 * l*xattr(2) family (xattrs on the entry itself, never through a symlink), and mount(2)/umount2(2)
 * for tsctl's look at an image's snapshot (supervisor/tsctl/image-run.ts), which would otherwise
 * start mount(8) and umount(8), and the FS_IOC_*FLAGS ioctls for the snapshotters' directory
 * (setTopDir). Bound from libc with koffi
 * on first use, as supervisor/grpc/peer-cred.ts does: runtime/native binds only the tsrun.node addon and is
 * reserved for runtime/container, and koffi's load cost is paid only by a daemon that unpacks.
 */
import { TsrunError, codeForErrno, describeErrno } from '../../spec/errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

interface Libc {
  mknod(path: string, mode: number, dev: bigint): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer | null, size: number): number;
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  ioctl(fd: number, request: number, arg: Buffer): number;
  errno(): number;
}

let libc: Libc | undefined;

interface Koffi {
  load(p: string): { func(sig: string): (...args: unknown[]) => number };
  errno(): number;
}

/**
 * koffi's native module, opened straight from where our layouts keep it (the bundle's directory's
 * ../node_modules, as for `make build` and `make install`): require('koffi') spends most of its
 * time resolving modules and reading package.json files rather than in the dlopen, and tsctl run
 * waits for it (the mknod of its fifos). Anything else (another layout, a musl build) takes
 * require('koffi'), which finds the right build itself.
 */
function loadKoffi(): Koffi {
  const script = process.argv[1];
  if (script !== undefined && process.platform === 'linux') {
    const arch = process.arch;
    const file = path.join(path.dirname(script), '..', 'node_modules', '@koromix', `koffi-linux-${arch}`, `linux_${arch}`, 'koffi.node');
    const m = { exports: {} as Partial<Koffi> };
    try {
      process.dlopen(m, file);
    } catch {
      m.exports = {};
    }
    if (typeof m.exports.load === 'function' && typeof m.exports.errno === 'function') return m.exports as Koffi;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('koffi') as Koffi;
}

function bind(): Libc {
  if (libc !== undefined) return libc;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  const mknod = lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  const lsetxattr = lib.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)');
  const lgetxattr = lib.func('intptr_t lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');
  const llistxattr = lib.func('intptr_t llistxattr(const char *path, _Out_ uint8_t *list, size_t size)');
  const mount = lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
  const umount2 = lib.func('int umount2(const char *target, int flags)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)');
  libc = {
    mknod: (p, m, d) => mknod(p, m, d),
    lsetxattr: (p, n, v, s, f) => lsetxattr(p, n, v, s, f),
    lgetxattr: (p, n, v, s) => lgetxattr(p, n, v, s),
    llistxattr: (p, l, s) => llistxattr(p, l, s),
    mount: (src, t, ty, f, d) => mount(src, t, ty, f, d),
    umount2: (t, f) => umount2(t, f),
    ioctl: (fd, r, a) => ioctl(fd, r, a),
    errno: () => koffi.errno(),
  };
  return libc;
}

function errnoName(n: number): string {
  if (n === os.constants.errno.ENOTSUP) return 'ENOTSUP';
  for (const [name, value] of Object.entries(os.constants.errno)) if (value === n) return name;
  return `errno ${n}`;
}

function fail(what: string, n: number): TsrunError {
  const name = errnoName(n);
  return new TsrunError(codeForErrno(name), `${what}: ${describeErrno(name)}`, { errno: name });
}

/**
 * Load koffi and bind libc now (what the first call would do), for a caller that has time to
 * spare now and a call to make soon: tsctl run, while its first requests are with tsrund. A
 * failure is left for that call to report.
 */
export function preloadLibc(): void {
  try {
    bind();
  } catch {
    // the call that needs it says why
  }
}

/** Linux's dev_t encoding (glibc's makedev). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** major and minor of a dev_t as fs.Stats reports it (a number, exact below 2^53). */
export function splitDev(dev: number | bigint): { major: number; minor: number } {
  const d = BigInt(dev);
  return {
    major: Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn)),
    minor: Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn)),
  };
}

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** MNT_DETACH of umount2(2): detach now, clean up once the mount is no longer busy. */
export const MNT_DETACH = 2;

/** mount(2). */
export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  const c = bind();
  if (c.mount(source, target, fstype, flags, data) !== 0) throw fail(`mount ${fstype ?? ''} ${source} on ${target}`, c.errno());
}

/** umount2(2). */
export function umount2(target: string, flags: number): void {
  const c = bind();
  if (c.umount2(target, flags) !== 0) throw fail(`umount ${target}`, c.errno());
}

/** mknod(2); `type` is S_IFCHR, S_IFBLK or S_IFIFO. */
export function mknod(path: string, type: number, perm: number, major: number, minor: number): void {
  const c = bind();
  if (c.mknod(path, type | (perm & 0o7777), makedev(major, minor)) !== 0) {
    throw fail(`mknod ${path}`, c.errno());
  }
}

/** lsetxattr(2): set an xattr on the path itself (a symlink is not followed). */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  const c = bind();
  if (c.lsetxattr(path, name, value, value.length, 0) !== 0) throw fail(`lsetxattr ${path} (${name})`, c.errno());
}

/** The xattr names on a path itself, or [] where the file system has none. */
export function llistxattr(path: string): string[] {
  const c = bind();
  for (let attempt = 0; attempt < 4; attempt++) {
    const size = c.llistxattr(path, null, 0);
    if (size < 0) {
      const e = c.errno();
      if (errnoName(e) === 'ENOTSUP') return [];
      throw fail(`llistxattr ${path}`, e);
    }
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = c.llistxattr(path, buf, size);
    if (got < 0 && errnoName(c.errno()) === 'ERANGE') continue; // grew meanwhile
    if (got < 0) throw fail(`llistxattr ${path}`, c.errno());
    return buf.subarray(0, got).toString('utf8').split('\0').filter((n) => n !== '');
  }
  throw new TsrunError('Internal', `llistxattr ${path}: list keeps changing size`);
}

/** One xattr's value, or undefined when the path does not have it. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const c = bind();
  for (let attempt = 0; attempt < 4; attempt++) {
    const size = c.lgetxattr(path, name, null, 0);
    if (size < 0) {
      const e = errnoName(c.errno());
      if (e === 'ENODATA' || e === 'ENOTSUP') return undefined;
      throw fail(`lgetxattr ${path} (${name})`, c.errno());
    }
    const buf = Buffer.alloc(size);
    const got = size === 0 ? 0 : c.lgetxattr(path, name, buf, size);
    if (got < 0 && errnoName(c.errno()) === 'ERANGE') continue;
    if (got < 0) throw fail(`lgetxattr ${path} (${name})`, c.errno());
    return buf.subarray(0, got);
  }
  throw new TsrunError('Internal', `lgetxattr ${path} (${name}): value keeps changing size`);
}

const FS_IOC_GETFLAGS = 0x80086601;
const FS_IOC_SETFLAGS = 0x40086602;
const FS_TOPDIR_FL = 0x00020000;

/**
 * Mark `dir` the top of directory hierarchies (chattr +T). ext2/3/4 then place each new
 * subdirectory in a block group of its own choosing (Orlov), as for directories under the root,
 * instead of beside its parent, and the files made in it follow. False where the file system has
 * no such flag (the call changes nothing there).
 */
export function setTopDir(dir: string): boolean {
  const c = bind();
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const b = Buffer.alloc(4);
    if (c.ioctl(fd, FS_IOC_GETFLAGS, b) !== 0) return false;
    const flags = b.readInt32LE(0);
    if ((flags & FS_TOPDIR_FL) !== 0) return true;
    b.writeInt32LE(flags | FS_TOPDIR_FL, 0);
    return c.ioctl(fd, FS_IOC_SETFLAGS, b) === 0;
  } finally {
    fs.closeSync(fd);
  }
}
