/*
 * The runtime's side of the sealed stage (stage.h): finding and sealing the stage binary, the
 * plan memfd, and the child's exec. stage_main.c is the other side.
 */
#include "stage.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sync.h"

/* The sealed stage, made once per process (tsrund and the shims spawn many containers). */
static int th_stage_exe = -1;
static dev_t th_stage_dev;
static ino_t th_stage_ino;

__attribute__((format(printf, 3, 4))) int th_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return 0;
}

const char *th_errtext(int e, char *buf, size_t len) {
  const char *s = strerror_r(e, buf, len);
  if (s != buf) snprintf(buf, len, "%s", s);
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

/* Set by an executable that links these sources (the native shim): where its stage binary is. */
static char th_stage_file[PATH_MAX];

int th_stage_set_path(const char *path) {
  if (path == NULL || path[0] != '/' || strlen(path) >= sizeof th_stage_file) return -EINVAL;
  memcpy(th_stage_file, path, strlen(path) + 1);
  return 0;
}

/* build/tsrun-stage beside the library or addon this code was loaded from (or as set above). */
static int th_stage_path(char *out, size_t len) {
  if (th_stage_file[0] != '\0') return snprintf(out, len, "%s", th_stage_file) >= (int)len ? -ENAMETOOLONG : 0;
  Dl_info info;
  if (dladdr((void *)th_stage_path, &info) == 0 || info.dli_fname == NULL) return -ENOENT;
  const char *slash = strrchr(info.dli_fname, '/');
  int dir = slash == NULL ? 1 : (int)(slash - info.dli_fname);
  int n = slash == NULL ? snprintf(out, len, "./%s", TH_STAGE_FILE)
                        : snprintf(out, len, "%.*s/%s", dir, info.dli_fname, TH_STAGE_FILE);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Still our memfd? Something in the process may have closed the fd and reused the number. */
static int th_stage_cached(void) {
  struct stat st;
  return th_stage_exe >= 0 && fstat(th_stage_exe, &st) == 0 && st.st_dev == th_stage_dev && st.st_ino == th_stage_ino;
}

static int th_stage_open(char *err, size_t errlen) {
  if (th_stage_cached()) return th_stage_exe;
  th_stage_exe = -1;
  char path[PATH_MAX], fdp[32], et[128];
  int rc = th_stage_path(path, sizeof path);
  if (rc < 0)
    return th_errf(err, errlen, "find the stage binary %s beside the helper library: %s", TH_STAGE_FILE,
                   th_errtext(-rc, et, sizeof et)),
           rc;
  int src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (src < 0) {
    rc = -errno;
    return th_errf(err, errlen, "open the stage binary %s: %s (run 'make build')", path,
                   th_errtext(-rc, et, sizeof et)),
           rc;
  }
  int rw = th_memfd_sealed(TH_STAGE_FILE, NULL, 0, src, 1);
  close(src);
  if (rw < 0)
    return th_errf(err, errlen, "copy the stage binary %s into a sealed memfd: %s", path,
                   th_errtext(-rw, et, sizeof et)),
           rw;
  /* Keep a read-only description: exec refuses a file open for writing (ETXTBSY), and nobody
     needs the writable one (the seals forbid writes anyway). */
  snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", rw);
  int ro = open(fdp, O_RDONLY | O_CLOEXEC);
  rc = ro < 0 ? -errno : 0;
  close(rw);
  struct stat st;
  if (rc == 0 && fstat(ro, &st) < 0) rc = -errno;
  if (rc < 0) {
    if (ro >= 0) close(ro);
    return th_errf(err, errlen, "reopen the sealed stage read-only: %s", th_errtext(-rc, et, sizeof et)), rc;
  }
  th_stage_exe = ro;
  th_stage_dev = st.st_dev;
  th_stage_ino = st.st_ino;
  return ro;
}

int th_stage_prepare(struct th_sealed *s, const struct th_child *c, const uint8_t *plan, uint32_t len, char *err,
                     size_t errlen) {
  char et[128];
  s->plan_fd = -1;
  int exe = th_stage_open(err, errlen);
  if (exe < 0) return exe;
  s->exe_fd = exe;
  int pfd = th_memfd_sealed("tsrun-plan", plan, len, -1, 0);
  if (pfd < 0)
    return th_errf(err, errlen, "put the plan (%u bytes) in a sealed memfd: %s", len, th_errtext(-pfd, et, sizeof et)),
           pfd;
  s->plan_fd = pfd;
  snprintf(s->args[0], sizeof s->args[0], "%s", TH_STAGE_FILE);
  snprintf(s->args[1], sizeof s->args[1], "%s", TH_STAGE_MAGIC);
  snprintf(s->args[2], sizeof s->args[2], "%d", c->sync_fd);
  snprintf(s->args[3], sizeof s->args[3], "%d", pfd);
  snprintf(s->args[4], sizeof s->args[4], "%u", len);
  snprintf(s->args[5], sizeof s->args[5], "%d", (int)c->parent_pid);
  snprintf(s->args[6], sizeof s->args[6], "%d", c->cap_last_cap);
  snprintf(s->args[7], sizeof s->args[7], "0"); /* cgroup_into_done: the child writes its own */
  /* The clone itself creates the user namespace: capabilities must survive the exec (stage.h). */
  s->carry_caps = (c->create_flags & CLONE_NEWUSER) != 0 && !c->second_fork;
  snprintf(s->args[8], sizeof s->args[8], "-");
  if (s->carry_caps) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) {
      int e = errno;
      th_stage_release(s);
      return th_errf(err, errlen, "capget: %s", th_errtext(e, et, sizeof et)), -e;
    }
    snprintf(s->args[8], sizeof s->args[8], "%llx", (unsigned long long)d[1].inheritable << 32 | d[0].inheritable);
  }
  for (int i = 0; i < TH_STAGE_ARGC; i++) s->argv[i] = s->args[i];
  s->argv[TH_STAGE_ARGC] = NULL;
  s->envp[0] = NULL;
  return 0;
}

void th_stage_release(struct th_sealed *s) {
  if (s->plan_fd >= 0) close(s->plan_fd);
  s->plan_fd = -1;
}

static _Noreturn void th_stage_die(struct th_child *c, int err, const char *what, int fd, const char *tail) {
  struct th_buf b;
  char num[TH_NUM_BYTES];
  th_buf_init(&b, c->msg_mem, sizeof c->msg_mem);
  th_buf_str(&b, what);
  if (fd >= 0) th_buf_str(&b, th_u64s(num, (uint64_t)fd));
  th_buf_str(&b, tail);
  th_sync_send(c->sync_fd, TH_MSG_ERROR, TH_STAGE_CLONE, err, 0, b.p, b.len);
  _exit(1);
}

/* Make fd survive the exec. A number that names nothing is left for the stage to report. */
static void th_keep(struct th_child *c, int fd) {
  int fl = fcntl(fd, F_GETFD);
  if (fl >= 0 && (fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
    th_stage_die(c, errno, "clear close-on-exec for the stage on fd ", fd, "");
}

/* Inheritable := permitted, and every permitted capability into the ambient set. */
static void th_carry_caps(struct th_child *c) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) < 0) th_stage_die(c, errno, "capget before the stage", -1, "");
  d[0].inheritable = d[0].permitted;
  d[1].inheritable = d[1].permitted;
  if (syscall(SYS_capset, &h, d) < 0) th_stage_die(c, errno, "capset inheritable before the stage", -1, "");
  for (int cap = 0; cap <= c->cap_last_cap; cap++) {
    uint32_t word = d[cap / 32].permitted;
    if (((word >> (cap % 32)) & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      th_stage_die(c, errno, "raise the ambient capability ", cap, " for the stage");
  }
}

_Noreturn void th_stage_exec(struct th_child *c, struct th_sealed *s) {
  /* The only state the clone itself decided; everything else the stage derives from the plan. */
  s->args[7][0] = c->cgroup_into_done ? '1' : '0';
  if (s->carry_caps) th_carry_caps(c);
  for (int fd = 0; fd <= 2; fd++) th_keep(c, fd);
  th_keep(c, c->sync_fd);
  th_keep(c, s->plan_fd);
  const struct th_plan *p = c->plan;
  for (uint32_t i = 0; i < p->n; i++) {
    const struct th_op *op = &p->ops[i];
    int fds[3];
    for (unsigned k = 0, n = th_op_fds(op, fds); k < n; k++) th_keep(c, fds[k]);
    if (op->code != TH_OP_CLOSE_FDS) continue;
    /* The preserved fds 3..3+n-1, except the runtime's own: the sealed stage (the exec
       consumes it) and the runtime's end of the sync socket (the stage must not hold it). */
    unsigned hi = 3 + op->f[TH_CLOSE_FDS_PRESERVE].u32;
    for (unsigned fd = 3; fd < hi; fd++)
      if ((int)fd != s->exe_fd && (int)fd != c->parent_fd) th_keep(c, (int)fd);
  }
  syscall(SYS_execveat, s->exe_fd, "", s->argv, s->envp, AT_EMPTY_PATH);
  th_stage_die(c, errno, "exec the sealed stage binary (memfd fd ", s->exe_fd, ")");
}
