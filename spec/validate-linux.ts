/*
 * Semantic checks on the `linux` section and on the top-level fields that need a namespace
 * (hostname, domainname). Each returns "<field path>: <what is wrong>", or undefined.
 *
 * "Has a namespace" means the namespaces list has an entry of that type, new or joined by path:
 * runc's validator treats a joined namespace the same way, and pods rely on it (a container
 * joining its sandbox's uts and network namespaces still sets sysctls). runc also refuses net.*
 * sysctls when the joined network namespace is the host's; that needs a stat of the path, so it
 * is left to the runtime.
 */
import { formatPath, quote } from './describe';
import { idProblem, mappingsProblem } from './ids';
import { isNamespaceType, ROOTFS_PROPAGATIONS, TIME_OFFSET_CLOCKS, type NamespaceType } from './names';
import type { Spec } from './schema';
import type { Namespace } from './schema-linux';

/** What every spec check may consult besides the spec. */
export interface ValidateContext {
  /** Absolute bundle directory. */
  readonly bundle: string;
  /** systemd runs as init on this host (informational; no check depends on it yet). */
  readonly hasSystemd?: boolean;
  /** The systemd cgroup driver is selected (`--systemd-cgroup`): cgroupsPath must be "slice:prefix:name". */
  readonly systemdCgroup?: boolean;
}

/** A check on a whole spec. */
export type SpecCheck = (spec: Spec, ctx: ValidateContext) => string | undefined;

function namespaceOf(spec: Spec, type: NamespaceType): Namespace | undefined {
  return spec.linux?.namespaces?.find((ns) => ns.type === type);
}

function isNewNamespace(ns: Namespace | undefined): boolean {
  return ns !== undefined && (ns.path ?? '') === '';
}

function absolutePaths(paths: readonly string[] | undefined, at: string): string | undefined {
  for (const [i, p] of (paths ?? []).entries()) {
    if (!p.startsWith('/')) return `${at}[${i}]: must be an absolute path, got ${quote(p)}`;
  }
  return undefined;
}

// Sysctls the kernel keeps per ipc namespace (ipc_namespaces(7)); every other kernel.* is global.
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

function sysctlProblem(spec: Spec, key: string): string | undefined {
  // sysctl(8) accepts "net/ipv4/ip_forward" as well as "net.ipv4.ip_forward".
  const name = key.includes('.') ? key : key.replaceAll('/', '.');
  if (name.startsWith('net.')) {
    return namespaceOf(spec, 'network') ? undefined : 'needs a network namespace';
  }
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) {
    return namespaceOf(spec, 'ipc') ? undefined : 'needs an ipc namespace';
  }
  if (name === 'kernel.hostname' || name === 'kernel.domainname') {
    if (!namespaceOf(spec, 'uts')) return 'needs a uts namespace';
    const field = name === 'kernel.hostname' ? 'hostname' : 'domainname';
    return (spec[field] ?? '') === '' ? undefined : `conflicts with the ${field} field`;
  }
  return 'is not namespaced, so a container cannot set it';
}

/** The namespace, id-mapping, hostname and `linux` checks by name, in the order they run. */
export const LINUX_CHECKS = {
  // config-linux.md lists the eight types; any other cannot be mapped to a CLONE_NEW* flag.
  'namespace-type': (spec) => {
    for (const [i, ns] of (spec.linux?.namespaces ?? []).entries()) {
      if (!isNamespaceType(ns.type)) return `linux.namespaces[${i}].type: unknown namespace type ${quote(ns.type)}`;
    }
    return undefined;
  },
  // config-linux.md: duplicated namespaces with the same type MUST generate an error.
  'namespace-duplicate': (spec) => {
    const seen = new Set<string>();
    for (const [i, ns] of (spec.linux?.namespaces ?? []).entries()) {
      if (seen.has(ns.type)) return `linux.namespaces[${i}].type: duplicate namespace type ${quote(ns.type)}`;
      seen.add(ns.type);
    }
    return undefined;
  },
  // config-linux.md: a namespace path MUST be absolute in the runtime mount namespace.
  'namespace-path': (spec) => {
    for (const [i, ns] of (spec.linux?.namespaces ?? []).entries()) {
      const p = ns.path ?? '';
      if (p !== '' && !p.startsWith('/')) return `linux.namespaces[${i}].path: must be an absolute path, got ${quote(p)}`;
    }
    return undefined;
  },
  // runc: "user namespace mappings specified, but USER namespace isn't enabled in the config".
  'id-mappings': (spec) => {
    if (namespaceOf(spec, 'user')) return undefined;
    if (spec.linux?.uidMappings !== undefined) return 'linux.uidMappings: needs a user namespace';
    if (spec.linux?.gidMappings !== undefined) return 'linux.gidMappings: needs a user namespace';
    return undefined;
  },
  // Mapped ranges stay within valid ids and never wrap around 32 bits (ids.ts).
  'id-mapping-range': (spec) =>
    mappingsProblem(spec.linux?.uidMappings, 'linux.uidMappings', 'uid') ?? mappingsProblem(spec.linux?.gidMappings, 'linux.gidMappings', 'gid'),
  // runc refuses a new user namespace with nothing to map; every id in it would be the overflow id.
  'userns-mappings': (spec) => {
    const namespaces = spec.linux?.namespaces ?? [];
    const i = namespaces.findIndex((ns) => ns.type === 'user');
    if (i < 0 || !isNewNamespace(namespaces[i])) return undefined;
    if (spec.linux?.uidMappings !== undefined || spec.linux?.gidMappings !== undefined) return undefined;
    return `linux.namespaces[${i}]: a new user namespace needs linux.uidMappings or linux.gidMappings`;
  },
  // time_namespaces(7): offsets can only be written before the first process enters a new namespace.
  'time-offsets': (spec) => {
    const offsets = spec.linux?.timeOffsets;
    if (offsets === undefined) return undefined;
    for (const clock of Object.keys(offsets)) {
      if (!(TIME_OFFSET_CLOCKS as readonly string[]).includes(clock)) {
        return `${formatPath(['linux', 'timeOffsets', clock])}: unknown clock, want "monotonic" or "boottime"`;
      }
    }
    return isNewNamespace(namespaceOf(spec, 'time')) ? undefined : 'linux.timeOffsets: needs a new time namespace';
  },
  // runc: "unable to set hostname without a private UTS namespace".
  'hostname-uts': (spec) =>
    (spec.hostname ?? '') === '' || namespaceOf(spec, 'uts')
      ? undefined
      : 'hostname: cannot set the hostname without a private uts namespace',
  'domainname-uts': (spec) =>
    (spec.domainname ?? '') === '' || namespaceOf(spec, 'uts')
      ? undefined
      : 'domainname: cannot set the domainname without a private uts namespace',
  // runc's rule: a sysctl may be set only in a namespace the container does not share with the host.
  'sysctl-namespace': (spec) => {
    for (const key of Object.keys(spec.linux?.sysctl ?? {})) {
      const problem = sysctlProblem(spec, key);
      if (problem !== undefined) return `${formatPath(['linux', 'sysctl', key])}: ${problem}`;
    }
    return undefined;
  },
  // config-linux.md: maskedPaths and readonlyPaths MUST be absolute paths in the container.
  'masked-paths': (spec) => absolutePaths(spec.linux?.maskedPaths, 'linux.maskedPaths'),
  'readonly-paths': (spec) => absolutePaths(spec.linux?.readonlyPaths, 'linux.readonlyPaths'),
  'rootfs-propagation': (spec) => {
    const value = spec.linux?.rootfsPropagation ?? '';
    if (value === '' || (ROOTFS_PROPAGATIONS as readonly string[]).includes(value)) return undefined;
    return `linux.rootfsPropagation: unknown propagation ${quote(value)}`;
  },
  // config-linux.md: type is c, b, u or p (mknod(1)).
  'device-type': (spec) => {
    for (const [i, d] of (spec.linux?.devices ?? []).entries()) {
      if (!['c', 'b', 'u', 'p'].includes(d.type)) {
        return `linux.devices[${i}].type: unknown device type ${quote(d.type)}, want c, b, u or p`;
      }
    }
    return undefined;
  },
  'device-path': (spec) => {
    for (const [i, d] of (spec.linux?.devices ?? []).entries()) {
      if (!d.path.startsWith('/')) return `linux.devices[${i}].path: must be an absolute path, got ${quote(d.path)}`;
    }
    return undefined;
  },
  // chown(2) takes (uid_t)-1 as "leave unchanged" too; refuse it like every other id (ids.ts).
  'device-ids': (spec) => {
    for (const [i, d] of (spec.linux?.devices ?? []).entries()) {
      const u = d.uid === undefined ? undefined : idProblem(d.uid, 'uid');
      if (u !== undefined) return `linux.devices[${i}].uid: ${u}`;
      const g = d.gid === undefined ? undefined : idProblem(d.gid, 'gid');
      if (g !== undefined) return `linux.devices[${i}].gid: ${g}`;
    }
    return undefined;
  },
  // config-linux.md: major and minor are REQUIRED for c, b and u devices (mknod needs a dev_t).
  'device-number': (spec) => {
    for (const [i, d] of (spec.linux?.devices ?? []).entries()) {
      if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) {
        return `linux.devices[${i}]: major and minor are required for a ${quote(d.type)} device`;
      }
    }
    return undefined;
  },
  // runc with --systemd-cgroup: expected cgroupsPath to be of format "slice:prefix:name".
  'cgroups-path': (spec, ctx) => {
    const value = spec.linux?.cgroupsPath ?? '';
    if (value.includes('\0')) return 'linux.cgroupsPath: contains a NUL byte';
    if (ctx.systemdCgroup === true && value !== '' && value.split(':').length !== 3) {
      return `linux.cgroupsPath: want "slice:prefix:name" with the systemd cgroup driver, got ${quote(value)}`;
    }
    return undefined;
  },
  // config-linux.md: names MUST contain at least one entry.
  'seccomp-names': (spec) => {
    for (const [i, rule] of (spec.linux?.seccomp?.syscalls ?? []).entries()) {
      const at = `linux.seccomp.syscalls[${i}].names`;
      if (rule.names.length === 0) return `${at}: must not be empty`;
      const j = rule.names.indexOf('');
      if (j >= 0) return `${at}[${j}]: must not be empty`;
    }
    return undefined;
  },
  // config-linux.md: when the action doesn't support an errno, the runtime MUST fail.
  'seccomp-errno-ret': (spec) => {
    const seccomp = spec.linux?.seccomp;
    if (seccomp === undefined) return undefined;
    const takesErrno = (action: string) => action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE';
    if (seccomp.defaultErrnoRet !== undefined && !takesErrno(seccomp.defaultAction)) {
      return `linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${seccomp.defaultAction}`;
    }
    for (const [i, rule] of (seccomp.syscalls ?? []).entries()) {
      if (rule.errnoRet !== undefined && !takesErrno(rule.action)) {
        return `linux.seccomp.syscalls[${i}].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${rule.action}`;
      }
    }
    return undefined;
  },
  // config-linux.md: listenerMetadata MUST NOT be set without listenerPath; runc also refuses
  // SCMP_ACT_NOTIFY as the default action (the runtime's own syscalls would block on the agent).
  'seccomp-notify': (spec) => {
    const seccomp = spec.linux?.seccomp;
    if (seccomp === undefined) return undefined;
    if (seccomp.defaultAction === 'SCMP_ACT_NOTIFY') return 'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action';
    const hasListener = (seccomp.listenerPath ?? '') !== '';
    if (!hasListener && (seccomp.listenerMetadata ?? '') !== '') return 'linux.seccomp.listenerMetadata: needs linux.seccomp.listenerPath';
    const i = (seccomp.syscalls ?? []).findIndex((rule) => rule.action === 'SCMP_ACT_NOTIFY');
    if (i >= 0 && !hasListener) return `linux.seccomp.syscalls[${i}].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath`;
    return undefined;
  },
  // A syscall has at most six arguments (syscall(2)); libseccomp rejects any other index.
  'seccomp-arg-index': (spec) => {
    for (const [i, rule] of (spec.linux?.seccomp?.syscalls ?? []).entries()) {
      for (const [j, arg] of (rule.args ?? []).entries()) {
        if (arg.index > 5) return `linux.seccomp.syscalls[${i}].args[${j}].index: must be 0 to 5, got ${arg.index}`;
      }
    }
    return undefined;
  },
} satisfies Record<string, SpecCheck>;

/** The name of a linux check. */
export type LinuxCheckName = keyof typeof LINUX_CHECKS;
