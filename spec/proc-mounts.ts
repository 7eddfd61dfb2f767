/*
 * Which mount destinations inside /proc a container may have: runc's checkProcMount rules
 * (libcontainer/rootfs_linux.go). A mount over /proc/sys, /proc/sysrq-trigger or
 * /proc/self/attr would undo the masked and read-only paths that keep the container away from
 * the host kernel's knobs, so nothing may be mounted inside /proc except the files lxcfs-style
 * tools emulate; /proc itself takes only a procfs.
 *
 * This is the check on the literal path. The C helper (native-helpers/mounts.c) repeats it on
 * the path the destination really resolves to inside the rootfs, where symlinks are followed.
 */
import * as path from 'node:path';
import { quote } from './describe';

/** Destinations inside /proc that may be mounted over (lxcfs emulates these); same list in mounts.c. */
export const PROC_SAFE_MOUNTS: readonly string[] = [
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/proc/loadavg',
  '/proc/slabinfo',
  '/proc/net/dev',
  '/proc/sys/kernel/ns_last_pid',
  '/proc/sys/crypto/fips_enabled',
];

/**
 * Why a mount of `kind` ("proc", "bind", or another filesystem type) cannot go at `destination`,
 * or undefined. A relative destination is taken relative to "/" (config.md). A bind onto /proc
 * itself passes here: only the C helper can tell whether its source is a procfs.
 */
export function procMountProblem(destination: string, kind: string): string | undefined {
  const dest = path.posix.normalize(path.posix.join('/', destination)).replace(/(.)\/+$/, '$1');
  if (dest === '/proc') {
    if (kind === 'proc' || kind === 'bind') return undefined;
    return `${quote(dest)} cannot be mounted because it is not of type proc`;
  }
  if (!dest.startsWith('/proc/')) return undefined;
  if (PROC_SAFE_MOUNTS.includes(dest)) return undefined;
  return `${quote(dest)} cannot be mounted because it is inside /proc`;
}
