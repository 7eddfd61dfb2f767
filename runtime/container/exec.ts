/*
 * exec: a new process in a running container. Same data flow as create: the process (from
 * --process or the flags) and the container's config → buildExecPlan → encodePlan →
 * native.spawn → join the cgroup → GO → CREATED → pid file; then wait for it unless --detach.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSpec, validateProcess, type Process, type Spec } from '../../spec';
import { TsrunError } from '../../spec/errors';
import * as native from '../native';
import { probeHost } from '../host/probe';
import { buildExecPlan } from '../plan/exec';
import { encodePlan } from '../plan/encode';
import { EXEC, childSyncSteps, reapStep, runSteps, spawnStep, type Steps } from './child-sync';
import { compileSeccomp } from '../seccomp/compile';
import { cgroupOfState, openCgroupJoin, type CgroupJoin } from './cgroup';
import { checkConsole, deliverConsole } from './console';
import { sendToSeccompAgent, writePidFile } from './create';
import { statusOf } from './lifecycle';
import { readState, type ContainerState } from './state-store';
import { parseProcStat } from './status';
import { readConfigFile } from './config-file';
import { checkNamespacePaths, initNamespaces } from './ns-paths';
import type { StdioFds } from '../plan/build';

/** Options of `exec`. */
export interface ExecOptions {
  readonly root: string;
  readonly id: string;
  readonly process: Process;
  readonly detach: boolean;
  readonly pidFile?: string | undefined;
  readonly preserveFds: number;
  readonly consoleSocket?: string | undefined;
  /** This process's fds that the process gets as 0, 1 and 2 (-1: the inherited one). */
  readonly stdio?: StdioFds | undefined;
  /** Foreground exec without --console-socket: receives the pty master of process.terminal. */
  readonly onConsole?: ((master: number) => void) | undefined;
  readonly debug?: ((msg: string) => void) | undefined;
  /** The plan is spawned by another process (the native shim): as CreateOptions.remoteFdBase. */
  readonly remoteFdBase?: number | undefined;
}

/** The container's config.json as it was created (exec takes its namespaces, seccomp and defaults). */
export function containerConfig(bundle: string): Spec {
  const file = path.join(bundle, 'config.json');
  return parseSpec(readConfigFile(file), file);
}

/** A started exec'd process: its host pid. */
export interface StartedExec {
  readonly pid: number;
}

/** Start a process in the container; returns once it has been found and is about to exec. */
export function startExec(opts: ExecOptions): StartedExec {
  return runSteps(execSteps(opts));
}

/** startExec as steps (child-sync.ts Step). */
export function* execSteps(opts: ExecOptions): Steps<StartedExec> {
  // The same process checks as config.json's (ids in range, absolute cwd, ...), whether the
  // process came from --process, the flags or a shim's exec request.
  validateProcess(opts.process);
  const s = readState(opts.root, opts.id);
  const status = statusOf(opts.root, s);
  if (status === 'stopped') throw new TsrunError('FailedPrecondition', 'cannot exec in a stopped container');
  if (status === 'paused') throw new TsrunError('FailedPrecondition', 'cannot exec in a paused container');
  if (status === 'creating') throw new TsrunError('FailedPrecondition', 'cannot exec in a container that is still being created');
  checkConsole(opts.process.terminal === true, opts.consoleSocket, opts.detach);
  const spec = containerConfig(s.bundle);
  const seccomp = spec.linux?.seccomp ? compileSeccomp(spec.linux.seccomp) : undefined;
  checkNamespacePaths(initNamespaces(spec, s.pid));
  const pidfd = openInitPidfd(s);
  let join: CgroupJoin | undefined;
  opts.debug?.(pidfd !== undefined ? `exec: joining the namespaces of init (pid ${s.pid}) through a pidfd` : `exec: no pidfd_open here; joining through /proc/${s.pid}/ns`);
  let child: native.Spawned;
  try {
    // The process joins the container's cgroup itself, before it runs anything of its own.
    join = s.cgroupPath !== undefined ? openCgroupJoin(cgroupOfState(s)) : undefined;
    // Renumbered for a remote spawner (see CreateOptions.remoteFdBase); our own numbers otherwise.
    const remote = opts.remoteFdBase;
    const passed: number[] = [];
    const planFd = (fd: number): number => (remote === undefined ? fd : remote + 3 + passed.push(fd) - 1);
    const plan = buildExecPlan(opts.process, spec, probeHost(), {
      initPid: s.pid,
      initPidfd: pidfd === undefined ? undefined : planFd(pidfd),
      preserveFds: opts.preserveFds,
      seccomp,
      rootless: (process.geteuid?.() ?? 0) !== 0,
      stdio: remote === undefined ? opts.stdio : [remote, remote + 1, remote + 2],
      cgroupJoin: join?.ops.map((o) => ({ ...o, fd: planFd(o.fd) })),
    });
    child = yield* spawnStep(encodePlan(plan), passed);
  } finally {
    // The child has its own copies from clone; it joins through them and closes them.
    if (pidfd !== undefined) fs.closeSync(pidfd);
    join?.close();
  }
  try {
    const started = child;
    yield* childSyncSteps(child, EXEC, Buffer.from('\0\0'), {
      onConsole: (fd) => deliverConsole(opts.consoleSocket, opts.onConsole, fd),
      // The exec'd process has a filter (and a listener) of its own: the agent gets it, with the
      // container's state, as for init.
      onSeccomp: (fd) => sendToSeccompAgent(spec, fd, { ociVersion: spec.ociVersion, id: s.id, status: 'running', pid: started.pid, bundle: s.bundle, annotations: s.annotations }),
    });
    opts.debug?.(`exec: process ${child.pid} started in container ${opts.id}`);
    if (opts.pidFile) writePidFile(path.resolve(opts.pidFile), child.pid);
    return { pid: child.pid };
  } catch (err) {
    try {
      process.kill(child.pid, 'SIGKILL');
      yield* reapStep(child.pid);
    } catch {
      // Already gone.
    }
    throw err;
  } finally {
    fs.closeSync(child.syncFd);
  }
}

/**
 * A pidfd of the container's init, or undefined where the kernel has no pidfd_open (before 5.3).
 * Opened after the status check and verified against init's recorded start time, so it names the
 * container's init and not a process that reused its pid; from then on it cannot change.
 */
function openInitPidfd(s: ContainerState): number | undefined {
  let fd: number;
  try {
    fd = native.pidfdOpen(s.pid);
  } catch (err) {
    if (err instanceof TsrunError && err.errno === 'ENOSYS') return undefined;
    if (err instanceof TsrunError && err.errno === 'ESRCH') throw new TsrunError('FailedPrecondition', 'cannot exec in a stopped container', { cause: err });
    throw err;
  }
  let startTime: string | undefined;
  try {
    startTime = parseProcStat(fs.readFileSync(`/proc/${s.pid}/stat`, 'utf8'))?.startTime;
  } catch {
    startTime = undefined;
  }
  if (startTime !== s.pidStartTime) {
    fs.closeSync(fd);
    throw new TsrunError('FailedPrecondition', 'cannot exec in a stopped container');
  }
  return fd;
}
