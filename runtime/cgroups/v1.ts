/*
 * The cgroup v1 driver: one directory per mounted hierarchy, all with the same cgroup path.
 *
 *   /sys/fs/cgroup/cpu/<path>  /sys/fs/cgroup/memory/<path>  …  /sys/fs/cgroup/systemd/<path>
 *   /sys/fs/cgroup/unified/<path>          hybrid only: the "companion" cgroup2 directory
 *
 * Hybrid hosts: the v1 hierarchies do all resource control, freezing (freezer.state, which
 * the engines' own tools read) and device rules (devices.allow/deny). The container is also
 * created and joined at the same path in the cgroup2 mount, because cgroup2's core files work
 * there and cgroup.kill (5.14+) ends every process at once, with no freeze/signal loop that a
 * fork could race. If that directory cannot be made (a read-only or foreign cgroup2 mount, as
 * inside another container), the driver carries on without it and kill falls back to the loop.
 */
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import type { LinuxResources } from '../../spec/schema-linux';
import { runOps } from './apply';
import { POLL_MS, isSigkill, levelsBelow, removeTree, signalAll, withCleanup, type Freezer } from './common';
import type { CgroupMount } from './detect';
import type { CgroupDriver, CgroupJoinTarget, DriverContext, Signal } from './driver';
import { errnoOf, pidsInTree, readFile, readIfExists, writeFile } from './fs';
import { dirInHierarchy } from './path';
import { v1Writes } from './resources';
import { v1Stats, type CgroupStats } from './stats';

// Where `pids()` looks first: hierarchies every v1 host mounts and every process joins.
const PID_SOURCES = ['pids', 'freezer', 'devices', 'memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'name=systemd'];

/** The v1 driver; `hybrid` adds the cgroup2 companion directory. */
export function v1Driver(ctx: DriverContext, hybrid: boolean): CgroupDriver {
  const byController: Record<string, string> = {};
  const dirs = new Map<string, { mount: CgroupMount; dir: string }>();
  for (const [controller, mount] of Object.entries(ctx.hierarchies.v1)) {
    const dir = dirInHierarchy(mount, ctx.path);
    byController[controller] = dir;
    dirs.set(mount.mountpoint, { mount, dir });
  }
  const v2 = hybrid ? ctx.hierarchies.v2 : undefined;
  const unifiedDir = v2 === undefined ? undefined : dirInHierarchy(v2, ctx.path);
  const unifiedJoined = (): boolean => unifiedDir !== undefined && ctx.fs.exists(path.join(unifiedDir, 'cgroup.procs'));

  const dirFor = (controller: string): string => {
    const dir = byController[controller];
    if (dir === undefined) throw new TsrunError('FailedPrecondition', `cgroup controller ${JSON.stringify(controller)} is not mounted on this host`);
    return dir;
  };

  const mkdir = (dir: string): void => {
    try {
      ctx.fs.mkdir(dir);
    } catch (err) {
      throw wrapSystemError(`create cgroup ${dir}`, err);
    }
  };

  // A new v1 cpuset cgroup starts with empty cpus and mems and refuses processes until they
  // are set; copy them down from the parent at each level (cgroup.clone_children off).
  const fillCpuset = (): void => {
    const cpuset = ctx.hierarchies.v1['cpuset'];
    const dir = byController['cpuset'];
    if (cpuset === undefined || dir === undefined) return;
    for (const level of levelsBelow(cpuset.mountpoint, dir)) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        const cur = readIfExists(ctx.fs, level, file);
        if (cur !== '') continue;
        writeFile(ctx.fs, level, file, readFile(ctx.fs, path.dirname(level), file));
      }
    }
  };

  const freezer: Freezer = {
    canFreeze: byController['freezer'] !== undefined,
    isFrozen: () => {
      const dir = byController['freezer'];
      return dir !== undefined && readIfExists(ctx.fs, dir, 'freezer.state') === 'FROZEN';
    },
    freeze: (state) => {
      const dir = dirFor('freezer');
      const want = state === 'frozen' ? 'FROZEN' : 'THAWED';
      for (let waited = 0; ; waited += POLL_MS) {
        // Writing FROZEN again while FREEZING makes the kernel retry tasks that were busy
        // (in a vfork or uninterruptible sleep) on the previous pass.
        writeFile(ctx.fs, dir, 'freezer.state', want);
        const now = readFile(ctx.fs, dir, 'freezer.state');
        if (now === want) return;
        if (waited >= ctx.timeoutMs) {
          const err = new TsrunError('Unavailable', `${state === 'frozen' ? 'freeze' : 'thaw'} ${path.join(dir, 'freezer.state')}: still ${now} after ${ctx.timeoutMs} ms`);
          if (state !== 'frozen') throw err;
          // Leave the container running rather than half-frozen.
          try {
            writeFile(ctx.fs, dir, 'freezer.state', 'THAWED');
          } catch (thawErr) {
            throw withCleanup(err, thawErr);
          }
          throw err;
        }
        ctx.sleep(POLL_MS);
      }
    },
  };

  const pids = (): number[] => {
    for (const c of PID_SOURCES) {
      const dir = byController[c];
      if (dir !== undefined) return pidsInTree(ctx.fs, dir);
    }
    const first = dirs.values().next().value;
    return first === undefined ? [] : pidsInTree(ctx.fs, first.dir);
  };

  return {
    create(): void {
      for (const { dir } of dirs.values()) mkdir(dir);
      fillCpuset();
      if (unifiedDir !== undefined) {
        try {
          ctx.fs.mkdir(unifiedDir);
        } catch (err) {
          const errno = errnoOf(err);
          if (errno !== 'EACCES' && errno !== 'EPERM' && errno !== 'EROFS') throw wrapSystemError(`create cgroup ${unifiedDir}`, err);
        }
      }
    },
    addProcess(pid: number): void {
      for (const { dir } of dirs.values()) writeFile(ctx.fs, dir, 'cgroup.procs', String(pid));
      if (unifiedDir !== undefined && unifiedJoined()) writeFile(ctx.fs, unifiedDir, 'cgroup.procs', String(pid));
    },
    joinTargets(): CgroupJoinTarget[] {
      const out: CgroupJoinTarget[] = [...dirs.values()].map(({ dir }) => ({ mode: 'tasks', path: path.join(dir, 'tasks') }));
      if (unifiedDir !== undefined && unifiedJoined()) out.push({ mode: 'into', path: unifiedDir });
      return out;
    },
    apply(resources: LinuxResources): void {
      runOps(ctx.fs, v1Writes(resources), { dirFor, explainMissing: (_c, _d, err) => err });
    },
    freeze: (state) => freezer.freeze(state),
    isFrozen: () => freezer.isFrozen(),
    stats(): CgroupStats {
      return v1Stats(ctx.fs, (c) => byController[c]);
    },
    destroy(): void {
      const errors: unknown[] = [];
      const all = [...[...dirs.values()].map((d) => d.dir), ...(unifiedDir === undefined ? [] : [unifiedDir])];
      for (const dir of all) {
        try {
          removeTree(ctx, dir);
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw errors.slice(1).reduce((acc: unknown, e) => withCleanup(acc, e), errors[0]);
    },
    pids,
    kill(signal: Signal): void {
      if (isSigkill(signal) && unifiedDir !== undefined && ctx.fs.exists(path.join(unifiedDir, 'cgroup.kill'))) {
        writeFile(ctx.fs, unifiedDir, 'cgroup.kill', '1');
        // Anything that joined only the v1 hierarchies (another runtime's exec) still gets it.
        signalAll(ctx, { canFreeze: false, isFrozen: () => false, freeze: () => undefined }, pids, signal);
        // A task in the v1 freezer acts on SIGKILL only once thawed.
        if (freezer.isFrozen()) freezer.freeze('thawed');
        return;
      }
      signalAll(ctx, freezer, pids, signal);
    },
    paths(): Readonly<Record<string, string>> {
      const out: Record<string, string> = {};
      for (const [mountpoint, { dir }] of dirs) out[mountpoint] = dir;
      if (v2 !== undefined && unifiedDir !== undefined) out[v2.mountpoint] = unifiedDir;
      return out;
    },
  };
}
