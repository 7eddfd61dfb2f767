/*
 * The small exported wrappers koffi binds next to tsrun_spawn (spawn.c): syscalls Node lacks,
 * each returning -errno instead of setting errno (koffi cannot read errno reliably).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plan_ops.h"
#include "sync.h"
#include "tsrun.h"

int tsrun_abi_version(void) {
  return TSRUN_ABI_VERSION;
}

int tsrun_plan_version(void) {
  return (int)TH_PLAN_VERSION;
}

int tsrun_sync_send(int fd, uint32_t type, uint32_t stage, int32_t err, int32_t value, const uint8_t *payload,
                    uint32_t len) {
  return th_sync_send(fd, type, stage, err, value, payload, len);
}

int tsrun_sync_recv(int fd, int32_t timeout_ms, uint8_t *buf, uint32_t buflen) {
  if (buf == NULL) return -EINVAL;
  return th_sync_recv(fd, timeout_ms, buf, buflen);
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

int tsrun_mkfifo(const char *path, uint32_t mode) {
  if (path == NULL) return -EINVAL;
  return mkfifo(path, (mode_t)mode) < 0 ? -errno : 0;
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

int tsrun_close(int fd) {
  if (close(fd) < 0 && errno != EINTR) return -errno;
  return 0;
}
