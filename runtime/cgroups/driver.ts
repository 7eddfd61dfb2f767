/*
 * The one interface the rest of the runtime uses for cgroups. `cgroupDriver(mode, opts)` picks
 * the implementation once, from the mode `detectCgroupMode` found; callers never branch on the
 * cgroup version.
 *
 *   mode      implementation   container cgroup lives in
 *   legacy    v1.ts            every v1 hierarchy
 *   hybrid    v1.ts            every v1 hierarchy, plus the same path in the cgroup2 mount
 *                              (/sys/fs/cgroup/unified) so cgroup.kill can end the container
 *   unified   v2.ts            the cgroup2 tree
 */
import { TsrunError } from '../../spec/errors';
import type { LinuxResources } from '../../spec/schema-linux';
import { hierarchiesUnder, type CgroupDriverMode, type CgroupHierarchies } from './detect';
import type { DeviceRule } from './devices';
import { nodeCgroupFs, sleepSync, type CgroupFs } from './fs';
import type { CgroupStats } from './stats';
import { v1Driver } from './v1';
import { v2Driver } from './v2';

/** A signal by number (9) or name ("SIGKILL"). */
export type Signal = number | NodeJS.Signals;

/** One file or directory a process opens to join the container's cgroup (see joinTargets). */
export interface CgroupJoinTarget {
  /** `tasks`: a v1 `tasks` file the process writes "0" to; `into`: a cgroup v2 directory. */
  readonly mode: 'tasks' | 'into';
  readonly path: string;
}

/** What the runtime does to a container's cgroup. */
export interface CgroupDriver {
  /** Create the container's cgroup (mkdir -p in every hierarchy); an existing one is reused. */
  create(): void;
  /** Move process `pid` (and its threads) into the cgroup. */
  addProcess(pid: number): void;
  /**
   * What a new container process opens to join the cgroup itself (the CGROUP_JOIN plan op): a v1
   * hierarchy's `tasks` file, or the cgroup v2 directory to clone into. Cheaper than addProcess
   * (no global lock, no RCU grace period) and done before the process runs anything.
   */
  joinTargets(): readonly CgroupJoinTarget[];
  /** Apply `linux.resources` (create) or an `update --resources` document; unset fields are left alone. */
  apply(resources: LinuxResources): void;
  /** Freeze or thaw every process, returning once the kernel reports the new state. */
  freeze(state: 'frozen' | 'thawed'): void;
  /** True when the cgroup is frozen (the container is paused). */
  isFrozen(): boolean;
  /** Resource usage in the shape of runc's `events --stats` data. */
  stats(): CgroupStats;
  /** Remove the cgroup (and any cgroups the container made below it); it must hold no processes. */
  destroy(): void;
  /** Every pid in the cgroup and below, sorted (for `ps` and `kill --all`). */
  pids(): number[];
  /** Send `signal` to every process in the cgroup; SIGKILL uses cgroup.kill where there is one. */
  kill(signal: Signal): void;
  /** The container's cgroup directory per hierarchy mount point (for the container's cgroup mount). */
  paths(): Readonly<Record<string, string>>;
}

/**
 * Installs a device-rule program on a cgroup v2 directory (the eBPF loader lives in
 * runtime/native, which only runtime/container may import, so it is passed in).
 */
export type DeviceProgramLoader = (cgroupDir: string, rules: readonly DeviceRule[]) => void;

/** How to build a driver. */
export interface CgroupDriverOptions {
  /** The cgroup mount root (/sys/fs/cgroup; a temp dir in tests). */
  readonly root: string;
  /** The container's cgroup path from `cgroupPathOf` (or `systemdCgroupPath`). */
  readonly path: string;
  /** The hierarchies from `detectCgroupMode`; default: the conventional layout under `root`. */
  readonly hierarchies?: CgroupHierarchies;
  /** File operations; default the real file system. */
  readonly fs?: CgroupFs;
  /** Blocking sleep used while waiting on the kernel; default a real one. */
  readonly sleep?: (ms: number) => void;
  /** Sends a signal to one pid; default process.kill. */
  readonly signal?: (pid: number, signal: Signal) => void;
  /** How long destroy waits for the cgroup to empty and freeze for the freezer to settle; default 2000. */
  readonly timeoutMs?: number;
  /** cgroup v2 only: loads device rules as an eBPF program. Without it, device rules fail on v2. */
  readonly devices?: DeviceProgramLoader;
}

/** Options with every default filled in, as the implementations take them. */
export interface DriverContext {
  readonly hierarchies: CgroupHierarchies;
  readonly path: string;
  readonly fs: CgroupFs;
  readonly sleep: (ms: number) => void;
  readonly signal: (pid: number, signal: Signal) => void;
  readonly timeoutMs: number;
  readonly devices: DeviceProgramLoader | undefined;
}

/** The driver for `mode` (from `detectCgroupMode`) and one container's cgroup path. */
export function cgroupDriver(mode: CgroupDriverMode, opts: CgroupDriverOptions): CgroupDriver {
  const ctx: DriverContext = {
    hierarchies: opts.hierarchies ?? hierarchiesUnder(opts.root, mode),
    path: opts.path,
    fs: opts.fs ?? nodeCgroupFs,
    sleep: opts.sleep ?? sleepSync,
    signal: opts.signal ?? ((pid, sig) => process.kill(pid, sig)),
    timeoutMs: opts.timeoutMs ?? 2000,
    devices: opts.devices,
  };
  switch (mode) {
    case 'unified':
      return v2Driver(ctx);
    case 'legacy':
      return v1Driver(ctx, false);
    case 'hybrid':
      return v1Driver(ctx, true);
    default: {
      const never: never = mode;
      throw new TsrunError('Internal', `unknown cgroup mode ${String(never)}`);
    }
  }
}
