/*
 * The plan of `tsrun exec`: join every namespace of the running container at once through a pidfd
 * of its init (NS_PIDFD), or through its /proc/<pid>/ns links on kernels without that (the pid
 * namespace takes effect through the second fork), then the same process set-up
 * as an init: limits, seccomp, capabilities, user, cwd, program. No rootfs work: joining the
 * mount namespace puts the process at the container's root already (a container without one
 * gets a chroot to init's root). CREATED tells the runtime the
 * program was found; the process execs right after.
 */
import type { Spec } from '../../spec';
import { NAMESPACE_CLONE_FLAGS, isNamespaceType } from '../../spec';
import type { HostFacts } from '../host/probe';
import { consoleOp, hasMountNamespace, processOps, stdioOp, type ProcessOpsOptions, type StdioFds } from './build';
import { PIVOT_MODE, PLAN_VERSION } from './ops';
import type { Plan, PlanOp, PlanOpOf } from './types';
import { EXEC_PROCESS_NAME } from './names';

/** /proc/<pid>/ns link names per OCI namespace type. */
const NS_LINK: Readonly<Record<string, string>> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time',
};

/** Inputs of an exec plan besides the process. */
export interface ExecPlanOptions extends ProcessOpsOptions {
  /** Host pid of the container's init, whose namespaces the process joins. */
  readonly initPid: number;
  readonly preserveFds: number;
  /**
   * A pidfd of init the runtime holds (opened after checking init's identity), inherited by the
   * child: it joins every namespace through it in one setns(2) (NS_PIDFD), falling back to the
   * /proc paths on kernels without pidfd support in setns.
   */
  readonly initPidfd?: number | undefined;
  /** Caller's fds that become the process's 0, 1, 2 (-1: keep the inherited one). */
  readonly stdio?: StdioFds | undefined;
  /** CGROUP_JOIN ops (openCgroupJoin): the process joins the container's cgroup itself. */
  readonly cgroupJoin?: readonly PlanOpOf<'CGROUP_JOIN'>[] | undefined;
}

/** Build the plan for one process joining a running container. */
export function buildExecPlan(proc: NonNullable<Spec['process']>, containerSpec: Spec, host: HostFacts, opts: ExecPlanOptions): Plan {
  const linux = containerSpec.linux ?? {};
  const ops: PlanOp[] = [{ op: 'CLOSE_FDS', preserve: opts.preserveFds }, ...(opts.stdio !== undefined ? [stdioOp(opts.stdio)] : []), { op: 'SET_NAME', name: EXEC_PROCESS_NAME }];
  const joins: PlanOp[] = [];
  let nstypes = 0;
  for (const ns of linux.namespaces ?? []) {
    if (!isNamespaceType(ns.type)) continue;
    nstypes |= NAMESPACE_CLONE_FLAGS[ns.type];
    joins.push({ op: 'NAMESPACE', nstype: NAMESPACE_CLONE_FLAGS[ns.type], path: `/proc/${opts.initPid}/ns/${NS_LINK[ns.type]}` });
  }
  if (opts.initPidfd !== undefined && nstypes !== 0) ops.push({ op: 'NS_PIDFD', fd: opts.initPidfd, nstypes: nstypes >>> 0 });
  ops.push(...joins, ...(opts.cgroupJoin ?? []));
  // Without a mount namespace to join the process would see the caller's root: take init's.
  if (!hasMountNamespace(containerSpec)) {
    ops.push({ op: 'ROOTFS', path: `/proc/${opts.initPid}/root`, propagation: 0n }, { op: 'PIVOT', mode: PIVOT_MODE.CHROOT });
  }
  if (proc.oomScoreAdj !== undefined) ops.push({ op: 'OOM_SCORE_ADJ', value: BigInt.asUintN(64, BigInt(proc.oomScoreAdj)) });
  if (proc.terminal) ops.push(consoleOp(proc, false));
  ops.push(...processOps(proc, linux, host, opts));
  const lateSeccomp: PlanOp | undefined = proc.noNewPrivileges && opts.seccomp ? { op: 'SECCOMP', flags: opts.seccomp.flags, filter: opts.seccomp.filter } : undefined;
  // A filter with a user-notification listener goes in before CREATED so its fd reaches the
  // runtime, which passes it on to the agent (as for create, and as runc does for exec).
  if (lateSeccomp && opts.seccomp?.needsListener) ops.push(lateSeccomp);
  ops.push({ op: 'CREATED' });
  if (lateSeccomp && !opts.seccomp?.needsListener) ops.push(lateSeccomp);
  ops.push({ op: 'EXEC' });
  return { version: PLAN_VERSION, ops };
}
