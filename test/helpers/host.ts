/**
 * Host-side observations the tests and the teardown rely on: mounts (from mountinfo),
 * processes (from /proc), namespaces and cgroup directories. Read-only except for the
 * explicit `killPids` and `unmountAll` used to clean up after a faulty runtime.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One line of /proc/<pid>/mountinfo (see proc(5)). */
export interface MountInfo {
  id: number;
  parent: number;
  /** Root of the mount within its filesystem (field 4). */
  root: string;
  /** Mount point relative to the reader's root (field 5). */
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** Parse mountinfo text. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [pre, post] = line.split(' - ');
    if (pre === undefined || post === undefined) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      root: unescape(f[3] ?? ''),
      mountPoint: unescape(f[4] ?? ''),
      options: (f[5] ?? '').split(','),
      fsType: g[0] ?? '',
      source: unescape(g[1] ?? ''),
      superOptions: (g[2] ?? '').split(','),
    });
  }
  return out;
}

/** True if `p` is `dir` or inside it. */
export function isUnder(p: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return p === d || p.startsWith(`${d}/`);
}

/** Mount points in our mount namespace at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const mounts = parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  return mounts
    .map((m) => m.mountPoint)
    .filter((mp) => isUnder(mp, dir))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmount everything at or below `dir`; returns what could not be unmounted. */
export function unmountAll(dir: string): string[] {
  for (let round = 0; round < 5; round++) {
    const mps = mountsUnder(dir);
    if (mps.length === 0) return [];
    for (const mp of mps) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  }
  return mountsUnder(dir);
}

/** Numeric pids currently in /proc. */
export function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

function readlinkOrEmpty(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
}

/** The command line of `pid` with NULs as spaces, or '' when gone. */
export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** The one-letter state of `pid` (R, S, Z, …), or undefined when gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** True if `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
}

/** The parent pid of `pid`, or undefined. */
export function ppidOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Live children of `pid`. */
export function childrenOf(pid: number): number[] {
  return allPids().filter((p) => ppidOf(p) === pid && isAlive(p));
}

/**
 * Processes that belong to a bundle: their root directory (as a dentry, compared by device
 * and inode, because readlink shows "/" once they pivot_root) is `rootfs`, or their cwd or
 * command line mentions `sandbox` (hooks, a stuck `runc init` before pivot_root).
 */
export function pidsOfBundle(rootfs: string, sandbox: string): number[] {
  const target = statOrUndefined(rootfs);
  const out: number[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid || !isAlive(pid)) continue;
    const root = statOrUndefined(`/proc/${pid}/root`);
    const rootMatches = target !== undefined && root !== undefined && root.dev === target.dev && root.ino === target.ino;
    if (rootMatches || isUnder(readlinkOrEmpty(`/proc/${pid}/cwd`), sandbox) || cmdline(pid).includes(sandbox)) {
      out.push(pid);
    }
  }
  return out;
}

/** SIGKILL every pid in the list, ignoring ones already gone. */
export function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** `mnt:[4026531832]`-style identity of a namespace of `pid` ('self' for us). */
export function nsId(pid: number | 'self', kind: 'mnt' | 'uts' | 'pid' | 'net' | 'ipc' | 'user' | 'cgroup'): string {
  return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
}

/**
 * Directories where a runtime with no `linux.cgroupsPath` may have made the cgroup of
 * container `id`: `<hierarchy>/<our cgroup>/<id>` and `<hierarchy>/<id>` for every mounted
 * hierarchy (runc uses the caller's cgroup as the parent). Only existing ones are returned.
 */
export function cgroupDirsFor(id: string): string[] {
  // Only plausible ids: an empty id, "." / ".." or a slash would name a parent cgroup, and
  // the teardown removes what this returns.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(id) || id === '.' || id === '..') return [];
  const base = '/sys/fs/cgroup';
  let hierarchies: string[];
  try {
    hierarchies = fs.readdirSync(base).filter((d) => statOrUndefined(path.join(base, d))?.isDirectory() === true);
  } catch {
    return [];
  }
  const own = new Set<string>(['/']);
  try {
    for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const p = line.split(':')[2];
      if (p !== undefined && p !== '') own.add(p);
    }
  } catch {
    // no cgroup info; only top-level candidates
  }
  const found = new Set<string>();
  for (const parent of own) {
    for (const h of hierarchies) {
      const candidate = path.join(base, h, parent, id);
      if (path.basename(candidate) === id && statOrUndefined(candidate)?.isDirectory() === true) found.add(candidate);
    }
  }
  return [...found];
}

/** Remove a container's cgroup directory tree bottom-up (cgroupfs only allows rmdir of empty groups). */
export function removeCgroupTree(dir: string): void {
  // Never below a hierarchy root: <mount>/<hierarchy>/<at least one more component>.
  const rel = path.relative('/sys/fs/cgroup', dir);
  if (rel.startsWith('..') || path.isAbsolute(rel) || rel.split('/').length < 2) return;
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    // still populated or already gone
  }
}

/** Path of the first executable `name` on $PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
