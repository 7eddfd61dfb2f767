/*
 * Sync socket messages (see sync.h). The wire is little-endian by definition, so the header is
 * packed byte by byte rather than through a struct.
 */
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "plan_ops.h"

static void th_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

uint32_t th_sync_u32(const uint8_t *buf, size_t at) {
  const uint8_t *p = buf + at;
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int th_sync_send(int fd, uint32_t type, uint32_t stage, int32_t err, int32_t value, const void *payload, size_t len) {
  uint8_t hdr[TH_MSG_HEADER_BYTES];
  if (len > TH_SYNC_MAX_BYTES - TH_MSG_HEADER_BYTES) return -EMSGSIZE;
  if (payload == NULL) len = 0;
  th_put32(hdr, type);
  th_put32(hdr + 4, stage);
  th_put32(hdr + 8, (uint32_t)err);
  th_put32(hdr + 12, (uint32_t)value);
  struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)payload, len}};
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) return 0; /* SOCK_SEQPACKET sends a datagram whole or not at all */
    if (errno != EINTR) return -errno;
  }
}

static int64_t th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int th_sync_recv_fd(int fd, int timeout_ms, uint8_t *buf, size_t buflen, int *rfd) {
  if (rfd != NULL) *rfd = -1;
  if (buflen < TH_MSG_HEADER_BYTES) return -EINVAL;
  int64_t deadline = timeout_ms >= 0 ? th_now_ms() + timeout_ms : 0;
  for (;;) {
    int wait = -1;
    if (timeout_ms >= 0) {
      int64_t left = deadline - th_now_ms();
      wait = left > 0 ? (int)left : 0;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, wait);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -ETIMEDOUT;
    struct iovec iov = {buf, buflen};
    union {
      struct cmsghdr h;
      char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -errno;
    }
    int got = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&got, CMSG_DATA(cm), sizeof got);
    /* Nobody asked for an fd: do not leak the one that came. */
    if (rfd != NULL)
      *rfd = got;
    else if (got >= 0)
      close(got);
    if (n == 0) return 0;
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return -EMSGSIZE;
    if ((size_t)n < TH_MSG_HEADER_BYTES) return -EPROTO;
    return (int)n;
  }
}

int th_sync_recv(int fd, int timeout_ms, uint8_t *buf, size_t buflen) {
  return th_sync_recv_fd(fd, timeout_ms, buf, buflen, NULL);
}

int th_sync_send_fd(int fd, uint32_t type, int passfd) {
  uint8_t hdr[TH_MSG_HEADER_BYTES] = {0};
  th_put32(hdr, type);
  struct iovec iov = {hdr, sizeof hdr};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &passfd, sizeof passfd);
  for (;;) {
    if (sendmsg(fd, &msg, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

/* Flags newer than some headers: executable or not, decided at creation (Linux 6.3). */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int th_memfd_sealed(const char *name, const void *data, size_t len, int src_fd, int exec) {
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  int fd = memfd_create(name, flags | (exec ? MFD_EXEC : MFD_NOEXEC_SEAL));
  /* Kernels before 6.3 know neither flag (EINVAL); their memfds are executable by default. */
  if (fd < 0 && errno == EINVAL) fd = memfd_create(name, flags);
  if (fd < 0) return -errno;
  int e = 0;
  if (data != NULL) {
    const char *p = data;
    for (size_t done = 0; done < len && e == 0;) {
      ssize_t n = write(fd, p + done, len - done);
      if (n > 0)
        done += (size_t)n;
      else if (n < 0 && errno != EINTR)
        e = errno;
    }
  } else {
    struct stat st;
    if (fstat(src_fd, &st) < 0)
      e = errno;
    else if (!S_ISREG(st.st_mode))
      e = EINVAL;
    for (off_t done = 0; e == 0 && done < st.st_size;) {
      ssize_t n = sendfile(fd, src_fd, NULL, (size_t)(st.st_size - done));
      if (n > 0)
        done += n;
      else if (n == 0)
        e = EIO; /* the file shrank under us */
      else if (errno != EINTR)
        e = errno;
    }
  }
  if (e == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) e = errno;
  if (e != 0) {
    close(fd);
    return -e;
  }
  return fd;
}

int th_sync_send_big(int fd, uint32_t type, const void *payload, size_t len) {
  if (len <= TH_SYNC_MAX_BYTES - TH_MSG_HEADER_BYTES) return th_sync_send(fd, type, 0, 0, 0, payload, len);
  int mfd = th_memfd_sealed("tsrun-sync", payload, len, -1, 0);
  if (mfd < 0) return mfd;
  int rc = th_sync_send_fd(fd, type, mfd);
  close(mfd);
  return rc;
}
