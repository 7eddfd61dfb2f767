/*
 * The only module that touches the C helper (native-helpers/). It loads build/tsrun.node, the
 * helper as a Node-API addon (native-helpers/addon.c), with process.dlopen on first use, so
 * commands that never reach the helper (state, list) do not load it, and turns the helper's
 * "-errno" convention into TsrunErrors. The addon's functions are generated from exports.ts
 * (NativeLib, native-lib.ts); the wrappers below give them TS types and messages.
 */
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { TsrunError, codeForErrno, describeErrno } from '../../spec/errors';
import { MSG_HEADER_BYTES, SYNC_MAX_BYTES } from '../plan/ops';
import { NATIVE_ABI } from './exports';
import { NATIVE_LIB_FUNCTIONS, type NativeLib } from './native-lib';

export { NATIVE_ABI } from './exports';
export type { NativeLib } from './native-lib';

let lib: NativeLib | undefined;

/** Where build/tsrun.node lives: $TSRUN_ADDON, or build/ next to the bundle's bin/ directory. */
export function addonPath(): string {
  const fromEnv = process.env['TSRUN_ADDON'];
  if (fromEnv) return fromEnv;
  const main = require.main?.filename ?? process.argv[1] ?? __filename;
  const candidates = [
    path.resolve(path.dirname(main), '..', 'build', 'tsrun.node'),
    path.resolve(__dirname, '..', '..', 'build', 'tsrun.node'),
    path.resolve(process.cwd(), 'build', 'tsrun.node'),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/**
 * Load the addon at `where` and check it is the one this code was generated with: every function
 * of NativeLib, and the same ABI version. Throws Unavailable (missing, not loadable) or
 * FailedPrecondition (another build), saying which.
 */
export function loadAddon(where: string): NativeLib {
  const m = { exports: {} as Record<string, unknown> };
  try {
    // process.dlopen, not require: the CLI's bundle runs from a startup snapshot without a module loader.
    process.dlopen(m, where, osConstants.dlopen.RTLD_NOW);
  } catch (err) {
    const why = existsSync(where) ? (err as Error).message : 'no such file';
    throw new TsrunError('Unavailable', `load native helper ${where}: ${why} (run 'make build')`, { cause: err });
  }
  const missing = NATIVE_LIB_FUNCTIONS.filter((n) => typeof m.exports[n] !== 'function');
  const l = m.exports as unknown as NativeLib;
  const abi = missing.includes('abiVersion') ? undefined : l.abiVersion();
  if (missing.length > 0 || abi !== NATIVE_ABI) {
    const what = missing.length > 0 ? `lacks ${missing.join(', ')}` : `has ABI version 0x${(abi ?? 0).toString(16)}, this tsrun needs 0x${NATIVE_ABI.toString(16)}`;
    throw new TsrunError('FailedPrecondition', `native helper ${where} ${what}: it is from another build (run 'make build')`);
  }
  return l;
}

/** The helper, loaded on first use. */
export function load(): NativeLib {
  lib ??= loadAddon(addonPath());
  return lib;
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
  return syncMessage(load().syncRecv(fd, timeoutMs, buf, buf.length, rfd), timeoutMs, buf, rfd);
}

/**
 * syncRecv on a libuv pool thread, so the caller's event loop goes on while the child works (the
 * native shim's create in tsrund). Waits in slices of at most `sliceMs` so a long wait does not
 * hold a pool thread that file-system calls need.
 */
export async function syncRecvAsync(fd: number, timeoutMs: number, sliceMs = 200): Promise<SyncMessage | null> {
  const r = await recvRawAsync(fd, timeoutMs, sliceMs);
  return syncMessage(r.n, timeoutMs, r.buf, r.rfd);
}

/**
 * One message of at least 16 bytes and the fd sent with it, from any unix socket (a stream too:
 * the native shim's answer to SPAWN_PLAN), on a pool thread. null when the peer is gone; throws
 * Unavailable on timeout.
 */
export async function recvWithFdAsync(fd: number, timeoutMs: number, sliceMs = 200): Promise<{ data: Buffer; fd: number } | null> {
  const r = await recvRawAsync(fd, timeoutMs, sliceMs);
  if (r.n === 0) return null;
  if (r.n === -osConstants.errno.ETIMEDOUT) throw new TsrunError('Unavailable', `no answer within ${timeoutMs} ms`, { errno: 'ETIMEDOUT' });
  check('receive a message with an fd', r.n);
  return { data: Buffer.from(r.buf.subarray(0, r.n)), fd: r.rfd[0]! };
}

async function recvRawAsync(fd: number, timeoutMs: number, sliceMs: number): Promise<{ n: number; buf: Buffer; rfd: Int32Array }> {
  const l = load();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const buf = Buffer.alloc(SYNC_MAX_BYTES + MSG_HEADER_BYTES);
    const rfd = new Int32Array(1);
    const slice = Math.max(0, Math.min(sliceMs, deadline - Date.now()));
    const n = await new Promise<number>((resolve, reject) => l.syncRecvAsync(fd, slice, buf, buf.length, rfd, (err, rc) => (err ? reject(err) : resolve(rc))));
    if (n !== -osConstants.errno.ETIMEDOUT || Date.now() >= deadline) return { n, buf, rfd };
  }
}

function syncMessage(n: number, timeoutMs: number, buf: Buffer, rfd: Int32Array): SyncMessage | null {
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

/** Send data and fds (at most 16) in one sendmsg with SCM_RIGHTS; returns the bytes sent. */
export function sendFds(sock: number, data: Buffer, fds: readonly number[]): number {
  const f = Int32Array.from(fds);
  return check('send fds', load().sendFds(sock, data, data.length, new Uint8Array(f.buffer), f.byteLength));
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
    l.waitpidAsync(pid, status, 0, (err, rc) => {
      if (err) reject(err);
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

/**
 * Start `path` as a daemon (argv [argv0, arg], a new session, 0-2 on /dev/null) without fork()ing
 * this process: posix_spawn's vfork copies none of Node's page tables. fd 3 of the child is the
 * write end of a pipe whose read end (close-on-exec) is returned; the caller reaps the pid. The
 * call runs on a libuv pool thread: the vfork suspends the calling thread until the child has
 * exec'd, and that wait is better spent there than on the event loop.
 */
export function spawnDetachedAsync(path: string, argv0: string, arg: string): Promise<{ pid: number; readyFd: number }> {
  const l = load();
  const out = new Int32Array(2);
  return new Promise((resolve, reject) => {
    l.spawnDetachedAsync(path, argv0, arg, out, (err, rc) => {
      if (err) reject(err);
      else {
        try {
          check(`spawn ${path}`, rc);
          resolve({ pid: out[0]!, readyFd: out[1]! });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    });
  });
}

/** A connected unix stream socket to path (for the seccomp agent's listenerPath). */
export function unixConnect(p: string): number {
  return check(`connect to ${p}`, load().unixConnect(p));
}
