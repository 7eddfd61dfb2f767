/*
 * The small exports next to tsrun_spawn (spawn.c): syscalls Node lacks, each returning -errno
 * instead of setting errno, so the caller needs no access to this thread's errno. Their
 * prototypes (tsrun.h) are generated from runtime/native/exports.ts.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync.h"
#include "tsrun.h"

int tsrun_abi_version(void) {
  return TSRUN_ABI_VERSION;
}

int tsrun_sync_send(int fd, uint32_t type, uint32_t stage, int32_t err, int32_t value, const uint8_t *payload,
                    uint32_t len) {
  /* Only a bare payload (GO's hook states) can be too big for a datagram; it goes in a memfd. */
  if (stage == 0 && err == 0 && value == 0) return th_sync_send_big(fd, type, payload, len);
  return th_sync_send(fd, type, stage, err, value, payload, len);
}

int tsrun_sync_recv_fd(int fd, int32_t timeout_ms, uint8_t *buf, uint32_t buflen, int32_t *rfd) {
  if (buf == NULL || rfd == NULL) return -EINVAL;
  int got = -1;
  int n = th_sync_recv_fd(fd, timeout_ms, buf, buflen, &got);
  *rfd = got;
  return n;
}

int tsrun_unix_connect(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (path == NULL || strlen(path) >= sizeof a.sun_path) return -ENAMETOOLONG;
  memcpy(a.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  while (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

int tsrun_flock(int fd, int op) {
  while (flock(fd, op) < 0)
    if (errno != EINTR) return -errno;
  return 0;
}

int tsrun_waitpid(int pid, int32_t *status, int options) {
  int st = 0;
  for (;;) {
    pid_t r = waitpid(pid, &st, options);
    if (r >= 0) {
      if (status != NULL) *status = st;
      return (int)r;
    }
    if (errno != EINTR) return -errno;
  }
}

int tsrun_pidfd_open(int pid, uint32_t flags) {
  long fd = syscall(SYS_pidfd_open, pid, flags);
  return fd < 0 ? -errno : (int)fd;
}

int tsrun_pidfd_send_signal(int pidfd, int sig) {
  return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int tsrun_prctl(int option, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  int r = prctl(option, (unsigned long)a2, (unsigned long)a3, (unsigned long)a4, (unsigned long)a5);
  return r < 0 ? -errno : r;
}

/* TIOCSWINSZ on a pty (master or slave): the kernel sends SIGWINCH to the slave's foreground group. */
int tsrun_set_winsize(int fd, uint32_t rows, uint32_t cols) {
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols, .ws_xpixel = 0, .ws_ypixel = 0};
  return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int tsrun_mkfifo(const char *path, uint32_t mode) {
  if (path == NULL) return -EINVAL;
  return mkfifo(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int th_write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int e = errno;
  close(fd);
  return n == (ssize_t)len ? 0 : (n < 0 ? -e : -EIO);
}

static int th_say_err(char *err, uint32_t errlen, const char *what, const char *path) {
  if (err != NULL && errlen > 0) {
    size_t a = strlen(what), b = strlen(path);
    size_t n = a + b < errlen - 1 ? a + b : errlen - 1;
    memcpy(err, what, a < n ? a : n);
    if (n > a) memcpy(err + a, path, n - a);
    err[n] = '\0';
  }
  return 0;
}

/*
 * A process in a new user namespace holds it while we write its maps and open it; then it exits.
 * The child only blocks in read and _exits: no locks, so the raw clone from Node's thread is safe.
 */
static int th_userns_fd(const char *uid_map, const char *gid_map, char *err, uint32_t errlen) {
  int p[2];
  if (uid_map == NULL || gid_map == NULL) return -EINVAL;
  if (pipe2(p, O_CLOEXEC) < 0) return th_say_err(err, errlen, "pipe", ""), -errno;
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    char b;
    close(p[1]);
    while (read(p[0], &b, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  int e = errno;
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    th_say_err(err, errlen, "clone a user namespace for an idmapped mount", "");
    return -e;
  }
  char path[64];
  int rc = 0, fd = -1;
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
  if ((rc = th_write_file(path, uid_map)) < 0) {
    th_say_err(err, errlen, "write ", path);
    goto out;
  }
  if (geteuid() != 0) {
    snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
    if ((rc = th_write_file(path, "deny")) < 0) {
      th_say_err(err, errlen, "write ", path);
      goto out;
    }
  }
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
  if ((rc = th_write_file(path, gid_map)) < 0) {
    th_say_err(err, errlen, "write ", path);
    goto out;
  }
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    th_say_err(err, errlen, "open ", path);
  }
out:
  close(p[1]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  return rc < 0 ? rc : fd;
}

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

int tsrun_idmapped_tree(const char *source, const char *uid_map, const char *gid_map, uint32_t recursive,
                        uint64_t attr_set, uint64_t attr_clr, char *err, uint32_t errlen) {
  if (source == NULL) return -EINVAL;
  int userns = th_userns_fd(uid_map, gid_map, err, errlen);
  if (userns < 0) return userns;
  unsigned rec = recursive ? AT_RECURSIVE : 0;
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
  if (tree < 0) {
    int e = errno;
    close(userns);
    th_say_err(err, errlen, "clone the mount tree (open_tree) of ", source);
    return -e;
  }
  struct mount_attr a = {
      .attr_set = attr_set | MOUNT_ATTR_IDMAP, .attr_clr = attr_clr, .propagation = 0, .userns_fd = (uint64_t)userns};
  int rc = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &a, sizeof a);
  int e = errno;
  close(userns);
  if (rc < 0) {
    close(tree);
    th_say_err(err, errlen, "idmap the mount tree (mount_setattr) of ", source);
    return -e;
  }
  return tree;
}

/* The same wire shape as runc's console socket (utils.SendFd): the name as data, one fd. */
int tsrun_send_fd(int sock, int fd, const char *name) {
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  static const char empty = '\0';
  /* Data must not be empty: a stream socket drops ancillary data sent with no bytes. */
  size_t n = name != NULL ? strlen(name) : 0;
  struct iovec iov = {n ? (void *)name : (void *)&empty, n ? n : 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
    if (errno != EINTR) return -errno;
  return 0;
}

int tsrun_recv_fd(int sock, char *name, uint32_t namelen) {
  char data[4096];
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * 8)];
  } ctl;
  struct iovec iov = {data, sizeof data};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0)
    if (errno != EINTR) return -errno;
  int fd = -1, extra = 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof got);
      /* Keep the first; a peer that sends more must not leak fds into this process. */
      if (fd < 0)
        fd = got;
      else
        close(got), extra = 1;
    }
  }
  if (fd < 0) return n == 0 ? -ECONNRESET : -EBADMSG;
  if (extra || (msg.msg_flags & MSG_CTRUNC)) {
    close(fd);
    return -EBADMSG;
  }
  if (name != NULL && namelen > 0) {
    size_t l = (size_t)n < namelen - 1 ? (size_t)n : namelen - 1;
    memcpy(name, data, l);
    name[l] = '\0';
  }
  return fd;
}

int tsrun_send_fds(int sock, const uint8_t *data, uint32_t len, const uint8_t *fds, uint32_t fdbytes) {
  enum { MAX_FDS = 16 };
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  } ctl;
  size_t nfds = fdbytes / sizeof(int);
  if (data == NULL || len == 0 || fdbytes % sizeof(int) != 0 || nfds > MAX_FDS) return -EINVAL;
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {(void *)data, len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0)
    if (errno != EINTR) return -errno;
  return (int)n;
}

extern char **environ;

/*
 * A daemon-like child started without fork(): posix_spawn clones with CLONE_VM|CLONE_VFORK, so
 * a large caller (tsrund) pays neither the copy of its page tables nor the copy-on-write faults
 * that a fork() of it costs until the child execs. The readiness pipe is made here so that its
 * write end exists only in the child (and is closed in the caller before this returns).
 */
int tsrun_spawn_detached(const char *path, const char *argv0, const char *arg, int32_t *out) {
  if (path == NULL || argv0 == NULL || arg == NULL || out == NULL) return -EINVAL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  /* adddup2 onto its own number would leave close-on-exec set: keep the write end off fd 3 */
  if (p[1] == 3) {
    int moved = fcntl(p[1], F_DUPFD_CLOEXEC, 4);
    int e = errno;
    close(p[1]);
    if (moved < 0) {
      close(p[0]);
      return -e;
    }
    p[1] = moved;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc != 0) {
    close(p[0]);
    close(p[1]);
    return -rc;
  }
  rc = posix_spawnattr_init(&at);
  if (rc == 0) {
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_RDWR, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_RDWR, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    /* an fd someone opened without O_CLOEXEC does not reach the daemon either */
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    if (rc == 0)
      rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&at, &all);
    pid_t pid = -1;
    char *argv[] = {(char *)argv0, (char *)arg, NULL};
    if (rc == 0) rc = posix_spawn(&pid, path, &fa, &at, argv, environ);
    if (rc == 0) {
      out[0] = (int32_t)pid;
      out[1] = p[0];
    }
    posix_spawnattr_destroy(&at);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    return -rc;
  }
  return 0;
}
