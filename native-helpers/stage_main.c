/*
 * build/tsrun-stage: the sealed stage (stage.h). tsrun_spawn's clone execs a sealed memfd copy
 * of this static executable; it reads the plan from the memfd named in argv, rebuilds the
 * child's context and runs th_child_main, the second fork included. Run by hand, it only says
 * what it is: it needs the fds its parent set up.
 *
 * Static (no ld.so, no shared libraries), so nothing of the host's file system is mapped into
 * the process: /proc/N/exe and every /proc/N/map_files entry name the sealed memfd. It calls
 * nothing that loads NSS modules (getpwnam and the like), which a static glibc would dlopen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "stage.h"
#include "sync.h"

static struct th_child th_ctx;

static int th_num(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Before the context exists: one ERROR record on the sync socket, then exit. */
static _Noreturn void th_early_die(int sync_fd, int err, const char *msg) {
  th_sync_send(sync_fd, TH_MSG_ERROR, TH_STAGE_DECODE, err, 1, msg, strlen(msg));
  _exit(1);
}

int main(int argc, char **argv) {
  long sync_fd, plan_fd, len, ppid, cap_last, into;
  unsigned long long inh = 0;
  char *inh_end = NULL;
  if (argc != TH_STAGE_ARGC || strcmp(argv[1], TH_STAGE_MAGIC) != 0 || th_num(argv[2], 0, 1 << 30, &sync_fd) < 0 ||
      th_num(argv[3], 0, 1 << 30, &plan_fd) < 0 || th_num(argv[4], TH_PLAN_HEADER_BYTES, TH_PLAN_MAX_BYTES, &len) < 0 ||
      th_num(argv[5], 1, 1L << 30, &ppid) < 0 || th_num(argv[6], 1, 63, &cap_last) < 0 ||
      th_num(argv[7], 0, 1, &into) < 0 ||
      (strcmp(argv[8], "-") != 0 &&
       ((inh = strtoull(argv[8], &inh_end, 16)), inh_end == argv[8] || *inh_end != '\0'))) {
    static const char usage[] =
        "tsrun-stage: the container set-up stage of tsrun's helper; the runtime runs it from a sealed memfd "
        "with the fds it prepared, it is not meant to be run by hand\n";
    ssize_t w = write(2, usage, sizeof usage - 1);
    (void)w;
    return 2;
  }
  prctl(PR_SET_NAME, TH_STAGE_FILE, 0, 0, 0);
  /* Capabilities carried across the exec as ambient ones (stage.h): back to what they were. */
  if (strcmp(argv[8], "-") != 0) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 || syscall(SYS_capget, &h, d) < 0)
      th_early_die((int)sync_fd, errno, "stage: clear the ambient capabilities");
    d[0].inheritable = (uint32_t)inh;
    d[1].inheritable = (uint32_t)(inh >> 32);
    if (syscall(SYS_capset, &h, d) < 0)
      th_early_die((int)sync_fd, errno, "stage: restore the inheritable capabilities");
  }

  /* The plan: exactly len bytes from the sealed memfd, which then goes (it could otherwise land
     among the container's preserved fds). */
  struct stat st;
  uint8_t *buf = malloc((size_t)len);
  if (buf == NULL) th_early_die((int)sync_fd, ENOMEM, "stage: no memory for the plan");
  if (fstat((int)plan_fd, &st) < 0 || st.st_size != len)
    th_early_die((int)sync_fd, EINVAL, "stage: the plan memfd is not the size announced");
  for (long done = 0; done < len;) {
    ssize_t n = pread((int)plan_fd, buf + done, (size_t)(len - done), done);
    if (n > 0)
      done += n;
    else if (n == 0 || errno != EINTR)
      th_early_die((int)sync_fd, n == 0 ? EIO : errno, "stage: read the plan from its memfd");
  }
  close((int)plan_fd);

  static struct th_plan plan;
  static char err[1024];
  if (th_plan_decode(buf, (size_t)len, &plan, err, sizeof err) < 0) th_early_die((int)sync_fd, EINVAL, err);

  /* The exec kept these open for us; the container's program must not inherit them, as it did
     not when the runtime made them close-on-exec. CLOSE_FDS decides about the preserved ones. */
  if (fcntl((int)sync_fd, F_SETFD, FD_CLOEXEC) < 0)
    th_early_die((int)sync_fd, errno, "stage: make the sync socket close-on-exec");
  for (uint32_t i = 0; i < plan.n; i++) {
    int fds[3];
    for (unsigned k = 0, n = th_op_fds(&plan.ops[i], fds); k < n; k++) fcntl(fds[k], F_SETFD, FD_CLOEXEC);
  }

  struct th_child *c = &th_ctx;
  th_child_setup(c, &plan);
  c->sync_fd = (int)sync_fd;
  c->parent_fd = -1; /* close-on-exec in the runtime: the exec closed our copy */
  c->parent_pid = (pid_t)ppid;
  c->cap_last_cap = (int)cap_last;
  c->cgroup_into_done = (int)into;
  th_child_main(c);
}
