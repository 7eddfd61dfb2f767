/*
 * NS_PIDFD (exec: one atomic setns through init's pidfd) and NAMESPACE ops, run as one group at
 * the first of them. Namespaces the plan creates come from
 * the clone flags (tsrun_spawn) or, with a second fork, from unshare here. Joins open every
 * path first (after setns(CLONE_NEWNS) the paths would resolve in the container's mount
 * namespace), then join the user namespace first (it governs the permission to join the
 * others, see setns(2)), then the rest, and the mount namespace last.
 *
 * Second fork: joining a pid namespace and creating a time namespace only affect the caller's
 * children (pid_namespaces(7), time_namespaces(7)). The intermediate (this process, cloned with
 * no CLONE_NEW* flags) joins, unshares, clones init with CLONE_PARENT so init is the runtime's
 * child as well, reports init's pid (MSG_PID) and exits. Pivot-first (a plan with a pivot_root
 * or move), it reports its own pid instead, runs the plan up to PIVOT itself, and only then joins
 * or creates the pid namespace and clones init (th_birth_init).
 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "sync.h"

/* At most one NAMESPACE op per type (the decoder checks), and there are 8 types. */
#define TH_NS_MAX 8

static int th_join_pass(struct th_child *c, const struct th_op **ops, int *fds, unsigned n, int pass) {
  for (unsigned i = 0; i < n; i++) {
    uint32_t t = ops[i]->f[TH_NAMESPACE_NSTYPE].u32;
    int want = t == CLONE_NEWUSER ? 0 : t == CLONE_NEWNS ? 2 : 1;
    if (want != pass) continue;
    /* Pivot-first: the pid namespace is joined right before init's clone (th_birth_init), so that
       the hooks this process starts before pivot_root are not seen from it. Not when the plan
       creates a user namespace: the join needs this process's capabilities over the namespace's
       owner, which the new user namespace takes away. */
    if (t == CLONE_NEWPID && c->pivot_first && !(c->create_flags & CLONE_NEWUSER)) {
      c->pidns_fd = fds[i];
      fds[i] = -1;
      continue;
    }
    if (setns(fds[i], (int)t) < 0)
      return th_fail(c, errno, "join ", th_plan_ns_name(t), " namespace ", ops[i]->f[TH_NAMESPACE_PATH].s, NULL);
  }
  return 0;
}

static int th_join(struct th_child *c) {
  const struct th_op *ops[TH_NS_MAX];
  int fds[TH_NS_MAX];
  unsigned n = 0;
  int rc = 0;
  for (uint32_t i = 0; i < c->plan->n && n < TH_NS_MAX; i++) {
    const struct th_op *op = &c->plan->ops[i];
    if (op->code != TH_OP_NAMESPACE || op->f[TH_NAMESPACE_PATH].len == 0) continue;
    if (op->f[TH_NAMESPACE_NSTYPE].u32 & c->ns_pidfd_joined) continue;
    int fd = open(op->f[TH_NAMESPACE_PATH].s, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rc = th_fail(c, errno, "open ", th_plan_ns_name(op->f[TH_NAMESPACE_NSTYPE].u32), " namespace ",
                   op->f[TH_NAMESPACE_PATH].s, NULL);
      goto out;
    }
    ops[n] = op;
    fds[n++] = fd;
  }
  for (int pass = 0; pass < 3 && rc == 0; pass++) rc = th_join_pass(c, ops, fds, n, pass);
out:
  for (unsigned i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
  return rc;
}

/*
 * Write linux.timeOffsets to /proc/self/timens_offsets: it describes the time namespace our
 * children will enter, and is writable only until the first of them exists (time_namespaces(7)).
 * Clock ids are numeric (CLOCK_MONOTONIC 1, CLOCK_BOOTTIME 7), which every kernel with time
 * namespaces accepts.
 */
static int th_time_offsets(struct th_child *c) {
  const struct th_op *t = NULL;
  for (uint32_t i = 0; i < c->plan->n; i++)
    if (c->plan->ops[i].code == TH_OP_TIME_OFFSETS) t = &c->plan->ops[i];
  if (t == NULL) return 0;
  char text[128], num[TH_NUM_BYTES];
  struct th_buf b;
  th_buf_init(&b, text, sizeof text);
  th_buf_str(&b, "1 ");
  th_buf_str(&b, th_i64s(num, (int64_t)t->f[TH_TIME_OFFSETS_MONOTONIC_SECS].u64));
  th_buf_str(&b, " ");
  th_buf_str(&b, th_u64s(num, t->f[TH_TIME_OFFSETS_MONOTONIC_NSECS].u32));
  th_buf_str(&b, "\n7 ");
  th_buf_str(&b, th_i64s(num, (int64_t)t->f[TH_TIME_OFFSETS_BOOTTIME_SECS].u64));
  th_buf_str(&b, " ");
  th_buf_str(&b, th_u64s(num, t->f[TH_TIME_OFFSETS_BOOTTIME_NSECS].u32));
  th_buf_str(&b, "\n");
  int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return th_fail(c, errno, "open /proc/self/timens_offsets", NULL);
  ssize_t n = write(fd, text, b.len);
  int e = errno;
  close(fd);
  if (n != (ssize_t)b.len) return th_fail(c, n < 0 ? e : EIO, "write time namespace offsets (", text, ")", NULL);
  return 0;
}

/* The offsets were applied by the NAMESPACE group; nothing is left to do when the op is reached. */
int th_op_time_offsets(struct th_child *c, const struct th_op *op) {
  (void)c;
  (void)op;
  return 0;
}

/*
 * setns(2) with a pidfd joins several namespaces of one process at once: either all or none,
 * and the pidfd cannot come to name another process the way a recycled pid in a /proc path can.
 * Kernels before 5.8 answer EINVAL; the NAMESPACE group then joins by path.
 */
int th_op_ns_pidfd(struct th_child *c, const struct th_op *op) {
  int fd = (int)op->f[TH_NS_PIDFD_FD].u32;
  uint32_t t = op->f[TH_NS_PIDFD_NSTYPES].u32;
  char h[TH_NUM_BYTES];
  int rc = 0;
  int e = setns(fd, (int)t) == 0 ? 0 : errno;
  if (e == 0)
    c->ns_pidfd_joined = t;
  else if (e != EINVAL)
    rc = th_fail(c, e, "join the namespaces (", th_hexs(h, t), ") of the container's init through its pidfd", NULL);
  close(fd);
  return rc;
}

/*
 * The intermediate's last step: clone init as the runtime's child, tell the runtime its pid and
 * exit. Returns 0 in init, or the failure of the clone; the intermediate otherwise exits here.
 */
static int clone_init_and_report(struct th_child *c) {
  char h[TH_NUM_BYTES];
  pid_t pid = th_clone_init(c, CLONE_PARENT | SIGCHLD);
  if (pid < 0) return th_fail(c, errno, "clone init (flags ", th_hexs(h, CLONE_PARENT | SIGCHLD), ")", NULL);
  if (pid > 0) {
    /* The intermediate's work is done. If the runtime cannot learn init's pid, init must go. */
    if (th_sync_send(c->sync_fd, TH_MSG_PID, 0, 0, (int32_t)pid, NULL, 0) < 0) {
      kill(pid, SIGKILL);
      _exit(1);
    }
    _exit(0);
  }
  /* init: the parent-death signal does not survive clone, and the session is ours to start. */
  th_child_adopt(c);
  return 0;
}

int th_op_namespace(struct th_child *c, const struct th_op *op) {
  (void)op;
  if (c->ns_done) return 0;
  c->ns_done = 1;
  int rc = th_join(c);
  if (rc < 0) return rc;
  /* From here on the process may be seen from the container (a joined pid namespace shared with
     other containers), so its working directory must not be the runtime's, a host directory:
     it moves to the rootfs, the one host directory the container owns. After a mount-namespace
     join it is already the namespace's root (setns(2)); exec has no ROOTFS op. */
  const struct th_op *root = th_plan_find(c->plan, TH_OP_ROOTFS);
  if (root != NULL && chdir(root->f[TH_ROOTFS_PATH].s) < 0)
    return th_fail(c, errno, "change to the rootfs ", root->f[TH_ROOTFS_PATH].s, NULL);
  if (!c->second_fork) return 0;

  char h[TH_NUM_BYTES];
  /* Pivot-first: a new pid namespace waits for init's clone too (its first child is its init). */
  uint64_t now = c->create_flags & ~(uint64_t)(c->pivot_first ? CLONE_NEWPID : 0);
  if (now != 0 && unshare((int)now) < 0)
    return th_fail(c, errno, "unshare namespaces (flags ", th_hexs(h, now), ")", NULL);
  /* Before any child enters the new time namespace, which fixes its offsets. */
  if ((c->create_flags & CLONE_NEWTIME) && (rc = th_time_offsets(c)) < 0) return rc;
  if (c->pivot_first) {
    /* The runtime writes the id maps of the user namespace created here to this process. */
    rc = th_sync_send(c->sync_fd, TH_MSG_PID, 0, 0, (int32_t)getpid(), NULL, 0);
    return rc < 0 ? th_fail(c, -rc, "tell the runtime the namespaces are ready", NULL) : 0;
  }
  return clone_init_and_report(c);
}

/*
 * Pivot-first: the intermediate (never in the container's pid namespace: setns and unshare of a
 * pid namespace only affect children) has done everything up to pivot_root, so init's root and
 * working directory are the container's from its first instant, and the mount namespace it could
 * be entered through holds the container's root alone. Join or create the pid namespace, clone
 * init, report its pid and exit.
 */
int th_birth_init(struct th_child *c) {
  char h[TH_NUM_BYTES];
  if (c->pidns_fd >= 0) {
    int e = setns(c->pidns_fd, CLONE_NEWPID) < 0 ? errno : 0;
    close(c->pidns_fd);
    c->pidns_fd = -1;
    if (e != 0) {
      const char *path = "";
      for (uint32_t i = 0; i < c->plan->n; i++) {
        const struct th_op *op = &c->plan->ops[i];
        if (op->code == TH_OP_NAMESPACE && op->f[TH_NAMESPACE_NSTYPE].u32 == CLONE_NEWPID)
          path = op->f[TH_NAMESPACE_PATH].s;
      }
      return th_fail(c, e, "join pid namespace ", path, NULL);
    }
  }
  if ((c->create_flags & CLONE_NEWPID) && unshare(CLONE_NEWPID) < 0)
    return th_fail(c, errno, "unshare namespaces (flags ", th_hexs(h, CLONE_NEWPID), ")", NULL);
  return clone_init_and_report(c);
}

/*
 * CGROUP_JOIN (see ops.ts): the process, a single thread (the clone copied only the caller's),
 * moves itself. In a v1 hierarchy it writes "0" to `tasks`; in v2 the clone placed it already
 * (INTO), or it writes "0" to cgroup.procs (PROCS). After the last join, the cgroup namespace the
 * plan creates is unshared, rooted here.
 */
int th_op_cgroup_join(struct th_child *c, const struct th_op *op) {
  int fd = (int)op->f[TH_CGROUP_JOIN_FD].u32, rc = 0;
  uint32_t mode = op->f[TH_CGROUP_JOIN_MODE].u32;
  char a[TH_NUM_BYTES];
  if (fd == c->sync_fd) {
    rc = th_fail_complete(c, EBADF, "cgroup fd ", th_u64s(a, (uint64_t)fd), " is the sync socket", NULL);
  } else if (mode == TH_CGROUP_JOIN_MODE_TASKS || (mode == TH_CGROUP_JOIN_MODE_PROCS && !c->cgroup_into_done)) {
    if (write(fd, "0", 1) != 1)
      rc = th_fail(c, errno, "join the cgroup (write \"0\" to ",
                   mode == TH_CGROUP_JOIN_MODE_TASKS ? "tasks" : "cgroup.procs", ", fd ", th_u64s(a, (uint64_t)fd), ")",
                   NULL);
  }
  close(fd);
  if (rc < 0) return rc;
  int last = op->index + 1 >= c->plan->n || c->plan->ops[op->index + 1].code != TH_OP_CGROUP_JOIN;
  if (last && c->defer_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
    return th_fail(c, errno, "unshare the cgroup namespace", NULL);
  return 0;
}
