/*
 * The only module that touches FFI. It reaches the C helper (native-helpers/) through one of two
 * backends with the same functions, and turns the helper's "-errno" convention into TsrunErrors.
 * Nothing but runtime/container imports it.
 *
 *   build/tsrun.node   the helper as a Node-API addon (native-helpers/addon.c), loaded with
 *                      process.dlopen: well under a millisecond
 *   build/libtsrun.so  the same helper bound with koffi: loading koffi costs 25-40 ms, so it is
 *                      only the fallback, for a build without Node's headers (no tsrun.node),
 *                      an addon that does not load, or TSRUN_NATIVE=koffi
 *
 * The backend is chosen on first use, so commands that never reach the helper (state, list) load
 * neither.
 */
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { TsrunError, codeForErrno, describeErrno } from '../../spec/errors';
import { MSG_HEADER_BYTES, SYNC_MAX_BYTES } from '../plan/ops';

/** The C ABI this code was written against (tsrun_abi_version()). */
export const NATIVE_ABI = 1;

/**
 * The helper's exported functions with the C signatures of native-helpers/tsrun.h (pointers are
 * Buffers or typed arrays); both backends provide exactly these.
 */
export interface NativeLib {
  abiVersion(): number;
  planVersion(): number;
  spawn(plan: Uint8Array, len: number, out: Int32Array, err: Uint8Array, errlen: number): number;
  syncSend(fd: number, type: number, stage: number, err: number, value: number, payload: Uint8Array, len: number): number;
  syncRecv(fd: number, timeoutMs: number, buf: Uint8Array, buflen: number, rfd: Int32Array): number;
  unixConnect(path: string): number;
  flock(fd: number, op: number): number;
  waitpid(pid: number, status: Int32Array, options: number): number;
  /** tsrun_waitpid on a worker thread; done(null, rc) with status filled in on the main thread. */
  waitpidAsync(pid: number, status: Int32Array, options: number, done: (err: unknown, rc: number) => void): void;
  pidfdOpen(pid: number, flags: number): number;
  pidfdSendSignal(pidfd: number, sig: number): number;
  prctl(option: number, a2: bigint, a3: bigint, a4: bigint, a5: bigint): number;
  mkfifo(path: string, mode: number): number;
  setWinsize(fd: number, rows: number, cols: number): number;
  sendFd(sock: number, fd: number, name: string): number;
  recvFd(sock: number, name: Uint8Array, namelen: number): number;
  idmappedTree(source: string, uidMap: string, gidMap: string, recursive: number, attrSet: bigint, attrClr: bigint, err: Uint8Array, errlen: number): number;
  /** tsrun_bpf_prog_load_attach; undefined when a libtsrun.so bound with koffi lacks it (bpfMissing says why). */
  readonly bpfProgLoadAttach: ((cgroupFd: number, insns: Uint8Array, len: number, log: Uint8Array, loglen: number) => number) | undefined;
  /** Why bpfProgLoadAttach is undefined. */
  readonly bpfMissing?: string;
}

/** Which backend a NativeLib came from. */
export type NativeBackend = 'addon' | 'koffi';

let lib: NativeLib | undefined;
let libBackend: NativeBackend | undefined;

/** Where build/libtsrun.so lives: $TSRUN_LIBTSRUN, or build/ next to the bundle's bin/ directory. */
export function libraryPath(): string {
  const fromEnv = process.env['TSRUN_LIBTSRUN'];
  if (fromEnv) return fromEnv;
  const main = require.main?.filename ?? process.argv[1] ?? __filename;
  const candidates = [
    path.resolve(path.dirname(main), '..', 'build', 'libtsrun.so'),
    path.resolve(__dirname, '..', '..', 'build', 'libtsrun.so'),
    path.resolve(process.cwd(), 'build', 'libtsrun.so'),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/** Where build/tsrun.node lives: $TSRUN_ADDON, or beside libtsrun.so (libraryPath). */
export function addonPath(): string {
  return process.env['TSRUN_ADDON'] || path.join(path.dirname(libraryPath()), 'tsrun.node');
}

/** Load the addon at `where`; undefined when there is none or it does not load (koffi takes over). */
export function loadAddon(where: string): NativeLib | undefined {
  if (!existsSync(where)) return undefined;
  const m = { exports: {} as Partial<NativeLib> };
  try {
    // process.dlopen, not require: the CLI's bundle runs from a startup snapshot without a module loader.
    process.dlopen(m, where, osConstants.dlopen.RTLD_NOW);
  } catch {
    return undefined;
  }
  return typeof m.exports.spawn === 'function' && typeof m.exports.bpfProgLoadAttach === 'function' ? (m.exports as NativeLib) : undefined;
}

type KoffiFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

/** libtsrun.so bound with koffi; throws Unavailable when koffi or the library cannot be loaded. */
export function loadKoffi(where: string): NativeLib {
  let so: { func(sig: string): KoffiFn };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const koffi = require('koffi') as { load(p: string): { func(sig: string): KoffiFn } };
    so = koffi.load(where);
  } catch (err) {
    throw new TsrunError('Unavailable', `load native helper ${where}: ${(err as Error).message} (run 'make build')`, { cause: err });
  }
  const f = (sig: string): ((...args: unknown[]) => number) => {
    const fn = so.func(sig);
    return (...args) => fn(...args) as number;
  };
  const waitpid = so.func('int tsrun_waitpid(int pid, int32_t *status, int options)');
  // A libtsrun.so older than the cgroup v2 device support still serves everything else.
  let bpf: ((...args: unknown[]) => number) | undefined;
  let bpfMissing = '';
  try {
    bpf = f('int tsrun_bpf_prog_load_attach(int cgroup_fd, const uint8_t *insns, uint32_t len, char *log, uint32_t loglen)');
  } catch (err) {
    bpfMissing = (err as Error).message;
  }
  return {
    abiVersion: f('int tsrun_abi_version(void)'),
    planVersion: f('int tsrun_plan_version(void)'),
    spawn: f('int tsrun_spawn(const uint8_t *plan, uint32_t len, int32_t *out, char *err, uint32_t errlen)'),
    syncSend: f('int tsrun_sync_send(int fd, uint32_t type, uint32_t stage, int32_t err, int32_t value, const uint8_t *payload, uint32_t len)'),
    syncRecv: f('int tsrun_sync_recv_fd(int fd, int32_t timeout_ms, uint8_t *buf, uint32_t buflen, int32_t *rfd)'),
    unixConnect: f('int tsrun_unix_connect(const char *path)'),
    flock: f('int tsrun_flock(int fd, int op)'),
    waitpid: (pid, status, options) => waitpid(pid, status, options) as number,
    waitpidAsync: (pid, status, options, done) => waitpid.async(pid, status, options, done),
    pidfdOpen: f('int tsrun_pidfd_open(int pid, uint32_t flags)'),
    pidfdSendSignal: f('int tsrun_pidfd_send_signal(int pidfd, int sig)'),
    prctl: f('int tsrun_prctl(int option, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)'),
    mkfifo: f('int tsrun_mkfifo(const char *path, uint32_t mode)'),
    setWinsize: f('int tsrun_set_winsize(int fd, uint32_t rows, uint32_t cols)'),
    sendFd: f('int tsrun_send_fd(int sock, int fd, const char *name)'),
    recvFd: f('int tsrun_recv_fd(int sock, uint8_t *name, uint32_t namelen)'),
    idmappedTree: f('int tsrun_idmapped_tree(const char *source, const char *uid_map, const char *gid_map, uint32_t recursive, uint64_t attr_set, uint64_t attr_clr, char *err, uint32_t errlen)'),
    bpfProgLoadAttach: bpf,
    ...(bpf ? {} : { bpfMissing }),
  };
}

/** The helper, loaded on first use: the addon unless TSRUN_NATIVE=koffi or it is missing, else koffi. */
export function load(): NativeLib {
  if (lib) return lib;
  const where = libraryPath();
  const addon = process.env['TSRUN_NATIVE'] === 'koffi' ? undefined : loadAddon(addonPath());
  const l = addon ?? loadKoffi(where);
  const abi = l.abiVersion();
  if (abi !== NATIVE_ABI) {
    throw new TsrunError('FailedPrecondition', `native helper ${where}: ABI version ${abi}, this tsrun needs ${NATIVE_ABI} (run 'make build')`);
  }
  lib = l;
  libBackend = addon ? 'addon' : 'koffi';
  return l;
}

/** The backend load() chose, or undefined before the first call. */
export function nativeBackend(): NativeBackend | undefined {
  return libBackend;
}

const ERRNO_NAMES: Map<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, num]) => [num, name] as [number, string]),
);

/** The symbolic name of an errno number ("ENOENT"), or "errno N". */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

function check(what: string, rc: number): number {
  if (rc >= 0) return rc;
  const name = errnoName(-rc);
  throw new TsrunError(codeForErrno(name), `${what}: ${describeErrno(name)}`, { errno: name });
}

/** The result of spawning a container init. */
export interface Spawned {
  readonly pid: number;
  readonly syncFd: number;
}

/** Decode-check the plan in C, clone the init, and return its pid and our end of the sync socket. */
export function spawn(plan: Buffer): Spawned {
  const l = load();
  const out = new Int32Array(2);
  const err = Buffer.alloc(2048);
  const rc = l.spawn(plan, plan.length, out, err, err.length);
  if (rc < 0) {
    const name = errnoName(-rc);
    const text = err.subarray(0, Math.max(0, err.indexOf(0))).toString('utf8') || 'spawn container init';
    throw new TsrunError(codeForErrno(name), text, { errno: name, stage: 'clone' });
  }
  return { pid: out[0]!, syncFd: out[1]! };
}

/** One sync message, as the wire header in ops.ts draws it. */
export interface SyncMessage {
  readonly type: number;
  readonly stage: number;
  readonly errno: number;
  readonly value: number;
  readonly payload: Buffer;
  /** An fd that came with the message (SCM_RIGHTS), or -1. */
  readonly fd: number;
}

/** Send one sync message. */
export function syncSend(fd: number, type: number, payload: Buffer = Buffer.alloc(0), stage = 0, errno = 0, value = 0): void {
  check('send sync message', load().syncSend(fd, type, stage, errno, value, payload, payload.length));
}

/** Receive one sync message; null when the peer is gone. Throws Unavailable on timeout. */
export function syncRecv(fd: number, timeoutMs: number): SyncMessage | null {
  const buf = Buffer.alloc(SYNC_MAX_BYTES + MSG_HEADER_BYTES);
  const rfd = new Int32Array(1);
  const n = load().syncRecv(fd, timeoutMs, buf, buf.length, rfd);
  if (n === 0) return null;
  if (n === -osConstants.errno.ETIMEDOUT) {
    throw new TsrunError('Unavailable', `wait for container init: no message within ${timeoutMs} ms`, { errno: 'ETIMEDOUT' });
  }
  check('receive sync message', n);
  return {
    type: buf.readUInt32LE(0),
    stage: buf.readUInt32LE(4),
    errno: buf.readInt32LE(8),
    value: buf.readInt32LE(12),
    payload: Buffer.from(buf.subarray(MSG_HEADER_BYTES, n)),
    fd: rfd[0]!,
  };
}

/** flock(2) operations. */
export const LOCK = { SH: 1, EX: 2, NB: 4, UN: 8 } as const;

/** flock(2) on an open fd; blocks unless LOCK.NB is given. */
export function flock(fd: number, op: number, what: string): void {
  check(what, load().flock(fd, op));
}

/** Result of a wait: the pid reaped (0 with WNOHANG when nothing changed) and the raw status. */
export interface WaitResult {
  readonly pid: number;
  readonly status: number;
}

/** waitpid(2) options. */
export const WNOHANG = 1;

/** waitpid(2), synchronously. */
export function waitpid(pid: number, options = 0): WaitResult {
  const status = new Int32Array(1);
  const rc = check(`wait for process ${pid}`, load().waitpid(pid, status, options));
  return { pid: rc, status: status[0]! };
}

/** waitpid(2) on a worker thread, so the event loop (signal forwarding) keeps running. */
export function waitpidAsync(pid: number): Promise<WaitResult> {
  const l = load();
  const status = new Int32Array(1);
  return new Promise((resolve, reject) => {
    l.waitpidAsync(pid, status, 0, (err: unknown, rc: number) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else {
        try {
          resolve({ pid: check(`wait for process ${pid}`, rc), status: status[0]! });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    });
  });
}

/** Exit code the way a shell reports it: status, or 128+signal. */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  if (sig === 0) return (status >> 8) & 0xff;
  return 128 + sig;
}

/** prctl(2) option numbers we use. */
export const PR = { SET_CHILD_SUBREAPER: 36 } as const;

/** prctl(2). */
export function prctl(option: number, a2 = 0n, a3 = 0n, a4 = 0n, a5 = 0n): number {
  return check(`prctl ${option}`, load().prctl(option, a2, a3, a4, a5));
}

/** mkfifo(3). */
export function mkfifo(p: string, mode: number): void {
  check(`mkfifo ${p}`, load().mkfifo(p, mode));
}

/** Set a terminal's window size (TIOCSWINSZ); the container's foreground process group gets SIGWINCH. */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  check('set the terminal window size', load().setWinsize(fd, rows, cols));
}

/** pidfd_open(2). */
export function pidfdOpen(pid: number): number {
  return check(`pidfd_open ${pid}`, load().pidfdOpen(pid, 0));
}

/** pidfd_send_signal(2): signals exactly the process the pidfd names, never a reused pid. */
export function pidfdSendSignal(pidfd: number, sig: number, what: string): void {
  check(what, load().pidfdSendSignal(pidfd, sig));
}

/** Send one fd with SCM_RIGHTS and a short name as the data (console socket protocol). */
export function sendFd(sock: number, fd: number, name: string): void {
  check('send fd', load().sendFd(sock, fd, name));
}

/** Receive one fd sent with SCM_RIGHTS; returns the fd and the name sent with it. */
export function recvFd(sock: number): { fd: number; name: string } {
  const buf = Buffer.alloc(4096);
  const fd = check('receive fd', load().recvFd(sock, buf, buf.length));
  const end = buf.indexOf(0);
  return { fd, name: buf.subarray(0, end < 0 ? buf.length : end).toString('utf8') };
}

/** A detached, idmapped clone of the mount tree at source (see tsrun_idmapped_tree); returns its fd. */
export function idmappedTree(source: string, uidMap: string, gidMap: string, recursive: boolean, attrSet: bigint, attrClr: bigint): number {
  const err = Buffer.alloc(512);
  const rc = load().idmappedTree(source, uidMap, gidMap, recursive ? 1 : 0, attrSet, attrClr, err, err.length);
  if (rc >= 0) return rc;
  const name = errnoName(-rc);
  const what = err.subarray(0, Math.max(0, err.indexOf(0))).toString('utf8') || `idmap the mount of ${source}`;
  throw new TsrunError(codeForErrno(name), `${what}: ${describeErrno(name)}`, { errno: name });
}

/** A connected unix stream socket to path (for the seccomp agent's listenerPath). */
export function unixConnect(p: string): number {
  return check(`connect to ${p}`, load().unixConnect(p));
}
