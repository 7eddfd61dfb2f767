/**
 * Capability gates for integration tests. A missing capability makes the test skip with a
 * reason (a plan of 0 with a comment); it never fails and never silently passes.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { runcPath, runtimeName, runtimePath } from './runtime';

/** Something a test may need from the host. */
export type Feature =
  /** uid 0 with CAP_SYS_ADMIN in the initial user namespace's sense of it */
  | 'root'
  /** a runc binary to compare against */
  | 'runc'
  /** the runtime under test is not runc (for comparisons) */
  | 'not-runc'
  /** a statically linked busybox to populate rootfs */
  | 'busybox'
  /** unprivileged user namespaces can be created */
  | 'userns'
  /** /sys/fs/cgroup is a cgroup v2 unified hierarchy */
  | 'cgroup2'
  /** /sys/fs/cgroup holds v1 hierarchies (legacy or hybrid) */
  | 'cgroup1'
  /** a C compiler that can link statically (for test/probe) */
  | 'cc';

/** Path of the busybox used for rootfs (`$BUSYBOX`, default /bin/busybox). */
export const busyboxPath: string = process.env['BUSYBOX'] ?? '/bin/busybox';

const CAP_SYS_ADMIN = 21n;
const CGROUP2_SUPER_MAGIC = 0x63677270;

function hasCapSysAdmin(): boolean {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return m?.[1] !== undefined && ((BigInt(`0x${m[1]}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** True if `file` is a 64-bit ELF without a PT_INTERP program header (i.e. static). */
function isStaticElf(file: string): boolean {
  try {
    const buf = fs.readFileSync(file);
    if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false;
    const phoff = Number(buf.readBigUInt64LE(0x20));
    const phentsize = buf.readUInt16LE(0x36);
    const phnum = buf.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) {
      if (buf.readUInt32LE(phoff + i * phentsize) === 3) return false;
    }
    return true;
  } catch {
    return false;
  }
}

function check(feature: Feature): string | undefined {
  switch (feature) {
    case 'root':
      return process.getuid?.() === 0 && hasCapSysAdmin() ? undefined : 'needs root with CAP_SYS_ADMIN';
    case 'runc':
      return runcPath !== undefined ? undefined : 'runc is not installed';
    case 'not-runc':
      return runtimeName !== 'runc' && runtimePath !== runcPath
        ? undefined
        : 'the runtime under test is runc itself; nothing to compare';
    case 'busybox':
      return isStaticElf(busyboxPath) ? undefined : `needs a static busybox at ${busyboxPath} (apt install busybox-static)`;
    case 'userns': {
      try {
        const max = Number(fs.readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim());
        if (max <= 0) return 'user namespaces are disabled (user.max_user_namespaces=0)';
      } catch {
        return 'kernel without user namespaces';
      }
      const r = spawnSync('unshare', ['--user', '--map-root-user', 'true'], { stdio: 'ignore' });
      return r.status === 0 ? undefined : 'cannot create a user namespace here';
    }
    case 'cgroup2':
      try {
        return fs.statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC
          ? undefined
          : 'needs cgroup v2 unified mode (/sys/fs/cgroup is not cgroup2)';
      } catch {
        return 'no /sys/fs/cgroup';
      }
    case 'cgroup1':
      try {
        return fs.statfsSync('/sys/fs/cgroup').type !== CGROUP2_SUPER_MAGIC && fs.existsSync('/sys/fs/cgroup/pids')
          ? undefined
          : 'needs cgroup v1 hierarchies under /sys/fs/cgroup';
      } catch {
        return 'no /sys/fs/cgroup';
      }
    case 'cc': {
      const r = spawnSync('cc', ['--version'], { stdio: 'ignore' });
      return r.status === 0 ? undefined : 'needs a C compiler (cc)';
    }
    default: {
      const never: never = feature;
      return `unknown feature ${String(never)}`;
    }
  }
}

const cache = new Map<Feature, string | undefined>();

/** The reason the first missing feature is missing, or false when all are present. */
export function missing(...features: Feature[]): string | false {
  for (const f of features) {
    if (!cache.has(f)) cache.set(f, check(f));
    const reason = cache.get(f);
    if (reason !== undefined) return reason;
  }
  return false;
}

/** What `requires` needs from a tap test. */
export interface Plannable {
  plan(n: number, comment?: string): void;
}

/**
 * Skip the test (plan 0 with the reason) unless every feature is present.
 * Use as `if (!requires(t, 'root', 'busybox')) return;`.
 */
export function requires(t: Plannable, ...features: Feature[]): boolean {
  const reason = missing(...features);
  if (reason === false) return true;
  t.plan(0, reason);
  return false;
}
