/*
 * Cgroup code run once over made-up data, for processes that want it compiled before their first
 * real container (runtime/cli/startup/warm.ts for creates; the lifecycle snapshot for kill and delete): the
 * layout detection (with the host probe's mount parser) and a driver over made-up mounts and an
 * in-memory file system. Nothing touches the host.
 */
import type { LinuxResources } from '../../spec/schema-linux';
import { cgroupLayoutOf } from './detect';
import { cgroupDriver, type CgroupDriver } from './driver';
import type { CgroupFs } from './fs';

/** A hybrid host's cgroup mounts, as /proc/self/mountinfo lists them. */
const SAMPLE_MOUNTINFO = [
  '25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755',
  '26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw',
  ...['memory', 'pids', 'cpu,cpuacct', 'cpuset', 'devices', 'freezer', 'blkio'].map((c, i) => `${27 + i} 25 0:${24 + i} / /sys/fs/cgroup/${c} rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,${c}`),
].join('\n');

/** A driver for a made-up hybrid host over an in-memory file system with no processes in it. */
function sampleDriver(): CgroupDriver {
  const layout = cgroupLayoutOf(SAMPLE_MOUNTINFO, '0::/\n');
  const files = new Map<string, string>();
  const memoryFs: CgroupFs = {
    read: (file) => files.get(file) ?? (file.endsWith('cgroup.procs') || file.endsWith('/tasks') ? '' : '0'),
    write: (file, value) => void files.set(file, value),
    exists: () => true,
    mkdir: () => undefined,
    rmdir: () => undefined,
    list: () => [],
  };
  return cgroupDriver(layout.mode, { root: '/sys/fs/cgroup', path: '/warm-up', hierarchies: layout.hierarchies, fs: memoryFs });
}

/** Run the cgroup code a create goes through once: create, apply (`resources` plus a few limits), paths, joinTargets. */
export function warmCgroupCreate(resources: LinuxResources): void {
  const cg = sampleDriver();
  cg.create();
  cg.apply({ ...resources, memory: { limit: 4 << 20 }, pids: { limit: 1 }, cpu: { shares: 512 } });
  cg.paths();
  cg.joinTargets();
}

/** Run the cgroup code kill and delete go through once: the pid list, the freezer state, removal. */
export function warmCgroupTeardown(): void {
  const cg = sampleDriver();
  cg.pids();
  cg.isFrozen();
  cg.destroy();
}
