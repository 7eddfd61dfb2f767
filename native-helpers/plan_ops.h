/* Generated from runtime/plan/ops.ts by scripts/gen-plan-header.ts. Do not edit. */
#ifndef TSRUN_PLAN_OPS_H
#define TSRUN_PLAN_OPS_H

#define TH_PLAN_VERSION 5u
#define TH_PLAN_MAGIC 0x4c505354u
#define TH_PLAN_MAX_BYTES 67108864u
#define TH_SYNC_MAX_BYTES 131072u
#define TH_MSG_HEADER_BYTES 16u

enum th_field_kind { TH_F_U32 = 1, TH_F_U64 = 2, TH_F_STR = 3, TH_F_STRLIST = 4, TH_F_U32LIST = 5, TH_F_BYTES = 6 };

enum th_op_code {
  TH_OP_CLOSE_FDS = 1,
  TH_OP_NAMESPACE = 2,
  TH_OP_SYNC = 3,
  TH_OP_ROOTFS = 4,
  TH_OP_MOUNT = 5,
  TH_OP_DEVICE = 6,
  TH_OP_SYMLINK = 7,
  TH_OP_HOOK = 8,
  TH_OP_PIVOT = 9,
  TH_OP_MASK_PATH = 10,
  TH_OP_READONLY_PATH = 11,
  TH_OP_ROOT_READONLY = 12,
  TH_OP_HOSTNAME = 13,
  TH_OP_DOMAINNAME = 14,
  TH_OP_SYSCTL = 15,
  TH_OP_OOM_SCORE_ADJ = 16,
  TH_OP_RLIMIT = 17,
  TH_OP_USER = 18,
  TH_OP_UMASK = 19,
  TH_OP_CWD = 20,
  TH_OP_EXEC_FIFO = 21,
  TH_OP_PROCESS = 22,
  TH_OP_CREATED = 23,
  TH_OP_WAIT_START = 24,
  TH_OP_NO_NEW_PRIVS = 25,
  TH_OP_CAPS = 26,
  TH_OP_SECCOMP = 27,
  TH_OP_EXEC = 28,
  TH_OP_SET_NAME = 29,
  TH_OP_CAPS_BOUNDING = 30,
  TH_OP_SESSION_KEYRING = 31,
  TH_OP_SCHEDULER = 32,
  TH_OP_IO_PRIORITY = 33,
  TH_OP_PERSONALITY = 34,
  TH_OP_TIME_OFFSETS = 35,
  TH_OP_IDMAP_MOUNT = 36,
  TH_OP_CONSOLE = 37,
  TH_OP_NS_PIDFD = 38,
  TH_OP_STDIO = 39,
  TH_OP_CGROUP_JOIN = 40,
};
#define TH_OP_MAX 40

#define TH_CLOSE_FDS_PRESERVE 0
#define TH_NAMESPACE_NSTYPE 0
#define TH_NAMESPACE_PATH 1
#define TH_SYNC_STAGE 0
#define TH_ROOTFS_PATH 0
#define TH_ROOTFS_PROPAGATION 1
#define TH_MOUNT_SOURCE 0
#define TH_MOUNT_DESTINATION 1
#define TH_MOUNT_FSTYPE 2
#define TH_MOUNT_FLAGS 3
#define TH_MOUNT_PROPAGATION 4
#define TH_MOUNT_DATA 5
#define TH_MOUNT_KIND 6
#define TH_MOUNT_REC_ATTR_SET 7
#define TH_MOUNT_REC_ATTR_CLR 8
#define TH_DEVICE_PATH 0
#define TH_DEVICE_TYPE 1
#define TH_DEVICE_MAJOR 2
#define TH_DEVICE_MINOR 3
#define TH_DEVICE_MODE 4
#define TH_DEVICE_UID 5
#define TH_DEVICE_GID 6
#define TH_DEVICE_BIND 7
#define TH_SYMLINK_TARGET 0
#define TH_SYMLINK_LINKPATH 1
#define TH_HOOK_PHASE 0
#define TH_HOOK_PATH 1
#define TH_HOOK_ARGS 2
#define TH_HOOK_ENV 3
#define TH_HOOK_TIMEOUT 4
#define TH_PIVOT_MODE 0
#define TH_MASK_PATH_PATH 0
#define TH_READONLY_PATH_PATH 0
#define TH_HOSTNAME_NAME 0
#define TH_DOMAINNAME_NAME 0
#define TH_SYSCTL_KEY 0
#define TH_SYSCTL_VALUE 1
#define TH_OOM_SCORE_ADJ_VALUE 0
#define TH_RLIMIT_RESOURCE 0
#define TH_RLIMIT_SOFT 1
#define TH_RLIMIT_HARD 2
#define TH_USER_UID 0
#define TH_USER_GID 1
#define TH_USER_GROUPS 2
#define TH_USER_SETGROUPS 3
#define TH_UMASK_MASK 0
#define TH_CWD_PATH 0
#define TH_EXEC_FIFO_PATH 0
#define TH_PROCESS_ARGS 0
#define TH_PROCESS_ENV 1
#define TH_PROCESS_DEFAULT_PATH 2
#define TH_CAPS_EFFECTIVE 0
#define TH_CAPS_PERMITTED 1
#define TH_CAPS_INHERITABLE 2
#define TH_CAPS_AMBIENT 3
#define TH_SECCOMP_FLAGS 0
#define TH_SECCOMP_FILTER 1
#define TH_SET_NAME_NAME 0
#define TH_CAPS_BOUNDING_BOUNDING 0
#define TH_SESSION_KEYRING_NAME 0
#define TH_SCHEDULER_POLICY 0
#define TH_SCHEDULER_FLAGS 1
#define TH_SCHEDULER_NICE 2
#define TH_SCHEDULER_PRIORITY 3
#define TH_SCHEDULER_RUNTIME 4
#define TH_SCHEDULER_DEADLINE 5
#define TH_SCHEDULER_PERIOD 6
#define TH_IO_PRIORITY_VALUE 0
#define TH_PERSONALITY_PERSONA 0
#define TH_TIME_OFFSETS_MONOTONIC_SECS 0
#define TH_TIME_OFFSETS_MONOTONIC_NSECS 1
#define TH_TIME_OFFSETS_BOOTTIME_SECS 2
#define TH_TIME_OFFSETS_BOOTTIME_NSECS 3
#define TH_IDMAP_MOUNT_SOURCE 0
#define TH_IDMAP_MOUNT_DESTINATION 1
#define TH_IDMAP_MOUNT_KIND 2
#define TH_IDMAP_MOUNT_TREE_FD 3
#define TH_CONSOLE_ROWS 0
#define TH_CONSOLE_COLS 1
#define TH_CONSOLE_MOUNT_CONSOLE 2
#define TH_NS_PIDFD_FD 0
#define TH_NS_PIDFD_NSTYPES 1
#define TH_STDIO_FD0 0
#define TH_STDIO_FD1 1
#define TH_STDIO_FD2 2
#define TH_CGROUP_JOIN_FD 0
#define TH_CGROUP_JOIN_MODE 1
#define TH_OP_MAX_FIELDS 9

/* Field kinds per op code, 0-terminated; unused codes have no entry. */
static const unsigned char th_op_fields[TH_OP_MAX + 1][TH_OP_MAX_FIELDS + 1] = {
  [TH_OP_CLOSE_FDS] = {TH_F_U32, 0},
  [TH_OP_NAMESPACE] = {TH_F_U32, TH_F_STR, 0},
  [TH_OP_SYNC] = {TH_F_U32, 0},
  [TH_OP_ROOTFS] = {TH_F_STR, TH_F_U64, 0},
  [TH_OP_MOUNT] = {TH_F_STR, TH_F_STR, TH_F_STR, TH_F_U64, TH_F_U64, TH_F_STR, TH_F_U32, TH_F_U64, TH_F_U64, 0},
  [TH_OP_DEVICE] = {TH_F_STR, TH_F_U32, TH_F_U32, TH_F_U32, TH_F_U32, TH_F_U32, TH_F_U32, TH_F_U32, 0},
  [TH_OP_SYMLINK] = {TH_F_STR, TH_F_STR, 0},
  [TH_OP_HOOK] = {TH_F_U32, TH_F_STR, TH_F_STRLIST, TH_F_STRLIST, TH_F_U32, 0},
  [TH_OP_PIVOT] = {TH_F_U32, 0},
  [TH_OP_MASK_PATH] = {TH_F_STR, 0},
  [TH_OP_READONLY_PATH] = {TH_F_STR, 0},
  [TH_OP_ROOT_READONLY] = {0},
  [TH_OP_HOSTNAME] = {TH_F_STR, 0},
  [TH_OP_DOMAINNAME] = {TH_F_STR, 0},
  [TH_OP_SYSCTL] = {TH_F_STR, TH_F_STR, 0},
  [TH_OP_OOM_SCORE_ADJ] = {TH_F_U64, 0},
  [TH_OP_RLIMIT] = {TH_F_U32, TH_F_U64, TH_F_U64, 0},
  [TH_OP_USER] = {TH_F_U32, TH_F_U32, TH_F_U32LIST, TH_F_U32, 0},
  [TH_OP_UMASK] = {TH_F_U32, 0},
  [TH_OP_CWD] = {TH_F_STR, 0},
  [TH_OP_EXEC_FIFO] = {TH_F_STR, 0},
  [TH_OP_PROCESS] = {TH_F_STRLIST, TH_F_STRLIST, TH_F_STR, 0},
  [TH_OP_CREATED] = {0},
  [TH_OP_WAIT_START] = {0},
  [TH_OP_NO_NEW_PRIVS] = {0},
  [TH_OP_CAPS] = {TH_F_U64, TH_F_U64, TH_F_U64, TH_F_U64, 0},
  [TH_OP_SECCOMP] = {TH_F_U32, TH_F_BYTES, 0},
  [TH_OP_EXEC] = {0},
  [TH_OP_SET_NAME] = {TH_F_STR, 0},
  [TH_OP_CAPS_BOUNDING] = {TH_F_U64, 0},
  [TH_OP_SESSION_KEYRING] = {TH_F_STR, 0},
  [TH_OP_SCHEDULER] = {TH_F_U32, TH_F_U64, TH_F_U32, TH_F_U32, TH_F_U64, TH_F_U64, TH_F_U64, 0},
  [TH_OP_IO_PRIORITY] = {TH_F_U32, 0},
  [TH_OP_PERSONALITY] = {TH_F_U32, 0},
  [TH_OP_TIME_OFFSETS] = {TH_F_U64, TH_F_U32, TH_F_U64, TH_F_U32, 0},
  [TH_OP_IDMAP_MOUNT] = {TH_F_STR, TH_F_STR, TH_F_U32, TH_F_U32, 0},
  [TH_OP_CONSOLE] = {TH_F_U32, TH_F_U32, TH_F_U32, 0},
  [TH_OP_NS_PIDFD] = {TH_F_U32, TH_F_U32, 0},
  [TH_OP_STDIO] = {TH_F_U32, TH_F_U32, TH_F_U32, 0},
  [TH_OP_CGROUP_JOIN] = {TH_F_U32, TH_F_U32, 0},
};

/* Which op codes exist (1) and which do not (0). */
static const unsigned char th_op_known[TH_OP_MAX + 1] = {
  [TH_OP_CLOSE_FDS] = 1,
  [TH_OP_NAMESPACE] = 1,
  [TH_OP_SYNC] = 1,
  [TH_OP_ROOTFS] = 1,
  [TH_OP_MOUNT] = 1,
  [TH_OP_DEVICE] = 1,
  [TH_OP_SYMLINK] = 1,
  [TH_OP_HOOK] = 1,
  [TH_OP_PIVOT] = 1,
  [TH_OP_MASK_PATH] = 1,
  [TH_OP_READONLY_PATH] = 1,
  [TH_OP_ROOT_READONLY] = 1,
  [TH_OP_HOSTNAME] = 1,
  [TH_OP_DOMAINNAME] = 1,
  [TH_OP_SYSCTL] = 1,
  [TH_OP_OOM_SCORE_ADJ] = 1,
  [TH_OP_RLIMIT] = 1,
  [TH_OP_USER] = 1,
  [TH_OP_UMASK] = 1,
  [TH_OP_CWD] = 1,
  [TH_OP_EXEC_FIFO] = 1,
  [TH_OP_PROCESS] = 1,
  [TH_OP_CREATED] = 1,
  [TH_OP_WAIT_START] = 1,
  [TH_OP_NO_NEW_PRIVS] = 1,
  [TH_OP_CAPS] = 1,
  [TH_OP_SECCOMP] = 1,
  [TH_OP_EXEC] = 1,
  [TH_OP_SET_NAME] = 1,
  [TH_OP_CAPS_BOUNDING] = 1,
  [TH_OP_SESSION_KEYRING] = 1,
  [TH_OP_SCHEDULER] = 1,
  [TH_OP_IO_PRIORITY] = 1,
  [TH_OP_PERSONALITY] = 1,
  [TH_OP_TIME_OFFSETS] = 1,
  [TH_OP_IDMAP_MOUNT] = 1,
  [TH_OP_CONSOLE] = 1,
  [TH_OP_NS_PIDFD] = 1,
  [TH_OP_STDIO] = 1,
  [TH_OP_CGROUP_JOIN] = 1,
};

/* Field names per op, in wire order, for decoder messages. */
static const char *const th_field_names[TH_OP_MAX + 1][TH_OP_MAX_FIELDS] = {
  [TH_OP_CLOSE_FDS] = {"preserve"},
  [TH_OP_NAMESPACE] = {"nstype", "path"},
  [TH_OP_SYNC] = {"stage"},
  [TH_OP_ROOTFS] = {"path", "propagation"},
  [TH_OP_MOUNT] = {"source", "destination", "fstype", "flags", "propagation", "data", "kind", "rec_attr_set", "rec_attr_clr"},
  [TH_OP_DEVICE] = {"path", "type", "major", "minor", "mode", "uid", "gid", "bind"},
  [TH_OP_SYMLINK] = {"target", "linkpath"},
  [TH_OP_HOOK] = {"phase", "path", "args", "env", "timeout"},
  [TH_OP_PIVOT] = {"mode"},
  [TH_OP_MASK_PATH] = {"path"},
  [TH_OP_READONLY_PATH] = {"path"},
  [TH_OP_HOSTNAME] = {"name"},
  [TH_OP_DOMAINNAME] = {"name"},
  [TH_OP_SYSCTL] = {"key", "value"},
  [TH_OP_OOM_SCORE_ADJ] = {"value"},
  [TH_OP_RLIMIT] = {"resource", "soft", "hard"},
  [TH_OP_USER] = {"uid", "gid", "groups", "setgroups"},
  [TH_OP_UMASK] = {"mask"},
  [TH_OP_CWD] = {"path"},
  [TH_OP_EXEC_FIFO] = {"path"},
  [TH_OP_PROCESS] = {"args", "env", "default_path"},
  [TH_OP_CAPS] = {"effective", "permitted", "inheritable", "ambient"},
  [TH_OP_SECCOMP] = {"flags", "filter"},
  [TH_OP_SET_NAME] = {"name"},
  [TH_OP_CAPS_BOUNDING] = {"bounding"},
  [TH_OP_SESSION_KEYRING] = {"name"},
  [TH_OP_SCHEDULER] = {"policy", "flags", "nice", "priority", "runtime", "deadline", "period"},
  [TH_OP_IO_PRIORITY] = {"value"},
  [TH_OP_PERSONALITY] = {"persona"},
  [TH_OP_TIME_OFFSETS] = {"monotonic_secs", "monotonic_nsecs", "boottime_secs", "boottime_nsecs"},
  [TH_OP_IDMAP_MOUNT] = {"source", "destination", "kind", "tree_fd"},
  [TH_OP_CONSOLE] = {"rows", "cols", "mount_console"},
  [TH_OP_NS_PIDFD] = {"fd", "nstypes"},
  [TH_OP_STDIO] = {"fd0", "fd1", "fd2"},
  [TH_OP_CGROUP_JOIN] = {"fd", "mode"},
};

static const char *const th_op_names[TH_OP_MAX + 1] = {
  [TH_OP_CLOSE_FDS] = "close-fds",
  [TH_OP_NAMESPACE] = "namespace",
  [TH_OP_SYNC] = "sync",
  [TH_OP_ROOTFS] = "rootfs",
  [TH_OP_MOUNT] = "mount",
  [TH_OP_DEVICE] = "device",
  [TH_OP_SYMLINK] = "symlink",
  [TH_OP_HOOK] = "hook",
  [TH_OP_PIVOT] = "pivot",
  [TH_OP_MASK_PATH] = "mask-path",
  [TH_OP_READONLY_PATH] = "readonly-path",
  [TH_OP_ROOT_READONLY] = "root-readonly",
  [TH_OP_HOSTNAME] = "hostname",
  [TH_OP_DOMAINNAME] = "domainname",
  [TH_OP_SYSCTL] = "sysctl",
  [TH_OP_OOM_SCORE_ADJ] = "oom-score-adj",
  [TH_OP_RLIMIT] = "rlimit",
  [TH_OP_USER] = "user",
  [TH_OP_UMASK] = "umask",
  [TH_OP_CWD] = "cwd",
  [TH_OP_EXEC_FIFO] = "exec-fifo",
  [TH_OP_PROCESS] = "process",
  [TH_OP_CREATED] = "created",
  [TH_OP_WAIT_START] = "wait-start",
  [TH_OP_NO_NEW_PRIVS] = "no-new-privs",
  [TH_OP_CAPS] = "caps",
  [TH_OP_SECCOMP] = "seccomp",
  [TH_OP_EXEC] = "exec",
  [TH_OP_SET_NAME] = "set-name",
  [TH_OP_CAPS_BOUNDING] = "caps-bounding",
  [TH_OP_SESSION_KEYRING] = "session-keyring",
  [TH_OP_SCHEDULER] = "scheduler",
  [TH_OP_IO_PRIORITY] = "io-priority",
  [TH_OP_PERSONALITY] = "personality",
  [TH_OP_TIME_OFFSETS] = "time-offsets",
  [TH_OP_IDMAP_MOUNT] = "idmap-mount",
  [TH_OP_CONSOLE] = "console",
  [TH_OP_NS_PIDFD] = "ns-pidfd",
  [TH_OP_STDIO] = "stdio",
  [TH_OP_CGROUP_JOIN] = "cgroup-join",
};

enum th_mount_kind {
  TH_MOUNT_KIND_DIR = 0,
  TH_MOUNT_KIND_FILE = 1,
  TH_MOUNT_KIND_AUTO = 2,
};

enum th_pivot {
  TH_PIVOT_PIVOT_ROOT = 0,
  TH_PIVOT_MOVE_CHROOT = 1,
  TH_PIVOT_CHROOT = 2,
};

enum th_cgroup_join_mode {
  TH_CGROUP_JOIN_MODE_TASKS = 0,
  TH_CGROUP_JOIN_MODE_INTO = 1,
  TH_CGROUP_JOIN_MODE_PROCS = 2,
};

enum th_hook {
  TH_HOOK_PRESTART = 0,
  TH_HOOK_CREATE_RUNTIME = 1,
  TH_HOOK_CREATE_CONTAINER = 2,
  TH_HOOK_START_CONTAINER = 3,
  TH_HOOK_POSTSTART = 4,
  TH_HOOK_POSTSTOP = 5,
};

enum th_msg {
  TH_MSG_GO = 1,
  TH_MSG_PID = 2,
  TH_MSG_HOOKS = 3,
  TH_MSG_RESUME = 4,
  TH_MSG_CREATED = 5,
  TH_MSG_ERROR = 6,
  TH_MSG_ABORT = 7,
  TH_MSG_SECCOMP_FD = 8,
  TH_MSG_CONSOLE_FD = 9,
};

enum th_stage {
  TH_STAGE_DECODE = 1,
  TH_STAGE_CLONE = 2,
  TH_STAGE_SYNC = 3,
  TH_STAGE_CLOSE_FDS = 4,
  TH_STAGE_NAMESPACE = 5,
  TH_STAGE_ROOTFS = 6,
  TH_STAGE_MOUNT = 7,
  TH_STAGE_DEVICE = 8,
  TH_STAGE_SYMLINK = 9,
  TH_STAGE_HOOK = 10,
  TH_STAGE_PIVOT = 11,
  TH_STAGE_MASK_PATH = 12,
  TH_STAGE_READONLY_PATH = 13,
  TH_STAGE_HOSTNAME = 14,
  TH_STAGE_SYSCTL = 15,
  TH_STAGE_OOM_SCORE_ADJ = 16,
  TH_STAGE_RLIMIT = 17,
  TH_STAGE_USER = 18,
  TH_STAGE_CWD = 19,
  TH_STAGE_EXEC_FIFO = 20,
  TH_STAGE_PROCESS = 21,
  TH_STAGE_WAIT_START = 22,
  TH_STAGE_CAPS = 23,
  TH_STAGE_SECCOMP = 24,
  TH_STAGE_EXEC = 25,
  TH_STAGE_SIGNALS = 26,
  TH_STAGE_PRCTL = 27,
  TH_STAGE_ROOT_READONLY = 28,
  TH_STAGE_DOMAINNAME = 29,
  TH_STAGE_UMASK = 30,
  TH_STAGE_CREATED = 31,
  TH_STAGE_SET_NAME = 32,
  TH_STAGE_NO_NEW_PRIVS = 33,
  TH_STAGE_CAPS_BOUNDING = 34,
  TH_STAGE_SESSION_KEYRING = 35,
  TH_STAGE_SCHEDULER = 36,
  TH_STAGE_IO_PRIORITY = 37,
  TH_STAGE_PERSONALITY = 38,
  TH_STAGE_TIME_OFFSETS = 39,
  TH_STAGE_IDMAP_MOUNT = 40,
  TH_STAGE_CONSOLE = 41,
  TH_STAGE_CGROUP = 42,
};

/* A STDIO field that keeps the inherited fd. */
#define TH_STDIO_INHERIT 0xffffffffu

#endif
