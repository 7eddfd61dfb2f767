/*
 * A container's cgroup driver, built from the path recorded in state.json (or derived at create),
 * so every verb talks to the same cgroup even if config.json changed since.
 */
import { TsrunError } from '../../spec/errors';
import { detectCgroupMode, type CgroupLayout } from '../cgroups/detect';
import { cgroupDriver, type CgroupDriver } from '../cgroups/driver';
import { cgroupPathOf, systemdCgroupPath } from '../cgroups/path';
import { deviceProgramLoader } from '../native/bpf';

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
