/*
 * OOM events of one container: the shim reads the OOM-kill count of init's memory cgroup
 * (runtime/cgroups/oom.ts) every OOM_POLL_MS while init runs, and once more when init exits,
 * before that exit is reported; each growth is one "oom" event (tsrund: containerd's /tasks/oom).
 * The cgroup is found from /proc/<init>/cgroup, so any runtime's containers are watched alike.
 */
import * as fs from 'node:fs';
import { memoryCgroupDirs, oomKillCount } from '../runtime/cgroups/oom';

/** How often a running container's OOM-kill count is read. */
export const OOM_POLL_MS = 1000;

/** A running watch. */
export interface OomWatch {
  /** read the count now (calls onOom when it grew) */
  poll(): void;
  stop(): void;
}

/** Watch the memory cgroup of `pid`; undefined when it has none that counts OOM kills. */
export function watchOom(pid: number, onOom: () => void, intervalMs = OOM_POLL_MS): OomWatch | undefined {
  let dirs: string[];
  try {
    dirs = memoryCgroupDirs(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined; // init is gone already: its exit is reported without an OOM check
  }
  let seen = oomKillCount(dirs);
  if (seen === undefined) return undefined;
  const poll = (): void => {
    const now = oomKillCount(dirs);
    if (now === undefined) return; // the cgroup was removed
    if (now > seen!) onOom();
    seen = now;
  };
  const timer = setInterval(poll, intervalMs);
  timer.unref();
  return { poll, stop: () => clearInterval(timer) };
}
