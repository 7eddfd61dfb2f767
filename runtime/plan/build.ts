/*
 * (spec, host facts, options) → Plan. Pure: no I/O, no clock, no randomness, so every plan can be
 * snapshot-tested without root. The order of ops here IS the order the child runs them in; see
 * docs/architecture.md for why each step sits where it does.
 */
import * as path from 'node:path';
import type { Spec } from '../../spec';
import { parseMountOptions, rootfsPropagationFlags, toU64, isNamespaceType, NAMESPACE_CLONE_FLAGS, RLIMIT_NUMBERS, MS_BIND, MS_REC, MS_SLAVE, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_RDONLY, MS_REMOUNT } from '../../spec';
import { TsrunError } from '../../spec/errors';
import type { HostFacts } from '../host/probe';
import { capMask } from './capabilities';
import { HOOK_PHASE, MOUNT_KIND, PIVOT_MODE, PLAN_VERSION, STDIO_INHERIT } from './ops';
import type { Plan, PlanOp, PlanOpOf } from './types';
import { INIT_PROCESS_NAME } from './names';

/** Per-invocation inputs that are not in config.json. */
export interface BuildOptions {
  readonly id: string;
  /** Absolute bundle directory. */
  readonly bundle: string;
  /** Absolute rootfs path (root.path resolved against the bundle). */
  readonly rootfs: string;
  /** Absolute path of the exec fifo init waits on. */
  readonly execFifo: string;
  readonly noPivot: boolean;
  /** --no-new-keyring: keep the caller's session keyring. */
  readonly noNewKeyring: boolean;
  /** Extra fds (3..3+n-1) passed to the container. */
  readonly preserveFds: number;
  /** linux.seccomp compiled to BPF by the caller (libseccomp is I/O); absent when there is none. */
  readonly seccomp?: { readonly filter: Uint8Array; readonly flags: number; readonly needsListener?: boolean } | undefined;
  /** Detached idmapped mount tree fds, by index in spec.mounts (see idmapRequests). */
  readonly idmapFds?: Readonly<Record<number, number>> | undefined;
  /** The runtime runs as a non-root user (setgroups is denied in its user namespace). */
  readonly rootless?: boolean | undefined;
  /** The container's cgroup directory per hierarchy mount point, for `cgroup` mounts. */
  readonly cgroupPaths: Readonly<Record<string, string>>;
  /** Host-side facts about bind sources, looked up by the caller: 'dir' | 'file' | 'missing'. */
  readonly sourceKinds: Readonly<Record<string, 'dir' | 'file' | 'missing'>>;
  /** Caller's fds that become the process's 0, 1, 2 (-1: keep the inherited one); absent: keep all. */
  readonly stdio?: StdioFds | undefined;
  /** CGROUP_JOIN ops (openCgroupJoin): init joins its cgroup itself, right after the namespace ops. */
  readonly cgroupJoin?: readonly PlanOpOf<'CGROUP_JOIN'>[] | undefined;
}

/** fds for the process's 0, 1 and 2, from the caller's table; -1 keeps what the clone inherited. */
export type StdioFds = readonly [number, number, number];

/** The STDIO op for `fds`, placed right after CLOSE_FDS. */
export function stdioOp(fds: StdioFds): PlanOp {
  const f = (fd: number): number => (fd < 0 ? STDIO_INHERIT : fd);
  return { op: 'STDIO', fd0: f(fds[0]), fd1: f(fds[1]), fd2: f(fds[2]) };
}

/** PATH used to find args[0] when process.env has none (containerd sends no env without -t). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Device nodes every container gets unless the config names them (runc's list). */
export const DEFAULT_DEVICES: readonly { path: string; major: number; minor: number }[] = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
];

const DEVICE_TYPE: Readonly<Record<string, number>> = { c: 0x63, u: 0x63, b: 0x62, p: 0x70 };

/** Bind sources the builder wants the caller to stat (relative ones resolved against the bundle). */
export function bindSources(spec: Spec, bundle: string): string[] {
  const out: string[] = [];
  for (const m of spec.mounts ?? []) {
    const opts = parseMountOptions(m.options ?? []);
    if ((opts.isBind || m.type === 'bind') && m.source) out.push(path.resolve(bundle, m.source));
  }
  return out;
}

/** Build the plan the C helper executes for a container's init. */
export function buildPlan(spec: Spec, host: HostFacts, opts: BuildOptions): Plan {
  const ops: PlanOp[] = [];
  const proc = spec.process;
  const linux = spec.linux ?? {};
  const hooks = spec.hooks ?? {};

  ops.push({ op: 'CLOSE_FDS', preserve: opts.preserveFds });
  if (opts.stdio !== undefined) ops.push(stdioOp(opts.stdio));
  ops.push({ op: 'SET_NAME', name: INIT_PROCESS_NAME });
  for (const ns of linux.namespaces ?? []) {
    ops.push({ op: 'NAMESPACE', nstype: isNamespaceType(ns.type) ? NAMESPACE_CLONE_FLAGS[ns.type] : 0, path: ns.path ?? '' });
  }
  ops.push(...(opts.cgroupJoin ?? []));
  const offsets = linux.timeOffsets;
  if (offsets && Object.keys(offsets).length > 0) {
    const o = (clock: string) => offsets[clock] ?? {};
    ops.push({
      op: 'TIME_OFFSETS',
      monotonic_secs: BigInt.asUintN(64, BigInt(o('monotonic').secs ?? 0)),
      monotonic_nsecs: o('monotonic').nanosecs ?? 0,
      boottime_secs: BigInt.asUintN(64, BigInt(o('boottime').secs ?? 0)),
      boottime_nsecs: o('boottime').nanosecs ?? 0,
    });
  }
  // These two open host files while init still has its host credentials: after it becomes root
  // of a user namespace whose 0 maps to another host uid, the private state directory and its own
  // /proc files are closed to it.
  ops.push({ op: 'EXEC_FIFO', path: opts.execFifo });
  if (proc?.oomScoreAdj !== undefined) ops.push({ op: 'OOM_SCORE_ADJ', value: BigInt.asUintN(64, BigInt(proc.oomScoreAdj)) });
  if (createsUserNamespace(spec)) {
    // The runtime has written the id maps before GO; become root of the new namespace before
    // anything else, so mounts and files are made by (and owned by) the container's root.
    ops.push({ op: 'USER', uid: 0, gid: 0, groups: [], setgroups: 0 });
  }

  if (!opts.noNewKeyring) ops.push({ op: 'SESSION_KEYRING', name: `_ses.${opts.id}` });

  // Mount set-up, all relative to the rootfs before pivot_root. Without a mount namespace the
  // container shares ours: the mounts are made there, under the rootfs (runc does the same), and
  // the root changes by chroot only (see PIVOT_MODE.CHROOT).
  const ownMountNs = hasMountNamespace(spec);
  if (!ownMountNs) refuseWithoutMountNs(spec);
  const propagation = !ownMountNs ? 0n : linux.rootfsPropagation ? BigInt(rootfsPropagationFlags(linux.rootfsPropagation)) : BigInt(MS_SLAVE | MS_REC);
  ops.push({ op: 'ROOTFS', path: opts.rootfs, propagation });
  (spec.mounts ?? []).forEach((m, i) => ops.push(...mountOps(m, i, host, opts)));
  ops.push(...deviceOps(spec, host));

  // createRuntime and prestart hooks run in the runtime's namespaces, after the mounts and
  // before pivot_root (runtime-spec config.md#createruntime-hooks); the child waits for them.
  if ((hooks.prestart?.length ?? 0) + (hooks.createRuntime?.length ?? 0) > 0) {
    ops.push({ op: 'SYNC', stage: HOOK_PHASE.CREATE_RUNTIME });
  }
  for (const h of hooks.createContainer ?? []) ops.push(hookOp(HOOK_PHASE.CREATE_CONTAINER, h));

  ops.push({ op: 'PIVOT', mode: !ownMountNs ? PIVOT_MODE.CHROOT : opts.noPivot ? PIVOT_MODE.MOVE_CHROOT : PIVOT_MODE.PIVOT_ROOT });
  // The pty comes from the container's own devpts, so it is made after pivot_root.
  if (proc?.terminal) ops.push(consoleOp(proc, true));

  if (spec.hostname !== undefined && spec.hostname !== '') ops.push({ op: 'HOSTNAME', name: spec.hostname });
  if (spec.domainname !== undefined && spec.domainname !== '') ops.push({ op: 'DOMAINNAME', name: spec.domainname });
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) ops.push({ op: 'SYSCTL', key, value });
  for (const p of linux.readonlyPaths ?? []) ops.push({ op: 'READONLY_PATH', path: p });
  for (const p of linux.maskedPaths ?? []) ops.push({ op: 'MASK_PATH', path: p });
  if (spec.root?.readonly) ops.push({ op: 'ROOT_READONLY' });

  if (proc) ops.push(...processOps(proc, linux, host, opts));
  const lateSeccomp = proc?.noNewPrivileges ? seccompOp(opts) : undefined;
  // A filter with a user-notification listener goes in before CREATED, so its fd reaches `create`
  // (which passes it to the agent) before create returns; runc orders it the same way.
  if (lateSeccomp && opts.seccomp?.needsListener) ops.push(lateSeccomp);
  ops.push({ op: 'CREATED' });
  ops.push({ op: 'WAIT_START' });
  for (const h of hooks.startContainer ?? []) ops.push(hookOp(HOOK_PHASE.START_CONTAINER, h));
  if (lateSeccomp && !opts.seccomp?.needsListener) ops.push(lateSeccomp);
  ops.push({ op: 'EXEC' });
  return { version: PLAN_VERSION, ops };
}

/** The CONSOLE op for process.terminal; /dev/console is only bound for a container's init. */
export function consoleOp(proc: NonNullable<Spec['process']>, mountConsole: boolean): PlanOpOf<'CONSOLE'> {
  return { op: 'CONSOLE', rows: proc.consoleSize?.height ?? 0, cols: proc.consoleSize?.width ?? 0, mount_console: mountConsole ? 1 : 0 };
}

/** What processOps needs from the build options (shared by create and exec plans). */
export type ProcessOpsOptions = Pick<BuildOptions, 'seccomp' | 'rootless'>;

function seccompOp(opts: ProcessOpsOptions): PlanOpOf<'SECCOMP'> | undefined {
  return opts.seccomp ? { op: 'SECCOMP', flags: opts.seccomp.flags, filter: opts.seccomp.filter } : undefined;
}

/**
 * The process half of a plan, from cwd to PROCESS: limits and scheduling before privileges drop,
 * seccomp early when there is no no_new_privs, then bounding set, user, capabilities, umask,
 * no_new_privs, personality, and the program lookup. The caller adds the late seccomp op.
 */
export function processOps(proc: NonNullable<Spec['process']>, linux: NonNullable<Spec['linux']>, host: HostFacts, opts: ProcessOpsOptions): PlanOp[] {
  const ops: PlanOp[] = [];
  // The cwd is created and entered as root, before the user switch, so a cwd the user cannot
  // create still works (runc does the same); the C side checks it is inside the root.
  ops.push({ op: 'CWD', path: proc.cwd });
  for (const r of proc.rlimits ?? []) {
    ops.push({ op: 'RLIMIT', resource: RLIMIT_NUMBERS[r.type] ?? 0, soft: toU64(r.soft), hard: toU64(r.hard) });
  }
  if (proc.scheduler) ops.push(schedulerOp(proc.scheduler));
  if (proc.ioPriority) ops.push({ op: 'IO_PRIORITY', value: ((IO_CLASSES[proc.ioPriority.class] ?? 0) << 13) | ((proc.ioPriority.priority ?? 0) & 0x1fff) });
  // seccomp(2) needs no_new_privs or CAP_SYS_ADMIN. Without no_new_privs (docker, podman) the
  // filter goes in now, while the process still has its capabilities, as runc does; with it, last.
  const early = proc.noNewPrivileges ? undefined : seccompOp(opts);
  if (early) ops.push(early);
  const caps = proc.capabilities;
  if (caps) ops.push({ op: 'CAPS_BOUNDING', bounding: capMask(caps.bounding, host.capLastCap) });
  const user = proc.user;
  if (opts.rootless && (user.additionalGids ?? []).length > 0) {
    throw new TsrunError('InvalidArgument', 'process.user.additionalGids: supplementary groups cannot be set by a rootless runtime (setgroups is denied in its user namespace)');
  }
  ops.push({
    op: 'USER',
    uid: user.uid,
    gid: user.gid,
    groups: user.additionalGids ?? [],
    // setgroups must run so the caller's supplementary groups do not leak into the container,
    // except rootless, where the runtime had to write "deny" to setgroups to map gids at all.
    setgroups: opts.rootless ? 0 : 1,
  });
  if (caps) {
    ops.push({
      op: 'CAPS',
      effective: capMask(caps.effective, host.capLastCap),
      permitted: capMask(caps.permitted, host.capLastCap),
      inheritable: capMask(caps.inheritable, host.capLastCap),
      ambient: capMask(caps.ambient, host.capLastCap),
    });
  }
  if (user.umask !== undefined) ops.push({ op: 'UMASK', mask: user.umask });
  if (proc.noNewPrivileges) ops.push({ op: 'NO_NEW_PRIVS' });
  if (linux.personality) ops.push({ op: 'PERSONALITY', persona: personaOf(linux.personality) });
  ops.push({ op: 'PROCESS', args: proc.args ?? [], env: proc.env ?? [], default_path: DEFAULT_PATH });
  return ops;
}

/** The config has a mount namespace (a new one, or one joined by path). */
export function hasMountNamespace(spec: Spec): boolean {
  return (spec.linux?.namespaces ?? []).some((n) => n.type === 'mount');
}

/**
 * What only a mount namespace of its own can give a container: each would change the caller's
 * mounts. runc refuses masked and read-only paths the same way; it silently skips a read-only
 * root and applies rootfsPropagation to the caller's "/", which we refuse instead.
 */
function refuseWithoutMountNs(spec: Spec): void {
  const linux = spec.linux ?? {};
  const why = 'needs a mount namespace (linux.namespaces has no "mount" entry, so the container shares the caller\'s mounts)';
  if ((linux.maskedPaths?.length ?? 0) > 0) throw new TsrunError('InvalidArgument', `linux.maskedPaths: ${why}`);
  if ((linux.readonlyPaths?.length ?? 0) > 0) throw new TsrunError('InvalidArgument', `linux.readonlyPaths: ${why}`);
  if (linux.rootfsPropagation) throw new TsrunError('InvalidArgument', `linux.rootfsPropagation: ${why}`);
  if (spec.root?.readonly) throw new TsrunError('InvalidArgument', `root.readonly: ${why}`);
}

/** The config asks for a new user namespace (not one joined by path). */
export function createsUserNamespace(spec: Spec): boolean {
  return (spec.linux?.namespaces ?? []).some((n) => n.type === 'user' && !n.path);
}

/** sched(7) policy numbers and sched_setattr(2) flag bits. */
const SCHED_POLICIES: Readonly<Record<string, number>> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};
const SCHED_FLAGS: Readonly<Record<string, number>> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01, SCHED_FLAG_RECLAIM: 0x02, SCHED_FLAG_DL_OVERRUN: 0x04, SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10, SCHED_FLAG_UTIL_CLAMP_MIN: 0x20, SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};
/** ioprio classes (linux/ioprio.h). */
const IO_CLASSES: Readonly<Record<string, number>> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };

function schedulerOp(sc: NonNullable<NonNullable<Spec['process']>['scheduler']>): PlanOpOf<'SCHEDULER'> {
  let flags = 0n;
  for (const f of sc.flags ?? []) flags |= BigInt(SCHED_FLAGS[f] ?? 0);
  return {
    op: 'SCHEDULER',
    policy: SCHED_POLICIES[sc.policy] ?? 0,
    flags,
    nice: (sc.nice ?? 0) >>> 0,
    priority: sc.priority ?? 0,
    runtime: toU64(sc.runtime ?? 0),
    deadline: toU64(sc.deadline ?? 0),
    period: toU64(sc.period ?? 0),
  };
}

/** personality(2) value: PER_LINUX or PER_LINUX32; runc supports no personality flags either. */
function personaOf(p: NonNullable<NonNullable<Spec['linux']>['personality']>): number {
  if ((p.flags ?? []).length > 0) {
    throw new TsrunError('InvalidArgument', `linux.personality.flags: ${JSON.stringify(p.flags)}: personality flags are not supported`);
  }
  return p.domain === 'LINUX32' ? 0x0008 : 0x0000;
}

type SpecMount = NonNullable<Spec['mounts']>[number];
type SpecHook = NonNullable<NonNullable<Spec['hooks']>['prestart']>[number];

function hookOp(phase: number, h: SpecHook): PlanOpOf<'HOOK'> {
  return { op: 'HOOK', phase, path: h.path, args: h.args ?? [h.path], env: h.env ?? [], timeout: h.timeout ?? 0 };
}

/** Container paths are absolute; a relative destination is taken relative to "/" (runc does). */
function containerPath(p: string): string {
  return path.posix.resolve('/', p);
}

/** What the runtime must prepare for one idmapped bind mount (the tree is built outside the plan). */
export interface IdmapRequest {
  readonly index: number;
  readonly source: string;
  readonly uidMap: string;
  readonly gidMap: string;
  readonly recursive: boolean;
  readonly attrSet: bigint;
  readonly attrClr: bigint;
}

/** mount_setattr(2) attributes for the per-mount flags an idmapped bind asks for. */
const ATTR_OF_FLAG: readonly [number, number][] = [
  [MS_RDONLY, 0x1],
  [MS_NOSUID, 0x2],
  [MS_NODEV, 0x4],
  [MS_NOEXEC, 0x8],
];

/** The text of a uid_map/gid_map file: "inside outside count" per line (user_namespaces(7)). */
export const mapText = (ms: readonly { containerID: number; hostID: number; size: number }[] | undefined): string =>
  (ms ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

/** The idmapped mounts of a config (idmap/ridmap option, or mappings given) and how to build them. */
export function idmapRequests(spec: Spec, bundle: string): IdmapRequest[] {
  const out: IdmapRequest[] = [];
  (spec.mounts ?? []).forEach((m, index) => {
    const o = parseMountOptions(m.options ?? []);
    if (!o.isIdmap && (m.uidMappings?.length ?? 0) === 0 && (m.gidMappings?.length ?? 0) === 0) return;
    if (!(o.isBind || m.type === 'bind')) {
      throw new TsrunError('InvalidArgument', `mounts[${index}]: idmapped mounts must be bind mounts (type ${JSON.stringify(m.type ?? '')})`);
    }
    let attrSet = BigInt(o.recAttrSet);
    for (const [flag, attr] of ATTR_OF_FLAG) if ((o.flags & flag) !== 0) attrSet |= BigInt(attr);
    out.push({
      index,
      source: path.resolve(bundle, m.source ?? ''),
      uidMap: mapText(m.uidMappings),
      gidMap: mapText(m.gidMappings),
      recursive: o.isRecursiveBind || o.isRecursiveIdmap,
      attrSet,
      attrClr: BigInt(o.recAttrClr),
    });
  });
  return out;
}

function mountOps(m: SpecMount, index: number, host: HostFacts, opts: BuildOptions): (PlanOpOf<'MOUNT'> | PlanOpOf<'IDMAP_MOUNT'>)[] {
  const o = parseMountOptions(m.options ?? []);
  const destination = containerPath(m.destination);
  const isBind = o.isBind || m.type === 'bind';
  const treeFd = opts.idmapFds?.[index];
  if (treeFd !== undefined) {
    const source = path.resolve(opts.bundle, m.source ?? '');
    const k = opts.sourceKinds[source];
    return [{ op: 'IDMAP_MOUNT', source, destination, kind: k === 'file' ? MOUNT_KIND.FILE : k === 'dir' ? MOUNT_KIND.DIR : MOUNT_KIND.AUTO, tree_fd: treeFd }];
  }
  if (m.type === 'cgroup' && !isBind) return cgroupMountOps(destination, o.flags, host, opts.cgroupPaths);
  let flags = BigInt(o.flags);
  let source = m.source ?? '';
  let kind: number = MOUNT_KIND.DIR;
  if (isBind) {
    flags |= BigInt(MS_BIND);
    if (o.isRecursiveBind) flags |= BigInt(MS_REC);
    source = path.resolve(opts.bundle, source);
    const k = opts.sourceKinds[source];
    kind = k === 'file' ? MOUNT_KIND.FILE : k === 'dir' ? MOUNT_KIND.DIR : MOUNT_KIND.AUTO;
  }
  return [
    {
      op: 'MOUNT',
      source,
      destination,
      fstype: isBind ? '' : (m.type ?? ''),
      flags,
      propagation: BigInt(o.propagation),
      data: o.data,
      kind,
      rec_attr_set: BigInt(o.recAttrSet),
      rec_attr_clr: BigInt(o.recAttrClr),
    },
  ];
}

/**
 * A cgroup mount. On v1 (and hybrid) hosts it is a tmpfs with one read-only bind per hierarchy
 * of the container's own cgroup (what runc and crun do without a cgroup namespace); on a unified
 * host it is the container's cgroup2 directory bound in.
 */
function cgroupMountOps(destination: string, optionFlags: number | bigint, host: HostFacts, dirs: Readonly<Record<string, string>>): PlanOpOf<'MOUNT'>[] {
  const readOnly = (BigInt(optionFlags) & BigInt(MS_RDONLY)) !== 0n;
  const base = BigInt(MS_NOSUID | MS_NODEV | MS_NOEXEC);
  const mk = (source: string, dest: string, fstype: string, flags: bigint, data: string): PlanOpOf<'MOUNT'> => ({
    op: 'MOUNT', source, destination: dest, fstype, flags, propagation: 0n, data, kind: MOUNT_KIND.DIR, rec_attr_set: 0n, rec_attr_clr: 0n,
  });
  const bindFlags = BigInt(MS_BIND | MS_REC) | base | (readOnly ? BigInt(MS_RDONLY) : 0n);
  const entries = Object.entries(dirs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (host.cgroupMode === 'unified') return entries.slice(0, 1).map(([, dir]) => mk(dir, destination, '', bindFlags, ''));
  const ops: PlanOpOf<'MOUNT'>[] = [mk('tmpfs', destination, 'tmpfs', base, 'mode=755')];
  for (const [mountpoint, dir] of entries) ops.push(mk(dir, path.posix.join(destination, path.posix.basename(mountpoint)), '', bindFlags, ''));
  if (readOnly) ops.push(mk('tmpfs', destination, 'tmpfs', BigInt(MS_REMOUNT | MS_RDONLY) | base, 'mode=755'));
  return ops;
}

function deviceOps(spec: Spec, host: HostFacts): PlanOp[] {
  const ops: PlanOp[] = [];
  const listed = new Set<string>();
  for (const d of spec.linux?.devices ?? []) {
    const p = containerPath(d.path);
    listed.add(p);
    ops.push({
      op: 'DEVICE',
      path: p,
      type: DEVICE_TYPE[d.type] ?? 0,
      major: d.major ?? 0,
      minor: d.minor ?? 0,
      mode: (d.fileMode ?? 0o666) & 0o7777,
      uid: d.uid ?? 0,
      gid: d.gid ?? 0,
      bind: 0,
    });
  }
  for (const d of DEFAULT_DEVICES) {
    if (listed.has(d.path)) continue;
    ops.push({ op: 'DEVICE', path: d.path, type: DEVICE_TYPE['c']!, major: d.major, minor: d.minor, mode: 0o666, uid: 0, gid: 0, bind: 0 });
  }
  const links: [string, string][] = [
    ['/proc/self/fd', '/dev/fd'],
    ['/proc/self/fd/0', '/dev/stdin'],
    ['/proc/self/fd/1', '/dev/stdout'],
    ['/proc/self/fd/2', '/dev/stderr'],
    ['pts/ptmx', '/dev/ptmx'],
  ];
  if (host.hasKcore) links.push(['/proc/kcore', '/dev/core']);
  for (const [target, linkpath] of links) if (!listed.has(linkpath)) ops.push({ op: 'SYMLINK', target, linkpath });
  return ops;
}
