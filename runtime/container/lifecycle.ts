/*
 * start, kill, delete, state and list. Every mutating verb holds the container lock for its whole
 * run; readers rely on state.json being replaced atomically.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import type { LinuxResources } from '../../spec';
import type { CgroupStats } from '../cgroups/stats';
import { cgroupOfState } from './cgroup';
import { INIT_PROCESS_NAME } from '../plan/names';
import { sleepSync } from '../cgroups/fs';
import { runHooksWarnOnly } from './hooks';
import { lockContainer } from './lock';
import { containerPids, signalAll, signalProcess, waitGone } from './processes';
import { containerPaths, listIds, readState, removeContainerDir, sweepHidden, type ContainerState } from './state-store';
import { unmountUnder } from './host-mounts';
import { computeStatus, hostProcView, type Status } from './status';

/** The OCI state document `tsrun state` prints. */
export interface OciState {
  readonly ociVersion: string;
  readonly id: string;
  readonly pid: number;
  readonly status: Status;
  readonly bundle: string;
  readonly rootfs: string;
  readonly created: string;
  readonly owner: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Live status of a stored container: `paused` while its cgroup is frozen. */
export function statusOf(root: string, s: ContainerState): Status {
  const status = computeStatus(s, hostProcView(containerPaths(root, s.id).fifo));
  if (status !== 'running' || s.cgroupPath === undefined) return status;
  try {
    return cgroupOfState(s).isFrozen() ? 'paused' : status;
  } catch {
    return status;
  }
}

/** The OCI state of one container (pid 0 once it has stopped, like runc). */
export function ociState(root: string, s: ContainerState): OciState {
  const status = statusOf(root, s);
  const out: OciState = {
    ociVersion: s.ociVersion,
    id: s.id,
    pid: status === 'stopped' ? 0 : s.pid,
    status,
    bundle: s.bundle,
    rootfs: s.rootfs,
    created: s.created,
    owner: s.owner,
  };
  return Object.keys(s.annotations).length > 0 ? { ...out, annotations: s.annotations } : out;
}

/** `state <id>`. */
export function stateOf(root: string, id: string): OciState {
  return ociState(root, readState(root, id));
}

/** `list`: every container that has a readable state. */
export function listContainers(root: string): OciState[] {
  const out: OciState[] = [];
  for (const id of listIds(root)) {
    try {
      out.push(stateOf(root, id));
    } catch {
      // Being created or deleted right now: not a container yet, or not any more.
    }
  }
  return out;
}

const EXEC_WAIT_MS = 60_000;

/**
 * Wait until `pid` is no longer tsrun's init: it exec'd (the kernel renamed it after its
 * program), or it is gone or a zombie (the exec failed). False after `timeoutMs`.
 */
export function waitForExec(pid: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return true; // gone
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const state = stat.charAt(close + 2);
    if (comm !== INIT_PROCESS_NAME || state === 'Z' || state === 'X') return true;
    if (Date.now() >= deadline) return false;
    sleepSync(pause);
  }
}

/** `start <id>`: release init blocked on the exec fifo, then run poststart hooks; returns warnings. */
export function startContainer(root: string, id: string): string[] {
  const lock = lockContainer(root, id);
  try {
    const s = readState(root, id);
    const status = statusOf(root, s);
    if (status === 'stopped') throw new TsrunError('FailedPrecondition', 'cannot start a container that has stopped');
    if (status !== 'created') throw new TsrunError('FailedPrecondition', 'cannot start an already running container');
    const fifo = containerPaths(root, id).fifo;
    let fd: number;
    try {
      // Non-blocking: if init is gone there is no reader and open fails with ENXIO instead of hanging.
      fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw new TsrunError('FailedPrecondition', 'cannot start a container that has stopped', { cause: err });
      throw wrapSystemError(`open exec fifo ${fifo}`, err);
    }
    try {
      fs.writeSync(fd, Buffer.from([0]));
    } finally {
      fs.closeSync(fd);
    }
    fs.rmSync(fifo, { force: true });
    const poststart = s.hooks.poststart;
    if (poststart.length === 0) return [];
    // runtime-spec: poststart runs after the user's process is executed; init still has the
    // startContainer hooks and the exec ahead of it.
    const warnings = waitForExec(s.pid, EXEC_WAIT_MS) ? [] : [`init (pid ${s.pid}) had not exec'd the process after ${EXEC_WAIT_MS / 1000} s: running the poststart hooks anyway`];
    const hookState = { ociVersion: s.ociVersion, id, status: 'running', pid: s.pid, bundle: s.bundle, annotations: s.annotations };
    return [...warnings, ...runHooksWarnOnly('poststart', poststart, hookState)];
  } finally {
    lock.release();
  }
}

/** `kill [--all] <id> <signal>`. */
export function killContainer(root: string, id: string, sig: number, all: boolean): void {
  const lock = lockContainer(root, id);
  try {
    const s = readState(root, id);
    const status = statusOf(root, s);
    if (all) {
      // As runc: --all signals whatever is still in the container, and finding nothing there is
      // no error (containerd's shim runs it on every stopped container to kill what init left).
      if (s.cgroupPath !== undefined) cgroupOfState(s).kill(sig);
      else signalAll(s, sig);
      return;
    }
    if (status === 'stopped' || !signalProcess(s.pid, sig, s.pidStartTime)) {
      throw new TsrunError('FailedPrecondition', 'container not running');
    }
  } finally {
    lock.release();
  }
}

/** How long `delete --force` waits for the container's processes to die after SIGKILL. */
const FORCE_KILL_WAIT_MS = 10_000;

/** `delete [--force] <id>`; returns warnings (poststop hook failures). */
export async function deleteContainer(root: string, id: string, force: boolean): Promise<string[]> {
  sweepHidden(root, id);
  const lock = lockContainer(root, id);
  try {
    let s: ContainerState;
    try {
      s = readState(root, id);
    } catch (err) {
      // A directory without state.json is a create that died half-way: nothing runs, just remove it.
      if (err instanceof TsrunError && err.code === 'NotFound' && fs.existsSync(containerPaths(root, id).dir)) {
        removeContainerDir(root, id);
        return [];
      }
      throw err;
    }
    const status = statusOf(root, s);
    const cg = s.cgroupPath === undefined ? undefined : cgroupOfState(s);
    // cgroup.kill (or freeze-and-signal) reaches every process, paused ones included; without a
    // cgroup, the namespaces the container created say which processes are its own.
    const killAll = (): void => (cg ? cg.kill('SIGKILL') : void signalAll(s, osConstants.signals.SIGKILL));
    if (status !== 'stopped') {
      if (!force) throw new TsrunError('FailedPrecondition', `cannot delete container ${id} that is not stopped: ${status}`);
      killAll();
      signalProcess(s.pid, osConstants.signals.SIGKILL, s.pidStartTime);
      const left = await waitGone(s, FORCE_KILL_WAIT_MS);
      if (left.length > 0) throw new TsrunError('Unavailable', `delete ${id}: processes still running after SIGKILL: ${left.join(' ')}`);
    } else if (s.creating !== undefined) {
      // What a killed create left: its init may still wait on the exec fifo (it drops its
      // parent-death signal once it reports CREATED), outside a cgroup or not yet in one.
      killAll();
      if (s.pid > 0) signalProcess(s.pid, osConstants.signals.SIGKILL, s.pidStartTime);
      const left = await waitGone(s, FORCE_KILL_WAIT_MS);
      if (left.length > 0) throw new TsrunError('Unavailable', `delete ${id}: processes of a half-made container still running after SIGKILL: ${left.join(' ')}`);
    } else if (containerPids(s).length > 0) {
      // Without a pid namespace of its own, init's exit does not take its children with it.
      killAll();
      await waitGone(s, FORCE_KILL_WAIT_MS);
    }
    // destroy waits for the cgroup to drain and says which pids are left if it does not.
    cg?.destroy();
    if (s.hostMounts) unmountUnder(s.rootfs);
    removeContainerDir(root, id);
    // A create that never finished ran no container: there is nothing to run poststop for.
    if (s.creating !== undefined) return [];
    const hookState = { ociVersion: s.ociVersion, id, status: 'stopped', bundle: s.bundle, annotations: s.annotations };
    return runHooksWarnOnly('poststop', s.hooks.poststop, hookState);
  } finally {
    lock.release();
  }
}

/** `pause <id>`: freeze every process of a running container. */
export function pauseContainer(root: string, id: string): void {
  const lock = lockContainer(root, id);
  try {
    const s = readState(root, id);
    const status = statusOf(root, s);
    if (status === 'paused') throw new TsrunError('FailedPrecondition', 'container already paused');
    if (status !== 'running') throw new TsrunError('FailedPrecondition', 'container not running');
    cgroupOfState(s).freeze('frozen');
  } finally {
    lock.release();
  }
}

/** `resume <id>`: thaw a paused container. */
export function resumeContainer(root: string, id: string): void {
  const lock = lockContainer(root, id);
  try {
    const s = readState(root, id);
    if (statusOf(root, s) !== 'paused') throw new TsrunError('FailedPrecondition', 'container not paused');
    cgroupOfState(s).freeze('thawed');
  } finally {
    lock.release();
  }
}

/** Host pids of every process in the container's cgroup (`ps`). */
export function containerProcesses(root: string, id: string): number[] {
  const s = readState(root, id);
  if (statusOf(root, s) === 'stopped' && s.cgroupPath === undefined) return [];
  return cgroupOfState(s).pids();
}

/** Resource usage of a container's cgroup (`events --stats`). */
export function containerStats(root: string, id: string): CgroupStats {
  const s = readState(root, id);
  if (statusOf(root, s) === 'stopped') throw new TsrunError('FailedPrecondition', 'container not running');
  return cgroupOfState(s).stats();
}

/** `update <id>`: apply new resource limits to a created, running or paused container. */
export function updateContainer(root: string, id: string, resources: LinuxResources): void {
  const lock = lockContainer(root, id);
  try {
    const s = readState(root, id);
    if (statusOf(root, s) === 'stopped') throw new TsrunError('FailedPrecondition', 'container not running');
    cgroupOfState(s).apply(resources);
  } finally {
    lock.release();
  }
}
