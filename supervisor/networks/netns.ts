/*
 * Network namespaces owned by tsrund: each one is an empty file under `<state>/netns/` with the
 * namespace bind-mounted onto it, so it outlives every process in it and a container joins it by
 * path (linux.namespaces[network].path).
 *
 * They are made in-process, without spawning anything: unshare(2) of CLONE_NEWNET applies to the
 * calling thread only (namespaces are per task), so tsrund's main thread moves into a new
 * namespace, bind-mounts /proc/thread-self/ns/net onto the file, brings lo up (SIOCSIFFLAGS on a
 * socket made in there, what the CNI loopback plugin does), and setns(2)es straight back, all in
 * one synchronous stretch in which no other JavaScript runs and no socket of tsrund's is made.
 * libuv's worker threads never leave the host namespace. umount2(MNT_DETACH) releases it. This was
 * `unshare --net=FILE ip link set lo up` and `umount FILE`: three process starts per container.
 * libc is bound with koffi on first use, as supervisor/grpc/peer-cred.ts and diff/syscalls.ts do.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsrunError, codeForErrno, describeErrno } from '../../spec/errors';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const CLONE_NEWNET = 0x40000000;
const MS_BIND = 0x1000;
const MNT_DETACH = 2;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 1;
/** sizeof(struct ifreq): 16 bytes of name, then a 24-byte union whose first member is ifr_flags */
const IFREQ_SIZE = 40;

interface Libc {
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  mount(src: string, target: string, fstype: string | null, flags: number, data: null): number;
  umount2(target: string, flags: number): number;
  socket(domain: number, type: number, proto: number): number;
  ioctl(fd: number, req: number, arg: Buffer): number;
  close(fd: number): number;
  errno(): number;
}

let libc: Libc | undefined;

function bind(): Libc {
  if (libc !== undefined) return libc;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as { load(p: string): { func(sig: string): (...args: unknown[]) => number }; errno(): number };
  const lib = koffi.load('libc.so.6');
  const f = {
    unshare: lib.func('int unshare(int flags)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    mount: lib.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    // ioctl(2) is variadic; its third argument is passed as a pointer either way on Linux ABIs.
    ioctl: lib.func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)'),
    close: lib.func('int close(int fd)'),
  };
  libc = {
    unshare: (x) => f.unshare(x),
    setns: (fd, t) => f.setns(fd, t),
    mount: (s, t, fs_, fl, d) => f.mount(s, t, fs_, fl, d),
    umount2: (t, fl) => f.umount2(t, fl),
    socket: (d, t, p) => f.socket(d, t, p),
    ioctl: (fd, r, a) => f.ioctl(fd, r, a),
    close: (fd) => f.close(fd),
    errno: () => koffi.errno(),
  };
  return libc;
}

function errnoName(n: number): string {
  for (const [name, value] of Object.entries(os.constants.errno)) if (value === n) return name;
  return `errno ${n}`;
}

function fail(what: string, n: number): TsrunError {
  const name = errnoName(n);
  return new TsrunError(codeForErrno(name), `${what}: ${describeErrno(name)}`, { errno: name });
}

/** True when `file` is a mount point of an nsfs file (a live, persisted namespace). */
export function isNsMount(file: string): boolean {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const abs = path.resolve(file);
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f[sep + 1] !== 'nsfs') continue;
    if (unescapeMountPath(f[4] ?? '') === abs) return true;
  }
  return false;
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Bring lo up in the calling thread's network namespace. */
function loUp(c: Libc): void {
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw fail('socket in the new network namespace', c.errno());
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write('lo', 0, 'latin1');
    if (c.ioctl(fd, SIOCGIFFLAGS, ifr) !== 0) throw fail('get the flags of lo', c.errno());
    ifr.writeInt16LE(ifr.readInt16LE(16) | IFF_UP, 16);
    if (c.ioctl(fd, SIOCSIFFLAGS, ifr) !== 0) throw fail('bring lo up', c.errno());
  } finally {
    c.close(fd);
  }
}

/**
 * Make the namespace and bind it onto `file` from the main thread, then return the thread to the
 * namespace it came from. Failing to return would leave tsrund's main thread in the wrong
 * namespace for every later socket it makes, so that case ends the process.
 */
function persistNewNetns(file: string): void {
  const c = bind();
  const home = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    if (c.unshare(CLONE_NEWNET) !== 0) throw fail('unshare(CLONE_NEWNET)', c.errno());
    let err: unknown;
    try {
      if (c.mount('/proc/thread-self/ns/net', file, null, MS_BIND, null) !== 0) throw fail(`bind-mount the namespace onto ${file}`, c.errno());
      loUp(c);
    } catch (e) {
      err = e;
    }
    if (c.setns(home, CLONE_NEWNET) !== 0) {
      process.stderr.write(`tsrund: cannot return to the host network namespace after making ${file}: ${errnoName(c.errno())}\n`);
      process.abort();
    }
    if (err !== undefined) {
      if (isNsMount(file)) c.umount2(file, MNT_DETACH);
      throw err;
    }
  } finally {
    fs.closeSync(home);
  }
}

/** Make a new network namespace persisted at `<dir>/<name>`, with lo up; returns its path. */
export function createNetns(dir: string, name: string): string {
  if (!NAME_RE.test(name)) throw new TsrunError('InvalidArgument', `network namespace name ${JSON.stringify(name)}: not a plain file name`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, name);
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDONLY, 0o444));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new TsrunError('AlreadyExists', `network namespace ${file}: already exists`);
    throw new TsrunError('Internal', `create network namespace file ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    persistNewNetns(file);
  } catch (e) {
    fs.rmSync(file, { force: true });
    const code = e instanceof TsrunError ? e.code : 'Internal';
    throw new TsrunError(code, `create network namespace ${file}: ${(e as Error).message}`, { cause: e });
  }
  return file;
}

/** Release a namespace made by createNetns (unmount, then remove the file); a missing one is fine. */
export function removeNetns(file: string): void {
  if (fs.existsSync(file)) {
    const c = bind();
    // EINVAL: not a mount point (never bound, or released before a crash): only the file is left.
    if (c.umount2(file, MNT_DETACH) !== 0) {
      const n = c.errno();
      if (n !== os.constants.errno.EINVAL && n !== os.constants.errno.ENOENT) throw fail(`release network namespace ${file}`, n);
    }
  }
  fs.rmSync(file, { force: true });
}

/** The namespace files under `dir`. */
export function listNetns(dir: string): string[] {
  try {
    return fs.readdirSync(dir).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}
