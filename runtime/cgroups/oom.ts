/*
 * OOM kills of a cgroup. The kernel counts them per memory cgroup as "oom_kill N": in
 * memory.oom_control on v1 (Linux 4.13+) and in memory.events on v2. `tsrun events` and the Node
 * shim poll that counter and report an OOM when it grows; the native shim reads the same counter
 * when an eventfd (v1) or inotify (v2) says it may have changed (shim/native/shim.c, OOM_WATCH),
 * in the directory tsrund finds with memoryCgroupDirs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCgroupMounts, parseProcCgroup } from '../host/probe';

const OOM_FILES = ['memory.oom_control', 'memory.events'] as const;

/** The OOM-kill count of the first of `dirs` that has one; undefined when none does (no memory controller). */
export function oomKillCount(dirs: Iterable<string>): number | undefined {
  for (const dir of dirs) {
    for (const file of OOM_FILES) {
      let text: string;
      try {
        text = fs.readFileSync(path.join(dir, file), 'utf8');
      } catch {
        continue; // not this hierarchy, or the cgroup is gone
      }
      const m = /^oom_kill (\d+)$/m.exec(text);
      if (m) return Number(m[1]);
    }
  }
  return undefined;
}

/**
 * The directories of a process's cgroups where a memory controller can count OOM kills: its v1
 * `memory` hierarchy, then its v2 cgroup. From /proc/<pid>/cgroup and a mountinfo's text.
 */
export function memoryCgroupDirs(procCgroup: string, mountinfo: string): string[] {
  const paths = parseProcCgroup(procCgroup);
  const out: string[] = [];
  const under = (mountpoint: string, root: string, p: string): string | undefined => {
    // A mount of a subtree (root other than /) shows only paths below it.
    const rel = root === '/' ? p : p === root ? '/' : p.startsWith(`${root}/`) ? p.slice(root.length) : undefined;
    return rel === undefined ? undefined : path.join(mountpoint, rel);
  };
  const hierarchies = parseCgroupMounts(mountinfo);
  for (const h of hierarchies) {
    if (h.version !== 1 || !h.controllers.includes('memory')) continue;
    const key = Object.keys(paths).find((k) => k.split(',').includes('memory'));
    const dir = key === undefined ? undefined : under(h.mountpoint, h.root, paths[key]!);
    if (dir !== undefined) out.push(dir);
    break;
  }
  const v2 = hierarchies.find((h) => h.version === 2);
  const v2path = paths['0'];
  if (v2 !== undefined && v2path !== undefined) {
    const dir = under(v2.mountpoint, v2.root, v2path);
    if (dir !== undefined) out.push(dir);
  }
  return out;
}
