/*
 * Host facts the plan builder needs, read once per invocation. `buildPlan` takes them as a plain
 * value so its tests never read the machine.
 */
import { existsSync, readFileSync } from 'node:fs';

/** How cgroups are mounted on this host. */
export type CgroupMode = 'unified' | 'legacy' | 'hybrid' | 'none';

/** One cgroup hierarchy mounted on the host. */
export interface CgroupHierarchy {
  /** Mount point, e.g. /sys/fs/cgroup/memory or /sys/fs/cgroup/unified. */
  readonly mountpoint: string;
  /** Root of the hierarchy visible at the mount point (mountinfo field 4), usually "/". */
  readonly root: string;
  /** 'cgroup2' or the v1 controllers / name= of this hierarchy. */
  readonly version: 1 | 2;
  readonly controllers: readonly string[];
}

/** What the plan builder needs to know about the machine. */
export interface HostFacts {
  readonly cgroupMode: CgroupMode;
  readonly cgroupHierarchies: readonly CgroupHierarchy[];
  /** /proc/kcore exists (runc adds a /dev/core symlink to it). */
  readonly hasKcore: boolean;
  /** Highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap). */
  readonly capLastCap: number;
  /** systemd runs as init (needed for --systemd-cgroup). */
  readonly hasSystemd: boolean;
}

/** Parse /proc/self/mountinfo text into the cgroup hierarchies it mounts. */
export function parseCgroupMounts(mountinfo: string): CgroupHierarchy[] {
  const out: CgroupHierarchy[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fstype = right[0];
    const mountpoint = unescapeMountinfo(left[4] ?? '');
    const root = unescapeMountinfo(left[3] ?? '/');
    if (fstype === 'cgroup2') out.push({ mountpoint, root, version: 2, controllers: [] });
    else if (fstype === 'cgroup') {
      const opts = (right[2] ?? '').split(',');
      const known = new Set(['rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec', 'clone_children', 'xattr', 'cpuset_v2_mode', 'noprefix']);
      const controllers = opts.filter((o) => !known.has(o) && !o.startsWith('release_agent='));
      out.push({ mountpoint, root, version: 1, controllers });
    }
  }
  return out;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse /proc/<pid>/cgroup into hierarchy key → path. */
export function parseProcCgroup(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    out[m[2] === '' ? '0' : m[2]!] = m[3]!;
  }
  return out;
}

/** Decide the cgroup mode from the hierarchies mounted. */
export function cgroupModeOf(h: readonly CgroupHierarchy[]): CgroupMode {
  const v1 = h.some((x) => x.version === 1 && x.controllers.some((c) => !c.startsWith('name=')));
  const v2 = h.some((x) => x.version === 2);
  if (v1 && v2) return 'hybrid';
  if (v1) return 'legacy';
  if (v2) return 'unified';
  return 'none';
}

function readOr(p: string, fallback: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
}

/** Read the host facts from /proc and /sys. */
export function probeHost(): HostFacts {
  const hierarchies = parseCgroupMounts(readOr('/proc/self/mountinfo', ''));
  const capLast = parseInt(readOr('/proc/sys/kernel/cap_last_cap', '40'), 10);
  return {
    cgroupMode: cgroupModeOf(hierarchies),
    cgroupHierarchies: hierarchies,
    hasKcore: existsSync('/proc/kcore'),
    capLastCap: Number.isFinite(capLast) ? capLast : 40,
    hasSystemd: existsSync('/run/systemd/system'),
  };
}
