/*
 * Where a container's cgroup lives, following runc's cgroupfs driver:
 *
 *   linux.cgroupsPath   "/docker/abc"  → /docker/abc in every hierarchy
 *                       "pods/abc"     → <this process's cgroup>/pods/abc, per hierarchy
 *                       absent or ""   → <this process's cgroup>/<container id>
 *   --systemd-cgroup    "slice:prefix:name" → /<expanded slice>/<prefix>-<name>.scope
 *
 * "This process's cgroup" differs between v1 hierarchies (the runtime may sit in
 * /user.slice for memory and / for cpu), so the path is kept relative until it is placed
 * in a hierarchy with `dirInHierarchy`. A path whose ".." would climb above the root it is
 * resolved against is refused rather than cleaned, so a config can never name a cgroup
 * outside the tree it was given.
 */
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import type { CgroupMount } from './detect';

function refuse(value: string, why: string): TsrunError {
  return new TsrunError('InvalidArgument', `linux.cgroupsPath ${JSON.stringify(value)}: ${why}`);
}

/** Split a path into clean components, refusing ".." that would climb above its start. */
function components(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw refuse(value, 'escapes the cgroup hierarchy root');
      out.pop();
    } else out.push(part);
  }
  return out;
}

/**
 * The container's cgroup path for the cgroupfs driver: absolute ("/a/b") or relative to this
 * process's own cgroup ("a/b"); the container id when `linux.cgroupsPath` is absent.
 */
export function cgroupPathOf(cgroupsPath: string | undefined, id: string): string {
  const value = cgroupsPath === undefined || cgroupsPath === '' ? id : cgroupsPath;
  if (value.includes('\0')) throw refuse(value, 'contains a NUL byte');
  const parts = components(value);
  if (parts.length === 0) throw refuse(value, 'names the hierarchy root; a container needs a cgroup of its own');
  return value.startsWith('/') ? `/${parts.join('/')}` : parts.join('/');
}

/** The host directory of cgroup path `cgPath` (from `cgroupPathOf`) in one mounted hierarchy. */
export function dirInHierarchy(mount: CgroupMount, cgPath: string): string {
  const full = cgPath.startsWith('/') ? cgPath : path.posix.join(mount.own, cgPath);
  // Inside a container the mount shows only a sub-tree (mountinfo root /docker/x) while
  // /proc/self/cgroup still names full paths: strip the part the mount does not show.
  let shown = full;
  if (mount.root !== '/') {
    const rel = path.posix.relative(mount.root, full);
    if (rel === '' || (!rel.startsWith('..') && !path.posix.isAbsolute(rel))) shown = `/${rel}`;
  }
  const dir = path.posix.join(mount.mountpoint, shown);
  const rel = path.posix.relative(mount.mountpoint, dir);
  if (rel === '' || rel.startsWith('..')) throw refuse(cgPath, `resolves to ${dir}, outside the hierarchy at ${mount.mountpoint}`);
  return dir;
}

/**
 * Expand a systemd slice name into its path: "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice",
 * "-.slice" → "/" (systemd.slice(5): dashes build the hierarchy).
 */
export function expandSlice(slice: string): string {
  const bad = (why: string): TsrunError => new TsrunError('InvalidArgument', `systemd slice ${JSON.stringify(slice)}: ${why}`);
  if (!slice.endsWith('.slice')) throw bad('must end in ".slice"');
  if (slice.includes('/')) throw bad('must not contain "/"');
  if (slice === '-.slice') return '/';
  const name = slice.slice(0, -'.slice'.length);
  if (name === '' || name.startsWith('-') || name.endsWith('-') || name.includes('--')) throw bad('dashes must separate non-empty names');
  let prefix = '';
  let out = '';
  for (const part of name.split('-')) {
    prefix = prefix === '' ? part : `${prefix}-${part}`;
    out += `/${prefix}.slice`;
  }
  return out;
}

/**
 * The cgroup path of the systemd unit named by a "slice:prefix:name" cgroupsPath
 * (--systemd-cgroup), e.g. "system.slice:docker:abc" → "/system.slice/docker-abc.scope".
 * An empty slice means system.slice; an absent path means "system.slice:tsrun:<id>". A name
 * ending in ".slice" names a slice unit rather than a scope. Throws when systemd is not
 * running, because only systemd may create units in its tree.
 */
export function systemdCgroupPath(cgroupsPath: string | undefined, id: string, hasSystemd: boolean): string {
  if (!hasSystemd) {
    throw new TsrunError('FailedPrecondition', 'systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host (no /run/systemd/system)');
  }
  const value = cgroupsPath === undefined || cgroupsPath === '' ? `system.slice:tsrun:${id}` : cgroupsPath;
  const parts = value.split(':');
  if (parts.length !== 3) throw refuse(value, 'want "slice:prefix:name" with the systemd cgroup driver');
  const [slice, prefix, name] = parts as [string, string, string];
  if (name === '') throw refuse(value, 'the unit name is empty');
  for (const p of [prefix, name]) if (p.includes('/')) throw refuse(value, `${JSON.stringify(p)} must not contain "/"`);
  const parent = expandSlice(slice === '' ? 'system.slice' : slice);
  const unit = name.endsWith('.slice') ? name : prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`;
  return path.posix.join(parent, unit);
}
