/*
 * A container's cgroup driver, built from the path recorded in state.json (or derived at create),
 * so every verb talks to the same cgroup even if config.json changed since.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { detectCgroupMode, type CgroupLayout } from '../cgroups/detect';
import { deviceProgram } from '../cgroups/devices-bpf';
import { cgroupDriver, type CgroupDriver, type DeviceProgramLoader } from '../cgroups/driver';
import { CGROUP_JOIN_MODE } from '../plan/ops';
import type { PlanOpOf } from '../plan/types';
import { cgroupPathOf, systemdCgroupPath } from '../cgroups/path';
import { attachDeviceProgram } from '../native/bpf';

/** The loader `cgroupDriver` takes on cgroup v2: compile the rules to a program and attach it. */
export const deviceProgramLoader: DeviceProgramLoader = (cgroupDir, rules) => attachDeviceProgram(cgroupDir, deviceProgram(rules));

/** Where the cgroup filesystem is mounted on the host. */
export const CGROUP_ROOT = '/sys/fs/cgroup';

let layout: CgroupLayout | undefined;

function hostLayout(): CgroupLayout {
  layout ??= detectCgroupMode(CGROUP_ROOT);
  return layout;
}

/** The container's cgroup path: linux.cgroupsPath (or the slice:prefix:name form with --systemd-cgroup). */
export function containerCgroupPath(cgroupsPath: string | undefined, id: string, systemd: boolean, hasSystemd: boolean): string {
  return systemd ? systemdCgroupPath(cgroupsPath, id, hasSystemd) : cgroupPathOf(cgroupsPath, id);
}

/** The driver for a container whose cgroup path is `path`. */
export function containerCgroup(path: string): CgroupDriver {
  const l = hostLayout();
  return cgroupDriver(l.mode, { root: CGROUP_ROOT, path, hierarchies: l.hierarchies, devices: deviceProgramLoader });
}

/** The driver recorded in a container's state; FailedPrecondition for state written without one. */
export function cgroupOfState(s: { readonly id: string; readonly cgroupPath?: string | undefined }): CgroupDriver {
  if (s.cgroupPath === undefined) throw new TsrunError('FailedPrecondition', `container ${s.id} has no cgroup (created by an older tsrun)`);
  return containerCgroup(s.cgroupPath);
}

/** The CGROUP_JOIN ops for a new process and the fds they name, which the caller closes after spawning. */
export interface CgroupJoin {
  readonly ops: readonly PlanOpOf<'CGROUP_JOIN'>[];
  close(): void;
}

/**
 * Open what a container process needs to join `cg` from inside (CgroupDriver.joinTargets). The
 * clone inherits the fds; the process writes to them with our credentials (the kernel checks
 * the opener's), then closes them.
 */
export function openCgroupJoin(cg: CgroupDriver): CgroupJoin {
  const fds: number[] = [];
  const close = (): void => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
  };
  const ops: PlanOpOf<'CGROUP_JOIN'>[] = [];
  try {
    const open = (file: string, flags: number): number => {
      try {
        const fd = fs.openSync(file, flags);
        fds.push(fd);
        return fd;
      } catch (err) {
        throw wrapSystemError(`open ${file} to join the container's cgroup`, err);
      }
    };
    for (const t of cg.joinTargets()) {
      if (t.mode === 'tasks') {
        ops.push({ op: 'CGROUP_JOIN', fd: open(t.path, fs.constants.O_WRONLY), mode: CGROUP_JOIN_MODE.TASKS });
        continue;
      }
      ops.push({ op: 'CGROUP_JOIN', fd: open(t.path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY), mode: CGROUP_JOIN_MODE.INTO });
      ops.push({ op: 'CGROUP_JOIN', fd: open(path.join(t.path, 'cgroup.procs'), fs.constants.O_WRONLY), mode: CGROUP_JOIN_MODE.PROCS });
    }
  } catch (err) {
    close();
    throw err;
  }
  return { ops, close };
}
