/*
 * Which cgroup hierarchies the host mounts and where this process sits in each, read once per
 * invocation. The parsing reuses runtime/host/probe.ts; this file only narrows the result to the
 * hierarchies under one root and turns it into the map the drivers need:
 *
 *   legacy    /sys/fs/cgroup/{cpu,memory,…,systemd}           v1 only
 *   hybrid    the same, plus cgroup2 at /sys/fs/cgroup/unified  (no controllers there: only the
 *             core files cgroup.procs, cgroup.freeze, cgroup.kill, cgroup.events and device eBPF)
 *   unified   cgroup2 at /sys/fs/cgroup itself
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { cgroupModeOf, parseCgroupMounts, parseProcCgroup, type CgroupHierarchy } from '../host/probe';

/** The three ways a host can mount cgroups (probe.ts's 'none' is an error here). */
export type CgroupDriverMode = 'unified' | 'legacy' | 'hybrid';

/** One mounted hierarchy as the drivers use it. */
export interface CgroupMount {
  /** Where it is mounted, e.g. /sys/fs/cgroup/memory. */
  readonly mountpoint: string;
  /** The cgroup visible at the mount point (mountinfo field 4), "/" unless in a container. */
  readonly root: string;
  /** This process's cgroup in the hierarchy (/proc/self/cgroup), the base of relative paths. */
  readonly own: string;
}

/** Every hierarchy a driver may touch. */
export interface CgroupHierarchies {
  /** v1 controller ("memory", "cpu", "name=systemd", …) → its hierarchy; co-mounted ones share it. */
  readonly v1: Readonly<Record<string, CgroupMount>>;
  /** The cgroup2 mount: the whole tree when unified, /sys/fs/cgroup/unified when hybrid. */
  readonly v2: CgroupMount | undefined;
}

/** What `detectCgroupMode` finds. */
export interface CgroupLayout {
  readonly mode: CgroupDriverMode;
  readonly hierarchies: CgroupHierarchies;
}

function isUnder(p: string, root: string): boolean {
  const rel = path.posix.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.posix.isAbsolute(rel));
}

/**
 * Build the layout from /proc/self/mountinfo and /proc/self/cgroup text, keeping only the
 * hierarchies mounted at or below `root`. Pure, so tests feed it made-up mount tables.
 */
export function cgroupLayoutOf(mountinfo: string, selfCgroup: string, root = '/sys/fs/cgroup'): CgroupLayout {
  const mounts = parseCgroupMounts(mountinfo).filter((h) => isUnder(h.mountpoint, root));
  const mode = cgroupModeOf(mounts);
  if (mode === 'none') {
    throw new TsrunError('Unavailable', `detect cgroup mode: no cgroup filesystem is mounted under ${root}`);
  }
  const self = parseProcCgroup(selfCgroup);
  const ownIn = (h: CgroupHierarchy): string => {
    if (h.version === 2) return self['0'] ?? '/';
    const want = [...h.controllers].sort().join(',');
    for (const [key, p] of Object.entries(self)) {
      if (key !== '0' && key.split(',').sort().join(',') === want) return p;
    }
    return '/';
  };
  const v1: Record<string, CgroupMount> = {};
  let v2: CgroupMount | undefined;
  for (const h of mounts) {
    const m: CgroupMount = { mountpoint: h.mountpoint, root: h.root, own: ownIn(h) };
    if (h.version === 2) {
      // A second cgroup2 mount (a bind of a sub-tree, say) is not the hierarchy's main view.
      if (v2 === undefined || h.mountpoint.length < v2.mountpoint.length) v2 = m;
      continue;
    }
    for (const c of h.controllers) if (v1[c] === undefined) v1[c] = m;
  }
  return { mode, hierarchies: { v1, v2 } };
}

/** Read this host's cgroup layout (once per invocation): mode plus every hierarchy under `root`. */
export function detectCgroupMode(root = '/sys/fs/cgroup', mountinfoText?: string, selfCgroupText?: string): CgroupLayout {
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return cgroupLayoutOf(mountinfoText ?? read('/proc/self/mountinfo'), selfCgroupText ?? read('/proc/self/cgroup'), root);
}

/**
 * The conventional layout under a directory, for a driver given only a root (a temp tree in
 * tests): unified → `root` itself; legacy/hybrid → one v1 hierarchy per sub-directory named
 * after its controller ("systemd" is name=systemd), and `root/unified` as cgroup2 when hybrid.
 * This process is taken to sit in the root cgroup of each.
 */
export function hierarchiesUnder(root: string, mode: CgroupDriverMode): CgroupHierarchies {
  const at = (mountpoint: string): CgroupMount => ({ mountpoint, root: '/', own: '/' });
  if (mode === 'unified') return { v1: {}, v2: at(root) };
  const v1: Record<string, CgroupMount> = {};
  let names: string[] = [];
  try {
    names = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (err) {
    throw wrapSystemError(`list cgroup hierarchies in ${root}`, err);
  }
  for (const name of names.sort()) {
    if (name === 'unified') continue;
    const m = at(path.join(root, name));
    // "cpu,cpuacct" style directories hold co-mounted controllers.
    for (const c of name.split(',')) v1[c === 'systemd' ? 'name=systemd' : c] = m;
  }
  return { v1, v2: mode === 'hybrid' && names.includes('unified') ? at(path.join(root, 'unified')) : undefined };
}
