/*
 * sun_path holds 107 bytes. A shim directory under a deep state root with a 64-hex container id
 * (/run/tsrund/shims/<ns>/<id>/shim.sock) is right at that limit, and bind(2) on a longer name
 * would fail or, through Node, silently truncate it. Longer paths are reached through an open fd
 * of their directory: /proc/self/fd/<dirfd>/<name> is short, and the kernel resolves it to the
 * same directory entry.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The longest socket path bind(2)/connect(2) take (sizeof sun_path - 1). */
export const MAX_SOCKET_PATH = 107;

/**
 * Run `fn` with a path naming the socket `p` that fits in sun_path; the directory fd it may open
 * stays open until the returned promise settles.
 */
export async function withSocketPath<T>(p: string, fn: (usable: string) => Promise<T>): Promise<T> {
  if (Buffer.byteLength(p) <= MAX_SOCKET_PATH) return fn(p);
  const dirfd = fs.openSync(path.dirname(p), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    return await fn(`/proc/self/fd/${dirfd}/${path.basename(p)}`);
  } finally {
    fs.closeSync(dirfd);
  }
}
