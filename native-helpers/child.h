/*
 * The child (container init) between clone and exec, run by the sealed stage (stage.h).
 * Everything it needs is in struct th_child: th_child_setup fills it from the plan (in the
 * runtime before the clone, and again in the stage), the rest comes from the stage's argv. It
 * is kept in static storage; the runtime's copy is what the clone uses up to the stage's exec,
 * when no allocation is allowed (another Node thread may hold the allocator's lock).
 *
 * Every op function returns 0, or a negative value after describing the failure with
 * th_fail/th_fail_complete; the op loop in child.c turns that into one ERROR record and _exit.
 */
#ifndef TSRUN_CHILD_H
#define TSRUN_CHILD_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "fmt.h"
#include "plan.h"

#pragma GCC visibility push(hidden)

/** Largest GO payload taken through a memfd: the two hook states, annotations included. */
#define TH_GO_MAX_BYTES (1ULL << 30)

/** Mounts a pivot-first intermediate leaves to init (see th_mount_defer); more is an error. */
#define TH_DEFER_MAX 64

/** Largest ERROR record message, and the hook output kept for one. */
#define TH_MSG_MAX 1024

/** Everything the child uses: set-up from the parent, then its own state and buffers. */
struct th_child {
  /* Filled in by the parent before clone. */
  const struct th_plan *plan;
  int sync_fd;           /* the child's end of the sync socket */
  int parent_fd;         /* the parent's end; the child closes its copy first thing */
  pid_t parent_pid;      /* the runtime process, for the parent-death check */
  int cap_last_cap;      /* /proc/sys/kernel/cap_last_cap, read before clone */
  int second_fork;       /* init is a grandchild (see th_plan_needs_second_fork) */
  uint64_t create_flags; /* CLONE_NEW* flags of the namespaces the clone or unshare creates */
  int defer_cgroupns;    /* CLONE_NEWCGROUP is left out of create_flags: the last CGROUP_JOIN unshares it */
  int cgroup_into_fd;    /* the CGROUP_JOIN INTO directory, for CLONE_INTO_CGROUP; -1 for none */
  int cgroup_into_done;  /* the clone that made this process placed it there */
  int pivot_first;       /* second fork with a pivot: the intermediate sets up the rootfs, init is born after */

  /* The child's own state. */
  int root_fd;             /* O_PATH fd of the container root: rootfs before PIVOT, "/" after */
  const char *rootfs_path; /* ROOTFS.path (host path) */
  int fifo_fd;             /* EXEC_FIFO fd, -1 until opened */
  int ns_done;             /* the NAMESPACE ops have run (they run as one group) */
  int pidns_fd;            /* pivot-first: the pid namespace to join just before init's clone, or -1 */
  unsigned n_deferred;     /* pivot-first: mounts left to init, in plan order */
  struct {
    const struct th_op *op;
    int dst_fd;  /* O_PATH fd of the mount point, resolved and checked before pivot_root */
    int tree_fd; /* a bind's source as a detached tree (open_tree), or -1 */
  } deferred[TH_DEFER_MAX];
  uint32_t ns_pidfd_joined; /* CLONE_NEW* types NS_PIDFD joined; the NAMESPACE group skips them */
  int have_go;              /* MSG_GO arrived */
  int dumpable_until_go;    /* unprivileged runtime + new user namespace: see th_child_main */
  int created;              /* MSG_CREATED sent: the runtime may be gone, ignore send errors */
  const char *doc[2];       /* hook state documents from GO: createContainer, startContainer */
  size_t doc_len[2];
  const char *exec_path; /* PROCESS's resolved program, its args and env */
  char *const *argv;
  char *const *envp;

  /* The failure being reported. */
  int err_errno;
  int err_complete; /* message needs no errno text appended */
  struct th_buf msg;
  char msg_mem[TH_MSG_MAX + 1];

  /* Preallocated buffers. */
  char exec_buf[PATH_MAX];
  char path_a[PATH_MAX];
  char path_b[PATH_MAX];
  char name_buf[NAME_MAX + 1];
  char hook_out[TH_MSG_MAX];
  char home_env[PATH_MAX + 8]; /* "HOME=<dir>" when the env has none */
  char passwd_buf[65536];      /* the container's /etc/passwd, read for HOME */
  uint8_t go_buf[TH_SYNC_MAX_BYTES];
};

/**
 * Fill in the parts of c that follow from the plan (second fork, create flags, cgroup namespace
 * and CLONE_INTO_CGROUP), and reset the child's own state. Used by tsrun_spawn before the clone
 * and by the sealed stage (stage.c) after it reads the plan, so both see the same context.
 */
void th_child_setup(struct th_child *c, const struct th_plan *p);

/**
 * The fds above 2 that op names (STDIO sources, IDMAP_MOUNT trees, NS_PIDFD, CGROUP_JOIN) into
 * out; returns how many (at most 3). The runtime opened them all close-on-exec.
 */
unsigned th_op_fds(const struct th_op *op, int out[3]);

/** Run the set-up and the plan's ops, then exec; never returns. */
_Noreturn void th_child_main(struct th_child *c);

/** Whether this helper has an executor for op code (checked before clone). */
int th_child_can_run(unsigned code);

/**
 * Describe a failure: the message is the concatenation of the strings up to NULL; the runtime
 * appends ": <strerror(err)>". Returns -err (or -1 when err is 0).
 */
int th_fail(struct th_child *c, int err, ...) __attribute__((sentinel));
/** Like th_fail, but the message is complete: the runtime must not append errno text. */
int th_fail_complete(struct th_child *c, int err, ...) __attribute__((sentinel));

/** In a freshly cloned init (second fork): parent-death signal, parent check, new session. */
void th_child_adopt(struct th_child *c);

/**
 * Pivot-first (after PIVOT, in the intermediate): join or create the pid namespace, clone init,
 * report its pid and exit. Returns 0 in init, which then waits for its own GO; negative on failure.
 */
int th_birth_init(struct th_child *c);

/** Raw clone(2) that returns twice like fork, without glibc's fork handlers and locks. */
pid_t th_raw_clone(unsigned long flags);

/**
 * The clone that makes init (or an exec'd process): th_raw_clone, but straight into the cgroup v2
 * directory of the plan's CGROUP_JOIN INTO op with clone3(CLONE_INTO_CGROUP) where there is one.
 * When that clone fails it falls back to clone, and the PROCS op writes cgroup.procs.
 */
pid_t th_clone_init(struct th_child *c, unsigned long flags);

/** "/proc/self/fd/<fd>" into out (at least 32 bytes); the way to name an O_PATH fd to mount(2). */
const char *th_fd_path(char *out, int fd);

/* Op executors, grouped by file. */
int th_op_namespace(struct th_child *c, const struct th_op *op);   /* ns.c */
int th_op_ns_pidfd(struct th_child *c, const struct th_op *op);    /* ns.c */
int th_op_cgroup_join(struct th_child *c, const struct th_op *op); /* ns.c */

int th_op_rootfs(struct th_child *c, const struct th_op *op); /* mounts.c */
int th_op_mount(struct th_child *c, const struct th_op *op);
int th_op_pivot(struct th_child *c, const struct th_op *op);
int th_op_mask_path(struct th_child *c, const struct th_op *op);
int th_op_readonly_path(struct th_child *c, const struct th_op *op);
int th_op_root_readonly(struct th_child *c, const struct th_op *op);

int th_op_device(struct th_child *c, const struct th_op *op); /* devices.c */
int th_op_symlink(struct th_child *c, const struct th_op *op);

int th_op_hook(struct th_child *c, const struct th_op *op); /* hooks.c */

int th_op_rlimit(struct th_child *c, const struct th_op *op); /* creds.c */
int th_op_user(struct th_child *c, const struct th_op *op);
int th_op_caps_bounding(struct th_child *c, const struct th_op *op);
int th_op_caps(struct th_child *c, const struct th_op *op);
int th_op_no_new_privs(struct th_child *c, const struct th_op *op);
int th_op_seccomp(struct th_child *c, const struct th_op *op);
int th_op_umask(struct th_child *c, const struct th_op *op);

int th_op_hostname(struct th_child *c, const struct th_op *op); /* process.c */
int th_op_domainname(struct th_child *c, const struct th_op *op);
int th_op_set_name(struct th_child *c, const struct th_op *op);
int th_op_session_keyring(struct th_child *c, const struct th_op *op);
int th_op_scheduler(struct th_child *c, const struct th_op *op);
int th_op_io_priority(struct th_child *c, const struct th_op *op);
int th_op_personality(struct th_child *c, const struct th_op *op);
int th_op_time_offsets(struct th_child *c, const struct th_op *op);
int th_op_idmap_mount(struct th_child *c, const struct th_op *op);
/** Pivot-first: whether a MOUNT or IDMAP_MOUNT must wait for init (see mounts.c). */
int th_mount_must_defer(const struct th_child *c, const struct th_op *op);
/** Pivot-first, in the intermediate: resolve and check the mount point, clone a bind's source. */
int th_mount_defer(struct th_child *c, const struct th_op *op);
/** Pivot-first, in init after pivot_root: attach one deferred mount (index into c->deferred). */
int th_mount_deferred(struct th_child *c, unsigned k);
int th_op_console(struct th_child *c, const struct th_op *op);
int th_op_sysctl(struct th_child *c, const struct th_op *op);
int th_op_oom_score_adj(struct th_child *c, const struct th_op *op);
int th_op_cwd(struct th_child *c, const struct th_op *op);
int th_op_exec_fifo(struct th_child *c, const struct th_op *op);
int th_op_process(struct th_child *c, const struct th_op *op);
int th_op_exec(struct th_child *c, const struct th_op *op);

#pragma GCC visibility pop

#endif
