/*
 * SO_PEERCRED for accepted unix-socket connections. Node has no API for it and grpc-js does not
 * expose its sockets, so tsrund accepts connections on its own net.Server, asks the kernel who
 * connected (getsockopt(2) through koffi on libc), and only then hands the socket to grpc-js
 * (Server.createConnectionInjector). `struct ucred` is {pid_t pid; uid_t uid; gid_t gid} (unix(7)).
 *
 * koffi here rather than runtime/native: runtime/native binds only the tsrun.node addon, and
 * importing it here would break the rule that only runtime/container uses it.
 */
import type * as net from 'node:net';

/** Who is on the other end of a unix socket. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: number[]) => number;

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
let getsockopt: GetSockOpt | undefined;

function bind(): GetSockOpt {
  if (getsockopt !== undefined) return getsockopt;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as { load(p: string): { func(sig: string): GetSockOpt } };
  const libc = koffi.load('libc.so.6');
  getsockopt = libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *buf, _Inout_ uint32_t *len)');
  return getsockopt;
}

/** The file descriptor under a net.Socket accepted from a unix-socket server, if it has one. */
export function socketFd(socket: net.Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
}

/** The peer's pid, uid and gid, or undefined when the kernel will not say. */
export function peerCredentials(socket: net.Socket): PeerCredentials | undefined {
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  const buf = Buffer.alloc(12);
  const len = [12];
  if (bind()(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0) return undefined;
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}
