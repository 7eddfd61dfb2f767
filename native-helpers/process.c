/*
 * The process's surroundings and the exec itself: HOSTNAME, DOMAINNAME, SET_NAME, SYSCTL,
 * OOM_SCORE_ADJ, CWD, EXEC_FIFO, PROCESS (find the program) and EXEC.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <termios.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_resolve.h"
#include "sync.h"

int th_op_hostname(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = &op->f[TH_HOSTNAME_NAME];
  if (sethostname(f->s, f->len) < 0) return th_fail(c, errno, "sethostname ", f->s, NULL);
  return 0;
}

int th_op_domainname(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = &op->f[TH_DOMAINNAME_NAME];
  if (setdomainname(f->s, f->len) < 0) return th_fail(c, errno, "setdomainname ", f->s, NULL);
  return 0;
}

/*
 * A session keyring of the container's own, so it cannot read the caller's keys (runc does the
 * same unless --no-new-keyring). Kernels without keyrings (ENOSYS) are not an error, as in runc.
 */
int th_op_session_keyring(struct th_child *c, const struct th_op *op) {
  const char *name = op->f[TH_SESSION_KEYRING_NAME].s;
  /* keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): glibc has no wrapper. */
  if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name, 0, 0, 0) < 0 && errno != ENOSYS)
    return th_fail(c, errno, "join session keyring ", name, NULL);
  return 0;
}

int th_op_set_name(struct th_child *c, const struct th_op *op) {
  /* The kernel keeps the first 15 bytes (TASK_COMM_LEN). */
  if (prctl(PR_SET_NAME, op->f[TH_SET_NAME_NAME].s, 0, 0, 0) < 0)
    return th_fail(c, errno, "set the process name ", op->f[TH_SET_NAME_NAME].s, NULL);
  return 0;
}

/*
 * Write value to an open procfs file. The procfs check stops an image that ships its own /proc
 * contents (no proc mounted there) from turning the write into a write elsewhere.
 */
static int th_write_proc(struct th_child *c, int fd, const char *path, const char *value, size_t len) {
  struct statfs s;
  if (fstatfs(fd, &s) < 0) return th_fail(c, errno, "write ", path, " (\"", value, "\"): statfs", NULL);
  if (s.f_type != PROC_SUPER_MAGIC) return th_fail_complete(c, EXDEV, "write ", path, ": not on procfs", NULL);
  ssize_t n;
  do n = write(fd, value, len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return th_fail(c, errno, "write ", path, " (\"", value, "\")", NULL);
  if ((size_t)n != len) return th_fail(c, EIO, "write ", path, " (\"", value, "\"): short write", NULL);
  return 0;
}

int th_op_sysctl(struct th_child *c, const struct th_op *op) {
  const char *key = op->f[TH_SYSCTL_KEY].s, *value = op->f[TH_SYSCTL_VALUE].s;
  char *p = c->path_b;
  struct th_buf b;
  th_buf_init(&b, p, PATH_MAX);
  th_buf_str(&b, "/proc/sys/");
  size_t at = b.len;
  th_buf_str(&b, key);
  if (b.len + 1 >= PATH_MAX) return th_fail(c, ENAMETOOLONG, "sysctl ", key, NULL);
  /* The decoder refused empty, "." and ".." components, so this stays under /proc/sys. */
  for (size_t i = at; i < b.len; i++)
    if (p[i] == '.') p[i] = '/';
  int fd = th_resolve(c, p, O_WRONLY, RESOLVE_NO_SYMLINKS);
  if (fd < 0) return th_fail(c, -fd, "write ", p, " (\"", value, "\")", NULL);
  int rc = th_write_proc(c, fd, p, value, op->f[TH_SYSCTL_VALUE].len);
  close(fd);
  return rc;
}

int th_op_oom_score_adj(struct th_child *c, const struct th_op *op) {
  static const char path[] = "/proc/self/oom_score_adj";
  char v[TH_NUM_BYTES];
  th_i64s(v, (int64_t)op->f[TH_OOM_SCORE_ADJ_VALUE].u64);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return th_fail(c, errno, "write ", path, " (\"", v, "\")", NULL);
  int rc = th_write_proc(c, fd, path, v, strlen(v));
  close(fd);
  return rc;
}

int th_op_cwd(struct th_child *c, const struct th_op *op) {
  const char *path = op->f[TH_CWD_PATH].s;
  int fd = th_resolve_create(c, path, TH_CREATE_DIR);
  if (fd < 0) return th_fail(c, -fd, "create cwd ", path, NULL);
  int rc = fchdir(fd), e = errno;
  close(fd);
  if (rc < 0) return th_fail(c, e, "chdir to cwd ", path, NULL);
  /* getcwd(2) (the syscall, not glibc's wrapper, which hides it) prefixes "(unreachable)" when
     the cwd is outside our root: a leaked host directory fd (CVE-2024-21626). */
  long n = syscall(SYS_getcwd, c->path_b, PATH_MAX);
  if (n < 0) return th_fail(c, errno, "getcwd after chdir to ", path, NULL);
  if (c->path_b[0] != '/') return th_fail_complete(c, 0, "cwd ", path, " is outside the container root", NULL);
  return 0;
}

int th_op_exec_fifo(struct th_child *c, const struct th_op *op) {
  const char *path = op->f[TH_EXEC_FIFO_PATH].s;
  /* O_RDWR never blocks in open(2) on a FIFO (fifo(7)); WAIT_START blocks in read instead. */
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return th_fail(c, errno, "open the exec fifo ", path, NULL);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
    close(fd);
    return th_fail_complete(c, EINVAL, "the exec fifo ", path, " is not a FIFO", NULL);
  }
  c->fifo_fd = fd;
  return 0;
}

static int th_is_executable(const char *path, struct stat *st) {
  return stat(path, st) == 0 && S_ISREG(st->st_mode) && (st->st_mode & 0111) != 0;
}

/* The last PATH= in env wins, as it would after setting each variable in order. */
static const char *th_env_path(char *const *env) {
  const char *v = NULL;
  for (; *env != NULL; env++)
    if (strncmp(*env, "PATH=", 5) == 0) v = *env + 5;
  return v;
}

static int th_env_has(char *const *env, const char *key, size_t klen) {
  for (; *env != NULL; env++)
    if (strncmp(*env, key, klen) == 0) return 1;
  return 0;
}

/*
 * HOME is not in the env: set it from the container's /etc/passwd entry for our uid, or "/" when
 * there is none, as runc does (libcontainer/init_linux.go). The decoder left a spare NULL slot at
 * the end of the env list for this, so nothing is allocated.
 */
static void th_set_home(struct th_child *c, char *const *env, size_t count) {
  const char *home = "/";
  size_t home_len = 1;
  int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    size_t used = 0;
    ssize_t n;
    while (used < sizeof c->passwd_buf - 1 && (n = read(fd, c->passwd_buf + used, sizeof c->passwd_buf - 1 - used)) > 0)
      used += (size_t)n;
    close(fd);
    c->passwd_buf[used] = '\0';
    char uid[TH_NUM_BYTES];
    const char *want = th_u64s(uid, (uint64_t)getuid());
    size_t want_len = strlen(want);
    /* name:passwd:uid:gid:gecos:dir:shell */
    for (char *line = c->passwd_buf; *line != '\0';) {
      char *eol = strchr(line, '\n');
      size_t llen = eol ? (size_t)(eol - line) : strlen(line);
      const char *f[7] = {0};
      size_t fl[7] = {0};
      int k = 0;
      const char *q = line;
      for (size_t i = 0; i <= llen && k < 7; i++) {
        if (i == llen || line[i] == ':') {
          f[k] = q;
          fl[k] = (size_t)(line + i - q);
          k++;
          q = line + i + 1;
        }
      }
      if (k >= 6 && fl[2] == want_len && strncmp(f[2], want, want_len) == 0 && fl[5] > 0) {
        home = f[5];
        home_len = fl[5];
        break;
      }
      if (eol == NULL) break;
      line = eol + 1;
    }
  }
  if (home_len > PATH_MAX) home_len = 1, home = "/";
  memcpy(c->home_env, "HOME=", 5);
  memcpy(c->home_env + 5, home, home_len);
  c->home_env[5 + home_len] = '\0';
  ((char **)env)[count] = c->home_env;
}

/*
 * Find args[0] like Go's exec.LookPath (which runc uses), with runc's exact wording: engines
 * match on it. Messages marked complete carry their own reason; the others get the errno text.
 */
int th_op_process(struct th_child *c, const struct th_op *op) {
  char *const *args = op->f[TH_PROCESS_ARGS].list;
  const char *arg0 = args[0];
  struct stat st;
  c->argv = args;
  c->envp = op->f[TH_PROCESS_ENV].list;
  if (!th_env_has(c->envp, "HOME=", 5)) th_set_home(c, c->envp, op->f[TH_PROCESS_ENV].len);
  if (strchr(arg0, '/') != NULL) {
    if (stat(arg0, &st) < 0) return th_fail(c, errno, "exec: \"", arg0, "\": stat ", arg0, NULL);
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
      return th_fail_complete(c, EACCES, "exec: \"", arg0, "\": permission denied", NULL);
    c->exec_path = arg0;
    return 0;
  }
  const char *path = th_env_path(c->envp);
  if (path == NULL) path = op->f[TH_PROCESS_DEFAULT_PATH].s;
  size_t alen = strlen(arg0);
  /* An empty PATH searches nothing (Go's filepath.SplitList("") is empty); an empty entry is ".". */
  for (const char *p = path; *path != '\0'; p++) {
    const char *end = strchr(p, ':');
    size_t dlen = end ? (size_t)(end - p) : strlen(p);
    const char *dir = dlen ? p : ".";
    if (dlen == 0) dlen = 1;
    if (dlen + 1 + alen < PATH_MAX) {
      memcpy(c->exec_buf, dir, dlen);
      c->exec_buf[dlen] = '/';
      memcpy(c->exec_buf + dlen + 1, arg0, alen + 1);
      if (th_is_executable(c->exec_buf, &st)) {
        c->exec_path = c->exec_buf;
        return 0;
      }
    }
    if (end == NULL) break;
    p = end;
  }
  return th_fail_complete(c, ENOENT, "exec: \"", arg0, "\": executable file not found in $PATH", NULL);
}

int th_op_exec(struct th_child *c, const struct th_op *op) {
  (void)op;
  execve(c->exec_path, c->argv, c->envp);
  return th_fail(c, errno, "exec ", c->exec_path, NULL);
}

/*
 * The container's terminal. The pty comes from the container's own devpts (its /dev/ptmx), so the
 * slave's path means something inside; TIOCGPTPEER opens the peer without a path lookup
 * (ioctl_tty(2)). The master goes to the runtime, which passes it to --console-socket.
 */
int th_op_console(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return th_fail(c, errno, "open /dev/ptmx for the console", NULL);
  int unlock = 0, rc = 0, slave = -1;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) {
    rc = th_fail(c, errno, "unlock the console pty", NULL);
    goto out;
  }
  slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    rc = th_fail(c, errno, "open the console pty's slave", NULL);
    goto out;
  }
  if (f[TH_CONSOLE_ROWS].u32 != 0 || f[TH_CONSOLE_COLS].u32 != 0) {
    struct winsize ws = {.ws_row = (unsigned short)f[TH_CONSOLE_ROWS].u32,
                         .ws_col = (unsigned short)f[TH_CONSOLE_COLS].u32};
    if (ioctl(slave, TIOCSWINSZ, &ws) < 0) {
      rc = th_fail(c, errno, "set the console size", NULL);
      goto out;
    }
  }
  if (f[TH_CONSOLE_MOUNT_CONSOLE].u32) {
    /* /dev/console is the slave, as runc does: a file bind-mounted from the pty. */
    char src[32];
    int at = th_resolve_create(c, "/dev/console", TH_CREATE_FILE);
    if (at < 0) {
      rc = th_fail(c, -at, "create /dev/console", NULL);
      goto out;
    }
    char tgt[32];
    int m = mount(th_fd_path(src, slave), th_fd_path(tgt, at), NULL, MS_BIND, NULL);
    int e = errno;
    close(at);
    if (m < 0) {
      rc = th_fail(c, e, "bind the console pty over /dev/console", NULL);
      goto out;
    }
  }
  int e = th_sync_send_fd(c->sync_fd, TH_MSG_CONSOLE_FD, master);
  if (e < 0) {
    rc = th_fail(c, -e, "send the console pty to the runtime", NULL);
    goto out;
  }
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(slave, fd) < 0) {
      rc = th_fail(c, errno, "make the console pty the standard fds", NULL);
      goto out;
    }
  if (ioctl(0, TIOCSCTTY, 0) < 0) rc = th_fail(c, errno, "make the console pty the controlling terminal", NULL);
out:
  if (slave > 2) close(slave);
  close(master);
  return rc;
}
