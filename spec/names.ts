/*
 * The closed sets of names the runtime spec refers to by string: namespace types, capabilities,
 * rlimits and rootfs propagation modes. Numbers come from the kernel's uapi headers
 * (linux/sched.h, linux/capability.h, asm-generic/resource.h).
 */

/** Namespace types of runtime-spec 1.2 (config-linux.md#namespaces) and their CLONE_NEW* flags. */
export const NAMESPACE_CLONE_FLAGS = {
  pid: 0x20000000,
  network: 0x40000000,
  mount: 0x00020000,
  ipc: 0x08000000,
  uts: 0x04000000,
  user: 0x10000000,
  cgroup: 0x02000000,
  time: 0x00000080,
} as const;

/** One of the namespace types the spec defines. */
export type NamespaceType = keyof typeof NAMESPACE_CLONE_FLAGS;

/** Whether a string is one of the namespace types the spec defines. */
export function isNamespaceType(name: string): name is NamespaceType {
  return Object.hasOwn(NAMESPACE_CLONE_FLAGS, name);
}

/** Capability names to bit numbers, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40), per capabilities(7). */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
});

/** rlimit names to RLIMIT_* resource numbers, RLIMIT_CPU (0) to RLIMIT_RTTIME (15). */
export const RLIMIT_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
});

/** Values `linux.rootfsPropagation` may take (the spec's four plus runc's recursive forms). */
export const ROOTFS_PROPAGATIONS = [
  'shared',
  'slave',
  'private',
  'unbindable',
  'rshared',
  'rslave',
  'rprivate',
  'runbindable',
] as const;

/** Clocks a time namespace can offset (time_namespaces(7)). */
export const TIME_OFFSET_CLOCKS = ['monotonic', 'boottime'] as const;
