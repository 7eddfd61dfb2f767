/*
 * A create's warm-up, run by the full CLI's snapshot builder (entry.ts): its plan and cgroup
 * code run once over made-up data, so they are compiled
 * before the first real container. Nothing touches the host. Each bundle's own warm-up stays in
 * its entry file, because esbuild puts every module a file imports, dynamically or not, into the
 * bundle that imports it (README.md).
 */
import type { Spec } from '../../../spec';
import { warmCgroupCreate } from '../../cgroups/warm';
import type { HostFacts } from '../../host/probe';
import { buildPlan } from '../../plan/build';
import { encodePlan } from '../../plan/encode';
import { CGROUP_JOIN_MODE } from '../../plan/ops';

/** Run what a create of `spec` goes through once: its plan (made-up paths, a cgroup join) and the cgroup driver. */
export function warmCreateCode(spec: Spec, host: HostFacts): void {
  const opts = { id: 'warm-up', bundle: '/nonexistent', rootfs: '/nonexistent/rootfs', execFifo: '/nonexistent/exec.fifo', noPivot: false, noNewKeyring: false, preserveFds: 0, cgroupPaths: {}, sourceKinds: {} };
  encodePlan(buildPlan(spec, host, { ...opts, cgroupJoin: [{ op: 'CGROUP_JOIN', fd: 3, mode: CGROUP_JOIN_MODE.TASKS }] }));
  warmCgroupCreate(spec.linux?.resources ?? {});
}

