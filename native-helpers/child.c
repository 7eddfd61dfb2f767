/*
 * The child's order of business (docs/native-helper.md has the long form):
 *
 *   1. close the parent's end of the sync socket; reset signal dispositions, then the mask;
 *      parent-death signal and parent check; non-dumpable before any namespace or rootfs work;
 *      new session; a STDIO op's fds made 0-2; stdio made blocking and inheritable
 *   2. ops in plan order; NAMESPACE ops run as one group (joins, and the second fork if needed;
 *      pivot-first, the intermediate runs the ops up to PIVOT and clones init after it)
 *   3. before the first op other than CLOSE_FDS, STDIO, SET_NAME, NS_PIDFD, NAMESPACE and CGROUP_JOIN:
 *      wait for MSG_GO
 *   4. any failure: one ERROR record {stage, errno, complete, message}, then _exit
 *
 * This runs in the sealed stage (stage.h): the clone of the runtime execs it first thing, so the
 * process is a fresh single-threaded image here. The code still keeps to async-signal-safe
 * calls and the buffers of struct th_child, as it did when it ran in the copy of Node itself.
 */
#include "child.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "sync.h"

typedef int (*th_op_fn)(struct th_child *c, const struct th_op *op);

static int th_op_close_fds(struct th_child *c, const struct th_op *op);
static int th_op_stdio(struct th_child *c, const struct th_op *op);
static int th_op_sync(struct th_child *c, const struct th_op *op);
static int th_op_created(struct th_child *c, const struct th_op *op);
static int th_op_wait_start(struct th_child *c, const struct th_op *op);

/* Executor and failure stage per op code. Ops without their own stage borrow the nearest one. */
static const struct {
  th_op_fn run;
  uint8_t stage;
} th_ops[TH_OP_MAX + 1] = {
    [TH_OP_CLOSE_FDS] = {th_op_close_fds, TH_STAGE_CLOSE_FDS},
    [TH_OP_NAMESPACE] = {th_op_namespace, TH_STAGE_NAMESPACE},
    [TH_OP_NS_PIDFD] = {th_op_ns_pidfd, TH_STAGE_NAMESPACE},
    [TH_OP_STDIO] = {th_op_stdio, TH_STAGE_CLOSE_FDS},
    [TH_OP_SYNC] = {th_op_sync, TH_STAGE_SYNC},
    [TH_OP_ROOTFS] = {th_op_rootfs, TH_STAGE_ROOTFS},
    [TH_OP_MOUNT] = {th_op_mount, TH_STAGE_MOUNT},
    [TH_OP_DEVICE] = {th_op_device, TH_STAGE_DEVICE},
    [TH_OP_SYMLINK] = {th_op_symlink, TH_STAGE_SYMLINK},
    [TH_OP_HOOK] = {th_op_hook, TH_STAGE_HOOK},
    [TH_OP_PIVOT] = {th_op_pivot, TH_STAGE_PIVOT},
    [TH_OP_MASK_PATH] = {th_op_mask_path, TH_STAGE_MASK_PATH},
    [TH_OP_READONLY_PATH] = {th_op_readonly_path, TH_STAGE_READONLY_PATH},
    [TH_OP_ROOT_READONLY] = {th_op_root_readonly, TH_STAGE_ROOT_READONLY},
    [TH_OP_HOSTNAME] = {th_op_hostname, TH_STAGE_HOSTNAME},
    [TH_OP_DOMAINNAME] = {th_op_domainname, TH_STAGE_DOMAINNAME},
    [TH_OP_SYSCTL] = {th_op_sysctl, TH_STAGE_SYSCTL},
    [TH_OP_OOM_SCORE_ADJ] = {th_op_oom_score_adj, TH_STAGE_OOM_SCORE_ADJ},
    [TH_OP_RLIMIT] = {th_op_rlimit, TH_STAGE_RLIMIT},
    [TH_OP_USER] = {th_op_user, TH_STAGE_USER},
    [TH_OP_UMASK] = {th_op_umask, TH_STAGE_UMASK},
    [TH_OP_CWD] = {th_op_cwd, TH_STAGE_CWD},
    [TH_OP_EXEC_FIFO] = {th_op_exec_fifo, TH_STAGE_EXEC_FIFO},
    [TH_OP_PROCESS] = {th_op_process, TH_STAGE_PROCESS},
    [TH_OP_CREATED] = {th_op_created, TH_STAGE_CREATED},
    [TH_OP_WAIT_START] = {th_op_wait_start, TH_STAGE_WAIT_START},
    [TH_OP_NO_NEW_PRIVS] = {th_op_no_new_privs, TH_STAGE_NO_NEW_PRIVS},
    [TH_OP_CAPS] = {th_op_caps, TH_STAGE_CAPS},
    [TH_OP_SECCOMP] = {th_op_seccomp, TH_STAGE_SECCOMP},
    [TH_OP_EXEC] = {th_op_exec, TH_STAGE_EXEC},
    [TH_OP_SET_NAME] = {th_op_set_name, TH_STAGE_SET_NAME},
    [TH_OP_CAPS_BOUNDING] = {th_op_caps_bounding, TH_STAGE_CAPS_BOUNDING},
    [TH_OP_SESSION_KEYRING] = {th_op_session_keyring, TH_STAGE_SESSION_KEYRING},
    [TH_OP_SCHEDULER] = {th_op_scheduler, TH_STAGE_SCHEDULER},
    [TH_OP_IO_PRIORITY] = {th_op_io_priority, TH_STAGE_IO_PRIORITY},
    [TH_OP_PERSONALITY] = {th_op_personality, TH_STAGE_PERSONALITY},
    [TH_OP_TIME_OFFSETS] = {th_op_time_offsets, TH_STAGE_TIME_OFFSETS},
    [TH_OP_IDMAP_MOUNT] = {th_op_idmap_mount, TH_STAGE_MOUNT},
    [TH_OP_CONSOLE] = {th_op_console, TH_STAGE_CONSOLE},
    [TH_OP_CGROUP_JOIN] = {th_op_cgroup_join, TH_STAGE_CGROUP},
};

void th_child_setup(struct th_child *c, const struct th_plan *p) {
  c->plan = p;
  c->second_fork = th_plan_needs_second_fork(p);
  c->create_flags = th_plan_create_flags(p);
  /* Init joins its cgroups first and creates its cgroup namespace after (th_op_cgroup_join), so
     the namespace is rooted at the container's cgroup. */
  const struct th_op *into = NULL;
  c->defer_cgroupns = 0;
  for (uint32_t i = 0; i < p->n; i++) {
    if (p->ops[i].code != TH_OP_CGROUP_JOIN) continue;
    c->defer_cgroupns = (c->create_flags & CLONE_NEWCGROUP) != 0;
    if (p->ops[i].f[TH_CGROUP_JOIN_MODE].u32 == TH_CGROUP_JOIN_MODE_INTO) into = &p->ops[i];
  }
  if (c->defer_cgroupns) c->create_flags &= ~(uint64_t)CLONE_NEWCGROUP;
  c->cgroup_into_fd = into != NULL ? (int)into->f[TH_CGROUP_JOIN_FD].u32 : -1;
  c->cgroup_into_done = 0;
  /* With a second fork and a root of its own (pivot_root or move), init is born only after the
     root has changed: see th_birth_init. A CHROOT plan shares the runtime's mounts anyway. */
  const struct th_op *pivot = th_plan_find(p, TH_OP_PIVOT);
  c->pivot_first = c->second_fork && pivot != NULL && pivot->f[TH_PIVOT_MODE].u32 != TH_PIVOT_CHROOT;
  c->pidns_fd = -1;
  c->n_deferred = 0;
  c->ns_done = c->have_go = c->created = 0;
  c->ns_pidfd_joined = 0;
  c->doc[0] = c->doc[1] = "";
  c->doc_len[0] = c->doc_len[1] = 0;
  c->exec_path = NULL;
  c->argv = c->envp = NULL;
}

unsigned th_op_fds(const struct th_op *op, int out[3]) {
  unsigned n = 0;
  switch (op->code) {
  case TH_OP_STDIO:
    for (int k = 0; k < 3; k++)
      if (op->f[k].u32 != TH_STDIO_INHERIT && op->f[k].u32 > 2) out[n++] = (int)op->f[k].u32;
    break;
  case TH_OP_IDMAP_MOUNT:
    out[n++] = (int)op->f[TH_IDMAP_MOUNT_TREE_FD].u32;
    break;
  case TH_OP_NS_PIDFD:
    out[n++] = (int)op->f[TH_NS_PIDFD_FD].u32;
    break;
  case TH_OP_CGROUP_JOIN:
    out[n++] = (int)op->f[TH_CGROUP_JOIN_FD].u32;
    break;
  default:
    break;
  }
  return n;
}

int th_child_can_run(unsigned code) {
  return code <= TH_OP_MAX && th_ops[code].run != NULL;
}

pid_t th_raw_clone(unsigned long flags) {
  /* x86_64 argument order: flags, new stack (0: a copy of ours), parent_tid, child_tid, tls. */
  return (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
}

/* clone3(2)'s argument, as far as CLONE_INTO_CGROUP needs it (CLONE_ARGS_SIZE_VER2). */
struct th_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define TH_CLONE_INTO_CGROUP 0x200000000ULL

pid_t th_clone_init(struct th_child *c, unsigned long flags) {
  c->cgroup_into_done = 0;
  if (c->cgroup_into_fd >= 0) {
    struct th_clone_args a = {0};
    a.flags = (flags & ~(unsigned long)CSIGNAL) | TH_CLONE_INTO_CGROUP;
    /* clone3 refuses an exit signal with CLONE_PARENT; the child then gets ours, as with clone. */
    a.exit_signal = (flags & CLONE_PARENT) ? 0 : flags & CSIGNAL;
    a.cgroup = (uint64_t)c->cgroup_into_fd;
    /* Set before the call: the child's copy of c must already say so. */
    c->cgroup_into_done = 1;
    pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof a);
    if (pid >= 0) return pid;
    /* No clone3 (ENOSYS), or the kernel refuses the move from here (with nsdelegate, from
       inside the container's cgroup namespace): clone, and the PROCS op writes cgroup.procs
       through the runtime's fd, where any real refusal is reported with its reason. */
    c->cgroup_into_done = 0;
  }
  return th_raw_clone(flags);
}

const char *th_fd_path(char *out, int fd) {
  struct th_buf b;
  th_buf_init(&b, out, 32);
  th_buf_str(&b, "/proc/self/fd/");
  th_buf_u64(&b, (uint64_t)fd);
  return out;
}

static int th_vfail(struct th_child *c, int err, int complete, va_list ap) {
  th_buf_init(&c->msg, c->msg_mem, sizeof c->msg_mem);
  for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *)) th_buf_str(&c->msg, s);
  c->err_errno = err;
  c->err_complete = complete;
  return err > 0 ? -err : -1;
}

int th_fail(struct th_child *c, int err, ...) {
  va_list ap;
  va_start(ap, err);
  int rc = th_vfail(c, err, 0, ap);
  va_end(ap);
  return rc;
}

int th_fail_complete(struct th_child *c, int err, ...) {
  va_list ap;
  va_start(ap, err);
  int rc = th_vfail(c, err, 1, ap);
  va_end(ap);
  return rc;
}

/* One ERROR record, then exit. Send errors are ignored: there is nobody else to tell. */
static _Noreturn void th_die(struct th_child *c, unsigned stage, int status) {
  th_sync_send(c->sync_fd, TH_MSG_ERROR, stage, c->err_errno, c->err_complete, c->msg.p, c->msg.len);
  _exit(status);
}

/* Dispositions first, then the mask: unblocking first could run one of Node's handlers here. */
static int th_reset_signals(struct th_child *c) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    /* glibc refuses its reserved signals (32, 33) with EINVAL; nothing to reset there. */
    if (sigaction(s, &dfl, NULL) < 0 && errno != EINVAL) {
      char n[TH_NUM_BYTES];
      return th_fail(c, errno, "reset the disposition of signal ", th_u64s(n, (uint64_t)s), NULL);
    }
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) return th_fail(c, errno, "clear the signal mask", NULL);
  return 0;
}

/*
 * PR_SET_PDEATHSIG only fires for a parent that dies after it is set, so check the parent is
 * still there. getppid() is 0 when the parent is outside our pid namespace, so the check on the
 * sync socket (hung up once the runtime's end is closed) covers that case too.
 */
static int th_parent_check(struct th_child *c) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return th_fail(c, errno, "set the parent-death signal", NULL);
  pid_t pp = getppid();
  if (pp != 0 && pp != c->parent_pid) _exit(1);
  struct pollfd p = {.fd = c->sync_fd, .events = POLLIN};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) _exit(1);
  return 0;
}

void th_child_adopt(struct th_child *c) {
  if (th_parent_check(c) < 0) th_die(c, TH_STAGE_PRCTL, 1);
  if (setsid() < 0) {
    th_fail(c, errno, "setsid", NULL);
    th_die(c, TH_STAGE_PRCTL, 1);
  }
}

/*
 * Make fds 0-2 usable by the container: libuv sets O_NONBLOCK on stdio pipes and may leave
 * FD_CLOEXEC on a tty it reopened. O_NONBLOCK lives in the open file description, which Node
 * shares, so for pipes and ttys we open a new description via /proc/self/fd/N (O_NONBLOCK at
 * open so a FIFO with no peer cannot block us, cleared afterwards) and dup it over N; for
 * anything else (sockets) the shared flag is cleared, as runc does.
 */
static int th_fix_stdio(struct th_child *c) {
  for (int fd = 0; fd <= 2; fd++) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) continue; /* not open: nothing to fix */
    if (fcntl(fd, F_SETFD, 0) < 0) return th_fail(c, errno, "clear close-on-exec on stdio", NULL);
    if (!(fl & O_NONBLOCK)) continue;
    struct stat st;
    struct termios tio;
    int fresh = -1;
    if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || (S_ISCHR(st.st_mode) && ioctl(fd, TCGETS, &tio) == 0))) {
      char p[32];
      fresh = open(th_fd_path(p, fd), (fl & (O_ACCMODE | O_APPEND)) | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    }
    if (fresh >= 0) {
      if (fcntl(fresh, F_SETFL, fl & ~O_NONBLOCK & ~O_ACCMODE) < 0 || dup2(fresh, fd) < 0) {
        int e = errno;
        close(fresh);
        return th_fail(c, e, "reopen stdio without O_NONBLOCK", NULL);
      }
      close(fresh);
    } else if (fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
      return th_fail(c, errno, "clear O_NONBLOCK on stdio", NULL);
    }
  }
  return 0;
}

/*
 * STDIO: make the fds the op names 0, 1 and 2. Each source is first copied above 2, so a source
 * that is itself 0-2, or one fd given for two slots, survives the dup2s. Runs before th_fix_stdio
 * (which then clears close-on-exec and O_NONBLOCK on the new 0-2) and before CLOSE_FDS (which
 * closes the sources).
 */
static int th_apply_stdio(struct th_child *c) {
  char a[TH_NUM_BYTES];
  for (uint32_t i = 0; i < c->plan->n; i++) {
    const struct th_op *op = &c->plan->ops[i];
    if (op->code != TH_OP_STDIO) continue;
    int copy[3] = {-1, -1, -1};
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
      uint32_t src = op->f[k].u32;
      if (src == TH_STDIO_INHERIT) continue;
      if ((int)src == c->sync_fd)
        rc = th_fail_complete(c, EBADF, "stdio fd ", th_u64s(a, src), " is the sync socket", NULL);
      else if ((copy[k] = fcntl((int)src, F_DUPFD_CLOEXEC, 3)) < 0)
        rc = th_fail(c, errno, "stdio: fd ", th_u64s(a, src), NULL);
    }
    for (int k = 0; k < 3 && rc == 0; k++)
      if (copy[k] >= 0 && dup2(copy[k], k) < 0)
        rc = th_fail(c, errno, "stdio: make fd ", th_u64s(a, (uint64_t)k), NULL);
    for (int k = 0; k < 3; k++)
      if (copy[k] >= 0) close(copy[k]);
    return rc;
  }
  return 0;
}

/* The op itself did its work in th_apply_stdio, before the ops ran. */
static int th_op_stdio(struct th_child *c, const struct th_op *op) {
  (void)c;
  (void)op;
  return 0;
}

static int th_close_range(unsigned lo, unsigned hi) {
  return lo > hi ? 0 : (int)syscall(SYS_close_range, lo, hi, 0);
}

static int th_op_close_fds(struct th_child *c, const struct th_op *op) {
  unsigned keep = op->f[TH_CLOSE_FDS_PRESERVE].u32, lo = 3 + keep, s = (unsigned)c->sync_fd;
  char a[TH_NUM_BYTES], b[TH_NUM_BYTES];
  /* Keep the sync socket and the mount tree fds IDMAP_MOUNT ops name; close the gaps. */
  unsigned keep_fds[64], nk = 0;
  keep_fds[nk++] = s;
  for (uint32_t i = 0; i < c->plan->n && nk < 64; i++)
    if (c->plan->ops[i].code == TH_OP_IDMAP_MOUNT)
      keep_fds[nk++] = c->plan->ops[i].f[TH_IDMAP_MOUNT_TREE_FD].u32;
    else if (c->plan->ops[i].code == TH_OP_NS_PIDFD)
      keep_fds[nk++] = c->plan->ops[i].f[TH_NS_PIDFD_FD].u32;
    else if (c->plan->ops[i].code == TH_OP_CGROUP_JOIN)
      keep_fds[nk++] = c->plan->ops[i].f[TH_CGROUP_JOIN_FD].u32;
  for (unsigned i = 1; i < nk; i++)
    for (unsigned j = i; j > 0 && keep_fds[j - 1] > keep_fds[j]; j--) {
      unsigned t = keep_fds[j];
      keep_fds[j] = keep_fds[j - 1];
      keep_fds[j - 1] = t;
    }
  unsigned from = lo;
  for (unsigned i = 0; i < nk; i++) {
    if (keep_fds[i] < lo) {
      if (keep_fds[i] != s) continue;
      return th_fail_complete(c, EBADF, "the sync socket (fd ", th_u64s(a, s), ") is among the preserved fds 3..",
                              th_u64s(b, lo - 1), NULL);
    }
    if (keep_fds[i] > from && th_close_range(from, keep_fds[i] - 1) < 0)
      return th_fail(c, errno, "close fds from ", th_u64s(a, from), NULL);
    if (keep_fds[i] + 1 > from) from = keep_fds[i] + 1;
  }
  if (th_close_range(from, ~0U) < 0) return th_fail(c, errno, "close fds from ", th_u64s(a, from), NULL);
  for (unsigned fd = 3; fd < lo; fd++) {
    int fl = fcntl((int)fd, F_GETFD);
    if (fl < 0) continue; /* a preserved slot that holds nothing */
    if ((fl & FD_CLOEXEC) && fcntl((int)fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
      return th_fail(c, errno, "clear close-on-exec on preserved fd ", th_u64s(a, fd), NULL);
  }
  return 0;
}

/* Wait for one message of type want; ABORT and a vanished runtime end the child silently. When
   rfd is not NULL, an fd that came with the message is put there (-1 for none). */
static int th_await(struct th_child *c, uint32_t want, const char *what, uint8_t *buf, size_t len, int *rfd) {
  int n = th_sync_recv_fd(c->sync_fd, -1, buf, len, rfd);
  if (n == 0) _exit(1);
  if (n < 0) return th_fail(c, -n, "wait for ", what, " from the runtime", NULL);
  uint32_t type = th_sync_u32(buf, 0);
  if (type == TH_MSG_ABORT) _exit(1);
  if (type != want) {
    char t[TH_NUM_BYTES];
    return th_fail_complete(c, EPROTO, "waiting for ", what, ", got message type ", th_u64s(t, type), NULL);
  }
  return n;
}

/*
 * GO's payload: the createContainer and the startContainer state, each NUL-terminated. A payload
 * too big for a datagram (annotations of any size) comes as a sealed memfd instead, which is
 * mapped read-only and closed: the hooks read the documents from the mapping.
 */
static int th_wait_go(struct th_child *c) {
  int mfd = -1;
  int n = th_await(c, TH_MSG_GO, "go", c->go_buf, sizeof c->go_buf, &mfd);
  if (n < 0) {
    if (mfd >= 0) close(mfd);
    return n;
  }
  const char *p = (const char *)c->go_buf + TH_MSG_HEADER_BYTES, *end = (const char *)c->go_buf + n;
  if (mfd >= 0) {
    struct stat st = {0};
    char a[TH_NUM_BYTES];
    int e = fstat(mfd, &st) < 0 ? errno : 0;
    void *m = MAP_FAILED;
    if (e == 0 && (st.st_size <= 0 || (uint64_t)st.st_size > TH_GO_MAX_BYTES))
      e = EMSGSIZE;
    else if (e == 0 && (m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, mfd, 0)) == MAP_FAILED)
      e = errno;
    close(mfd);
    if (e != 0)
      return th_fail(c, e, "go: read the hook states (", th_u64s(a, (uint64_t)st.st_size), " bytes) from their memfd",
                     NULL);
    p = m;
    end = p + st.st_size;
  }
  for (int d = 0; d < 2; d++) {
    const char *q = p;
    while (q < end && *q != '\0') q++;
    if (q == end && q != p) return th_fail_complete(c, EPROTO, "go: hook state is not NUL-terminated", NULL);
    c->doc[d] = p;
    c->doc_len[d] = (size_t)(q - p);
    p = q < end ? q + 1 : q;
  }
  /* An empty payload leaves both documents empty (a plan without hooks needs none). */
  if (c->doc_len[0] == 0) c->doc[0] = "";
  if (c->doc_len[1] == 0) c->doc[1] = "";
  c->have_go = 1;
  if (c->dumpable_until_go && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return th_fail(c, errno, "make the process non-dumpable", NULL);
  return 0;
}

static int th_op_sync(struct th_child *c, const struct th_op *op) {
  uint8_t buf[256];
  int rc = th_sync_send(c->sync_fd, TH_MSG_HOOKS, op->f[TH_SYNC_STAGE].u32, 0, 0, NULL, 0);
  if (rc < 0) return th_fail(c, -rc, "ask the runtime to run hooks", NULL);
  rc = th_await(c, TH_MSG_RESUME, "resume", buf, sizeof buf, NULL);
  return rc < 0 ? rc : 0;
}

static int th_op_created(struct th_child *c, const struct th_op *op) {
  (void)op;
  /* Report what the runtime cannot see from outside, so tests can hold us to it: init must be
     non-dumpable (no ptrace, no /proc/<pid>/mem or fd access by the container's processes). */
  char facts[64], num[TH_NUM_BYTES];
  struct th_buf b;
  th_buf_init(&b, facts, sizeof facts);
  th_buf_str(&b, "dumpable=");
  th_buf_str(&b, th_i64s(num, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)));
  th_buf_str(&b, " nspid=");
  th_buf_str(&b, th_i64s(num, getpid()));
  int rc = th_sync_send(c->sync_fd, TH_MSG_CREATED, 0, 0, (int32_t)getpid(), (const uint8_t *)facts, (uint32_t)b.len);
  if (rc < 0) return th_fail(c, -rc, "tell the runtime the container is created", NULL);
  c->created = 1;
  /* `create` returns and the runtime exits; init must outlive it. */
  if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0) return th_fail(c, errno, "clear the parent-death signal", NULL);
  return 0;
}

static int th_op_wait_start(struct th_child *c, const struct th_op *op) {
  (void)op;
  char b;
  ssize_t n;
  do n = read(c->fifo_fd, &b, 1);
  while (n < 0 && errno == EINTR);
  if (n < 0) return th_fail(c, errno, "wait for start on the exec fifo", NULL);
  close(c->fifo_fd);
  c->fifo_fd = -1;
  return 0;
}

/*
 * Pivot-first, after PIVOT: the intermediate clones init and exits (th_birth_init). Init waits
 * for a GO of its own: the runtime sends it once it has read init's pid (which the hook states
 * carry), so nothing init reports can overtake that pid. Then init joins its cgroups and attaches
 * the mounts the intermediate left to it, and the plan goes on.
 */
static void th_init_start(struct th_child *c) {
  if (th_birth_init(c) < 0) th_die(c, TH_STAGE_NAMESPACE, 1);
  c->have_go = 0;
  if (th_wait_go(c) < 0) th_die(c, TH_STAGE_SYNC, 1);
  for (uint32_t i = 0; i < c->plan->n; i++)
    if (c->plan->ops[i].code == TH_OP_CGROUP_JOIN && th_op_cgroup_join(c, &c->plan->ops[i]) < 0)
      th_die(c, TH_STAGE_CGROUP, 1);
  for (unsigned k = 0; k < c->n_deferred; k++)
    if (th_mount_deferred(c, k) < 0) th_die(c, TH_STAGE_MOUNT, 1);
}

/* runc's and the shells' convention: 127 not found, 126 found but not executable. */
static int th_exec_status(int err) {
  if (err == ENOENT) return 127;
  if (err == EACCES || err == ENOEXEC) return 126;
  return 1;
}

_Noreturn void th_child_main(struct th_child *c) {
  th_buf_init(&c->msg, c->msg_mem, sizeof c->msg_mem);
  c->root_fd = -1;
  c->fifo_fd = -1;
  /* Holding the runtime's end would hide its death from us (no hang-up while we hold a copy). */
  close(c->parent_fd);
  if (th_reset_signals(c) < 0) th_die(c, TH_STAGE_SIGNALS, 1);
  if (th_parent_check(c) < 0) th_die(c, TH_STAGE_PRCTL, 1);
  /* Non-dumpable before touching a namespace: no ptrace or /proc/<pid> access by the container.
     One exception: an unprivileged runtime creating a user namespace must open our
     /proc/<pid>/{uid,gid}_map and setgroups, which a non-dumpable process's owner (root) keeps
     from it. Then we stay dumpable until GO, which comes after the maps are written and before
     anything of the container runs, and turn non-dumpable right there (th_wait_go). */
  c->dumpable_until_go = (c->create_flags & CLONE_NEWUSER) != 0 && geteuid() != 0;
  if (!c->dumpable_until_go && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
    th_fail(c, errno, "make the process non-dumpable", NULL);
    th_die(c, TH_STAGE_PRCTL, 1);
  }
  /* With a second fork, the grandchild starts the session (th_child_adopt). */
  if (!c->second_fork && setsid() < 0) {
    th_fail(c, errno, "setsid", NULL);
    th_die(c, TH_STAGE_PRCTL, 1);
  }
  if (th_apply_stdio(c) < 0 || th_fix_stdio(c) < 0) th_die(c, TH_STAGE_CLOSE_FDS, 1);
  /* Mount points and files the helper creates get predictable modes whatever Node's umask is;
     the UMASK op sets the container's own. */
  umask(022);

  for (uint32_t i = 0; i < c->plan->n; i++) {
    const struct th_op *op = &c->plan->ops[i];
    unsigned code = op->code;
    if (!c->have_go && code != TH_OP_CLOSE_FDS && code != TH_OP_STDIO && code != TH_OP_SET_NAME &&
        code != TH_OP_NAMESPACE && code != TH_OP_NS_PIDFD && code != TH_OP_CGROUP_JOIN && th_wait_go(c) < 0)
      th_die(c, TH_STAGE_SYNC, 1);
    /* Pivot-first: init joins its cgroups after its birth (th_init_start), and some mounts wait
       for it (th_mount_must_defer). */
    if (c->pivot_first && code == TH_OP_CGROUP_JOIN) continue;
    int rc = c->pivot_first && (code == TH_OP_MOUNT || code == TH_OP_IDMAP_MOUNT) && th_mount_must_defer(c, op)
                 ? th_mount_defer(c, op)
                 : th_ops[code].run(c, op);
    if (rc < 0) th_die(c, th_ops[code].stage, code == TH_OP_EXEC ? th_exec_status(c->err_errno) : 1);
    if (c->pivot_first && code == TH_OP_PIVOT) th_init_start(c);
  }
  /* Unreachable: the decoder insists on EXEC last, and EXEC returns only on failure. */
  th_fail_complete(c, 0, "the plan ended without exec", NULL);
  th_die(c, TH_STAGE_EXEC, 1);
}
