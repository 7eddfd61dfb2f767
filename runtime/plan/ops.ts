/*
 * The plan wire format: the single source of truth for op codes, field layouts, sync message
 * types and failure stages. `scripts/gen-plan-header.ts` turns this file into
 * `native-helpers/plan_ops.h`; `make check-generated` fails when the two drift.
 *
 * All integers are little-endian.
 *
 *   plan   := header op*
 *   header := magic:u32 ("TSPL" = 0x4c505354) version:u32 op_count:u32 total_len:u32
 *   op     := code:u16 reserved:u16 (= 0) payload_len:u32 payload
 *   payload:= the op's fields, in the order OP_FIELDS gives, with nothing left over
 *
 *   field kinds
 *     u32     4 bytes
 *     u64     8 bytes (i64 values travel as two's complement in a u64)
 *     str     len:u32 bytes[len] 0x00   (len excludes the NUL; no NUL inside)
 *     strlist count:u32 str*count
 *     u32list count:u32 u32*count
 *     bytes   len:u32 bytes[len]        (raw, may contain NULs; no terminator)
 *
 * The C helper decodes and checks the whole plan before it clones, so the child never meets a
 * malformed op. Ops run in plan order; the builder (`build.ts`) owns the order, and the
 * executor only insists on a few invariants (CLOSE_FDS first, EXEC last).
 *
 * Sync messages on the SOCK_SEQPACKET socket between the runtime and the child (one datagram each):
 *
 *   msg := type:u32 stage:u32 errno:i32 value:i32 payload
 *
 *   runtime (tsrun_spawn in C, then JS)   child (init)
 *     | <──── PID (value = init pid) ──── |   second fork only; consumed inside tsrun_spawn (with a
 *     |                                   |   pivot-first one: the set-up process's own pid)
 *     | ──── GO (payload: hook states) ─> |   the child waits for it after the NAMESPACE ops
 *     | <──── HOOKS (stage) ───────────── |   at a SYNC op: run createRuntime/prestart hooks
 *     | ──── RESUME or ABORT ────────────>|   ABORT: the child exits quietly (the runtime knows why)
 *     | <──── PID (value = init pid) ──── |   pivot-first second fork: init is born after PIVOT,
 *     | ──── GO (payload: hook states) ─> |   and waits for a GO of its own (states with its pid)
 *     | <──── CONSOLE_FD (SCM_RIGHTS) ─── |   process.terminal: the pty master, for --console-socket
 *     | <──── SECCOMP_FD (SCM_RIGHTS) ─── |   filter with a listener: the runtime passes it on
 *     | <──── CREATED (payload: facts) ── |   set-up done; "dumpable=0 nspid=1"; init blocks on the fifo
 *     | <──── ERROR {stage,errno,msg} ─── |   any failure; value 1 = the message is complete (do not
 *     |                                   |   append strerror text). Exit 1, or 127/126 when exec fails
 *
 * GO's payload is two NUL-terminated JSON documents: the state given to createContainer hooks,
 * then the state given to startContainer hooks. They carry the config's annotations, of any size:
 * a payload larger than one datagram (SYNC_MAX_BYTES) travels in a sealed memfd passed with
 * SCM_RIGHTS on a GO without payload (tsrun_sync_send does this by itself).
 *
 * Beyond field framing, the decoder enforces the order rules docs/native-helper.md lists
 * (CLOSE_FDS first, NAMESPACE ops before the rest, ROOTFS before mounts, SECCOMP after PIVOT,
 * EXEC last, …), so a plan the builder gets wrong fails before anything is cloned.
 */

/** Plan format version; bump on any change to ops, fields or messages. */
export const PLAN_VERSION = 5;

/** Magic number at the start of every plan ("TSPL" little-endian). */
export const PLAN_MAGIC = 0x4c505354;

/**
 * Largest plan the helper accepts, in bytes. The plan travels in a sealed memfd (never the sync
 * socket), so this only bounds what a config can make the helper decode; it must stay above the
 * documented config.json size cap (a plan holds less than its config).
 */
export const PLAN_MAX_BYTES = 64 * 1024 * 1024;

/** Largest sync datagram; a bigger GO payload goes in a sealed memfd (see above). */
export const SYNC_MAX_BYTES = 128 * 1024;

/** The field kinds a payload is made of. */
export type FieldKind = 'u32' | 'u64' | 'str' | 'strlist' | 'u32list' | 'bytes';

/** Op codes; each names one step the child performs between clone and exec. */
export const OP = {
  /** Close every fd except 0-2, the sync socket, and fds 3..3+preserve-1 (cleared of CLOEXEC). Must be first. */
  CLOSE_FDS: 1,
  /** A namespace: path "" creates it (clone/unshare), otherwise it is joined with setns. */
  NAMESPACE: 2,
  /** Runtime-side sync point: the child sends HOOKS(stage) and waits for RESUME. */
  SYNC: 3,
  /** Set the propagation of "/", bind the rootfs onto itself, and open it for safe resolution. */
  ROOTFS: 4,
  /** One mount; the destination is resolved inside the rootfs without leaving it. */
  MOUNT: 5,
  /** Create a device node (or bind it from the host) inside the rootfs. */
  DEVICE: 6,
  /** Create a symlink inside the rootfs unless something already exists at linkpath. */
  SYMLINK: 7,
  /** Run a hook inside the container's namespaces (createContainer, startContainer). */
  HOOK: 8,
  /** Make the rootfs the root: pivot_root, or MS_MOVE + chroot with --no-pivot. */
  PIVOT: 9,
  /** Mask a path: /dev/null over files, a read-only tmpfs over directories; missing paths skipped. */
  MASK_PATH: 10,
  /** Make a path read-only (recursive bind remount); missing paths skipped. */
  READONLY_PATH: 11,
  /** Remount the root read-only (root.readonly). */
  ROOT_READONLY: 12,
  HOSTNAME: 13,
  DOMAINNAME: 14,
  /** Write a sysctl under /proc/sys inside the container's namespaces. */
  SYSCTL: 15,
  /** Write /proc/self/oom_score_adj. */
  OOM_SCORE_ADJ: 16,
  /** setrlimit; applied before privileges drop. */
  RLIMIT: 17,
  /** setgroups, setgid, setuid. */
  USER: 18,
  UMASK: 19,
  /** chdir, then check that the cwd is inside the container's root. */
  CWD: 20,
  /** Open the exec fifo (O_RDWR) while the host path is still reachable. */
  EXEC_FIFO: 21,
  /** Resolve args[0] through PATH and check it can be executed, before CREATED. */
  PROCESS: 22,
  /** Tell the runtime the container is created; clears the parent-death signal. */
  CREATED: 23,
  /** Block until `start` writes to the exec fifo. */
  WAIT_START: 24,
  NO_NEW_PRIVS: 25,
  /** Effective, permitted, inheritable and ambient capability sets; runs after USER. */
  CAPS: 26,
  /** Install a compiled seccomp filter (sock_filter array); after PIVOT, placed by the builder (see build.ts). */
  SECCOMP: 27,
  /** execve the resolved program. Must be last. */
  EXEC: 28,
  /** Set the comm name (prctl PR_SET_NAME), so `ps` shows which stage a process is in. */
  SET_NAME: 29,
  /** Drop every capability outside the bounding set and set PR_SET_KEEPCAPS; runs before USER. */
  CAPS_BOUNDING: 30,
  /** Join a new session keyring with this name, so the container does not share the caller's (unless --no-new-keyring). */
  SESSION_KEYRING: 31,
  /** sched_setattr(2) for process.scheduler; before privileges drop (RT policies need CAP_SYS_NICE). */
  SCHEDULER: 32,
  /** ioprio_set(2) with (class << 13) | level for process.ioPriority. */
  IO_PRIORITY: 33,
  /** personality(2) for linux.personality (the execution domain exec uses). */
  PERSONALITY: 34,
  /**
   * linux.timeOffsets of a new time namespace. The offsets must be written after unshare and
   * before the namespace's first process exists, so the NAMESPACE group applies them (in the
   * intermediate, before the second fork); this op only carries them.
   */
  TIME_OFFSETS: 35,
  /**
   * An idmapped bind mount. The runtime builds the detached, idmapped mount tree (open_tree +
   * mount_setattr need CAP_SYS_ADMIN over the host filesystem, which init gives up with its own
   * user namespace); init move_mounts tree_fd onto the destination, resolved inside the rootfs.
   * CLOSE_FDS keeps tree_fd open for it.
   */
  IDMAP_MOUNT: 36,
  /**
   * process.terminal: open the container's /dev/ptmx, take the peer (TIOCGPTPEER), set the window
   * size, bind the slave over /dev/console (init only), send the master to the runtime
   * (CONSOLE_FD), and make the slave fds 0-2 and the controlling terminal.
   */
  CONSOLE: 37,
  /**
   * exec: join the namespaces in `nstypes` of the process `fd` names (a pidfd the runtime opened
   * after checking init's identity, inherited through clone) in one setns(2) call: atomic, and
   * immune to pid reuse (Linux 5.8+). Runs just before the NAMESPACE group, which then skips the
   * types joined here; on EINVAL (an older kernel) the group joins by path as before.
   */
  NS_PIDFD: 38,
  /**
   * The fds the process gets as 0, 1 and 2: each field names an fd inherited through clone (the
   * caller's pipe, FIFO, socket or file), or STDIO_INHERIT to keep what 0-2 already are. Applied
   * before anything else (before CLOSE_FDS, which then closes the sources), so a caller serving
   * several containers need not point its own 0-2 anywhere. Right after CLOSE_FDS, at most once.
   */
  STDIO: 39,
  /**
   * Join the container's cgroup in one hierarchy, from inside, before the process runs anything
   * of the container's. `fd` was opened by the runtime and is inherited through clone; the kernel
   * checks the opener's credentials and cgroup namespace, so the joins work from inside new
   * user and cgroup namespaces too.
   *   TASKS  a cgroup v1 `tasks` file: the process writes "0" (itself; it has one thread). A
   *          thread moving itself skips the kernel's global threadgroup lock, whose first writer
   *          waits for an RCU grace period (7-15 ms, every create) when the runtime writes the
   *          pid to cgroup.procs instead.
   *   INTO   a cgroup v2 directory: the clone that makes the process passes it with
   *          CLONE_INTO_CGROUP (Linux 5.7+), which takes no such lock either.
   *   PROCS  that directory's cgroup.procs: the process writes "0" there only if that clone
   *          could not be made (no clone3; or a cgroup namespace with nsdelegate).
   * The ops directly follow the namespace ops; at most one INTO and one PROCS. The process joins
   * before it creates a cgroup namespace, so the container sees its own cgroup as "/" (the clone
   * leaves CLONE_NEWCGROUP out and the last CGROUP_JOIN unshares it).
   */
  CGROUP_JOIN: 40,
} as const;

/** CGROUP_JOIN.mode values. */
export const CGROUP_JOIN_MODE = { TASKS: 0, INTO: 1, PROCS: 2 } as const;

/** A STDIO field that keeps the inherited fd. */
export const STDIO_INHERIT = 0xffffffff;

/** The name of an op. */
export type OpName = keyof typeof OP;

/** Field layout per op, in wire order. */
export const OP_FIELDS = {
  CLOSE_FDS: [['preserve', 'u32']],
  NAMESPACE: [
    ['nstype', 'u32'],
    ['path', 'str'],
  ],
  SYNC: [['stage', 'u32']],
  NS_PIDFD: [
    ['fd', 'u32'],
    ['nstypes', 'u32'],
  ],
  STDIO: [
    ['fd0', 'u32'],
    ['fd1', 'u32'],
    ['fd2', 'u32'],
  ],
  ROOTFS: [
    ['path', 'str'],
    ['propagation', 'u64'],
  ],
  MOUNT: [
    ['source', 'str'],
    ['destination', 'str'],
    ['fstype', 'str'],
    ['flags', 'u64'],
    ['propagation', 'u64'],
    ['data', 'str'],
    ['kind', 'u32'],
    ['rec_attr_set', 'u64'],
    ['rec_attr_clr', 'u64'],
  ],
  DEVICE: [
    ['path', 'str'],
    ['type', 'u32'],
    ['major', 'u32'],
    ['minor', 'u32'],
    ['mode', 'u32'],
    ['uid', 'u32'],
    ['gid', 'u32'],
    ['bind', 'u32'],
  ],
  SYMLINK: [
    ['target', 'str'],
    ['linkpath', 'str'],
  ],
  HOOK: [
    ['phase', 'u32'],
    ['path', 'str'],
    ['args', 'strlist'],
    ['env', 'strlist'],
    ['timeout', 'u32'],
  ],
  PIVOT: [['mode', 'u32']],
  MASK_PATH: [['path', 'str']],
  READONLY_PATH: [['path', 'str']],
  ROOT_READONLY: [],
  HOSTNAME: [['name', 'str']],
  DOMAINNAME: [['name', 'str']],
  SYSCTL: [
    ['key', 'str'],
    ['value', 'str'],
  ],
  OOM_SCORE_ADJ: [['value', 'u64']],
  RLIMIT: [
    ['resource', 'u32'],
    ['soft', 'u64'],
    ['hard', 'u64'],
  ],
  USER: [
    ['uid', 'u32'],
    ['gid', 'u32'],
    ['groups', 'u32list'],
    ['setgroups', 'u32'],
  ],
  UMASK: [['mask', 'u32']],
  CWD: [['path', 'str']],
  EXEC_FIFO: [['path', 'str']],
  PROCESS: [
    ['args', 'strlist'],
    ['env', 'strlist'],
    ['default_path', 'str'],
  ],
  CREATED: [],
  WAIT_START: [],
  NO_NEW_PRIVS: [],
  CAPS: [
    ['effective', 'u64'],
    ['permitted', 'u64'],
    ['inheritable', 'u64'],
    ['ambient', 'u64'],
  ],
  SECCOMP: [
    ['flags', 'u32'],
    ['filter', 'bytes'],
  ],
  EXEC: [],
  SET_NAME: [['name', 'str']],
  CAPS_BOUNDING: [['bounding', 'u64']],
  SESSION_KEYRING: [['name', 'str']],
  SCHEDULER: [
    ['policy', 'u32'],
    ['flags', 'u64'],
    ['nice', 'u32'],
    ['priority', 'u32'],
    ['runtime', 'u64'],
    ['deadline', 'u64'],
    ['period', 'u64'],
  ],
  IO_PRIORITY: [['value', 'u32']],
  PERSONALITY: [['persona', 'u32']],
  TIME_OFFSETS: [
    ['monotonic_secs', 'u64'],
    ['monotonic_nsecs', 'u32'],
    ['boottime_secs', 'u64'],
    ['boottime_nsecs', 'u32'],
  ],
  IDMAP_MOUNT: [
    ['source', 'str'],
    ['destination', 'str'],
    ['kind', 'u32'],
    ['tree_fd', 'u32'],
  ],
  CONSOLE: [
    ['rows', 'u32'],
    ['cols', 'u32'],
    ['mount_console', 'u32'],
  ],
  CGROUP_JOIN: [
    ['fd', 'u32'],
    ['mode', 'u32'],
  ],
} as const satisfies Record<OpName, readonly (readonly [string, FieldKind])[]>;

/** MOUNT.kind: what to create at a missing destination, decided by the builder. */
export const MOUNT_KIND = {
  /** A directory (every non-bind mount, and binds of directories). */
  DIR: 0,
  /** An empty regular file (bind of a file). */
  FILE: 1,
  /** Decide from the bind source at mount time (source did not exist when the plan was built). */
  AUTO: 2,
} as const;

/**
 * PIVOT.mode values. CHROOT is for a container without a mount namespace of its own: it shares
 * the caller's, where pivot_root or a move of the rootfs would change the caller's root, so the
 * root is only changed for the process (as runc does); ROOTFS then leaves the caller's mounts alone.
 */
export const PIVOT_MODE = { PIVOT_ROOT: 0, MOVE_CHROOT: 1, CHROOT: 2 } as const;

/** HOOK.phase and SYNC.stage values. */
export const HOOK_PHASE = {
  PRESTART: 0,
  CREATE_RUNTIME: 1,
  CREATE_CONTAINER: 2,
  START_CONTAINER: 3,
  POSTSTART: 4,
  POSTSTOP: 5,
} as const;

/** Sync message types. */
export const MSG = {
  GO: 1,
  PID: 2,
  HOOKS: 3,
  RESUME: 4,
  CREATED: 5,
  ERROR: 6,
  ABORT: 7,
  /** The seccomp user-notification listener fd, as SCM_RIGHTS (SECCOMP with NEW_LISTENER). */
  SECCOMP_FD: 8,
  /** The pty master of process.terminal, as SCM_RIGHTS (CONSOLE). */
  CONSOLE_FD: 9,
} as const;

/** Length of a sync message header: type, stage, errno, value. */
export const MSG_HEADER_BYTES = 16;

/**
 * Failure stages, reported in ERROR records and in decode failures, so an error can say where
 * set-up stopped. Names are what error messages print.
 */
export const STAGE = {
  DECODE: 1,
  CLONE: 2,
  SYNC: 3,
  CLOSE_FDS: 4,
  NAMESPACE: 5,
  ROOTFS: 6,
  MOUNT: 7,
  DEVICE: 8,
  SYMLINK: 9,
  HOOK: 10,
  PIVOT: 11,
  MASK_PATH: 12,
  READONLY_PATH: 13,
  HOSTNAME: 14,
  SYSCTL: 15,
  OOM_SCORE_ADJ: 16,
  RLIMIT: 17,
  USER: 18,
  CWD: 19,
  EXEC_FIFO: 20,
  PROCESS: 21,
  WAIT_START: 22,
  CAPS: 23,
  SECCOMP: 24,
  EXEC: 25,
  SIGNALS: 26,
  PRCTL: 27,
  ROOT_READONLY: 28,
  DOMAINNAME: 29,
  UMASK: 30,
  CREATED: 31,
  SET_NAME: 32,
  NO_NEW_PRIVS: 33,
  CAPS_BOUNDING: 34,
  SESSION_KEYRING: 35,
  SCHEDULER: 36,
  IO_PRIORITY: 37,
  PERSONALITY: 38,
  TIME_OFFSETS: 39,
  IDMAP_MOUNT: 40,
  CONSOLE: 41,
  CGROUP: 42,
} as const;

/** The name of a failure stage. */
export type StageName = keyof typeof STAGE;

/** Map a stage number from the helper back to its name ("unknown" for numbers we never send). */
export function stageName(n: number): string {
  for (const [name, value] of Object.entries(STAGE)) if (value === n) return name.toLowerCase().replace(/_/g, '-');
  return `unknown(${n})`;
}
