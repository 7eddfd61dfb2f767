/*
 * HOOK: run a createContainer or startContainer hook from init, so it runs in the container's
 * namespaces. The hook gets the state document on stdin (createContainer: GO's first document,
 * startContainer: the second) and its stdout+stderr go to one pipe; the first TH_MSG_MAX bytes
 * are kept for the error message and the rest is read and dropped so the hook never blocks.
 *
 * One poll loop feeds stdin, drains the output and watches a pidfd (pidfd_open(2)) for the exit
 * or the timeout. Writing the whole state first could deadlock against a hook that writes a
 * lot before reading stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

static const char *const th_phase_names[] = {
    [TH_HOOK_PRESTART] = "prestart",
    [TH_HOOK_CREATE_RUNTIME] = "createRuntime",
    [TH_HOOK_CREATE_CONTAINER] = "createContainer",
    [TH_HOOK_START_CONTAINER] = "startContainer",
    [TH_HOOK_POSTSTART] = "poststart",
    [TH_HOOK_POSTSTOP] = "poststop",
};

static int64_t th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the hook's process: wire up stdio and exec. Failure goes to the output pipe as text. */
static _Noreturn void th_hook_exec(const struct th_op *op, int in, int out) {
  const char *path = op->f[TH_HOOK_PATH].s;
  char *fallback[2] = {(char *)path, NULL};
  char *const *argv = op->f[TH_HOOK_ARGS].len ? op->f[TH_HOOK_ARGS].list : fallback;
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
  execve(path, argv, op->f[TH_HOOK_ENV].list);
  char msg[PATH_MAX + 64], n[TH_NUM_BYTES];
  struct th_buf b;
  th_buf_init(&b, msg, sizeof msg);
  th_buf_str(&b, "cannot exec ");
  th_buf_str(&b, path);
  th_buf_str(&b, " (errno ");
  th_buf_str(&b, th_u64s(n, (uint64_t)errno));
  th_buf_str(&b, ")");
  if (write(2, msg, b.len) < 0) _exit(127);
  _exit(127);
}

/* Feed, drain and wait. Returns 1 when the hook exited, 0 on timeout, or -errno. */
static int th_hook_wait(struct th_child *c, int pidfd, int *in_w, int out_r, const char *doc, size_t doc_len,
                        uint32_t timeout_s, size_t *kept) {
  int64_t deadline = timeout_s ? th_now_ms() + (int64_t)timeout_s * 1000 : 0;
  size_t sent = 0;
  int exited = 0;
  while (!exited) {
    /* Closing stdin once the document is in is what lets a hook that reads to EOF finish. */
    if (*in_w >= 0 && sent == doc_len) {
      close(*in_w);
      *in_w = -1;
    }
    int wait = -1;
    if (deadline) {
      int64_t left = deadline - th_now_ms();
      if (left <= 0) return 0;
      wait = (int)left;
    }
    struct pollfd p[3] = {{pidfd, POLLIN, 0}, {out_r, POLLIN, 0}, {*in_w, POLLOUT, 0}};
    if (poll(p, 3, wait) < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    exited = (p[0].revents & POLLIN) != 0;
    if (*in_w >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(*in_w, doc + sent, doc_len - sent);
      if (n > 0) sent += (size_t)n;
      /* EPIPE: the hook closed stdin without reading it all, which is its right. */
      if (n < 0 && errno != EAGAIN && errno != EINTR) sent = doc_len;
    }
    /* After the exit, drain what is left (descendants may keep the pipe open: do not wait for EOF). */
    while (out_r >= 0 && ((p[1].revents & (POLLIN | POLLHUP)) || exited)) {
      char sink[512];
      char *dst = *kept < sizeof c->hook_out ? c->hook_out + *kept : sink;
      size_t room = *kept < sizeof c->hook_out ? sizeof c->hook_out - *kept : sizeof sink;
      ssize_t n = read(out_r, dst, room);
      if (n > 0) {
        if (dst != sink) *kept += (size_t)n;
        continue;
      }
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) out_r = -1;
      break;
    }
  }
  return 1;
}

int th_op_hook(struct th_child *c, const struct th_op *op) {
  uint32_t phase = op->f[TH_HOOK_PHASE].u32, timeout = op->f[TH_HOOK_TIMEOUT].u32;
  const char *path = op->f[TH_HOOK_PATH].s, *pname = th_phase_names[phase];
  int d = phase == TH_HOOK_START_CONTAINER ? 1 : 0;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, pidfd = -1, rc;
  char a[TH_NUM_BYTES];
  size_t kept = 0;

  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
    rc = th_fail(c, errno, pname, " hook ", path, ": pipe", NULL);
    goto out;
  }
  pid_t pid = th_raw_clone(SIGCHLD);
  if (pid < 0) {
    rc = th_fail(c, errno, pname, " hook ", path, ": clone", NULL);
    goto out;
  }
  if (pid == 0) th_hook_exec(op, in[0], out[1]);
  close(in[0]);
  close(out[1]);
  in[0] = out[1] = -1;
  pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    rc = th_fail(c, errno, pname, " hook ", path, ": pidfd_open", NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    goto out;
  }
  /* Our ends are non-blocking so the loop never stalls; the hook's ends are its own descriptions. */
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  /* A hook that closes stdin early must not kill init with SIGPIPE (dispositions are SIG_DFL). */
  struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL};
  sigaction(SIGPIPE, &ign, NULL);
  int r = th_hook_wait(c, pidfd, &in[1], out[0], c->doc[d], c->doc_len[d], timeout, &kept);
  sigaction(SIGPIPE, &dfl, NULL);
  int status = 0;
  if (r <= 0) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (r < 0) {
    rc = th_fail(c, -r, pname, " hook ", path, ": wait", NULL);
  } else if (r == 0) {
    rc = th_fail_complete(c, ETIMEDOUT, pname, " hook ", path, ": timed out after ", th_u64s(a, timeout), " s", NULL);
  } else if (WIFSIGNALED(status)) {
    rc = th_fail_complete(c, 0, pname, " hook ", path, ": killed by signal ", th_u64s(a, (uint64_t)WTERMSIG(status)),
                          NULL);
  } else if (WEXITSTATUS(status) != 0) {
    while (kept > 0 && (c->hook_out[kept - 1] == '\n' || c->hook_out[kept - 1] == ' ' ||
                        c->hook_out[kept - 1] == '\r' || c->hook_out[kept - 1] == '\t'))
      kept--;
    rc = th_fail_complete(c, 0, pname, " hook ", path, ": exit status ", th_u64s(a, (uint64_t)WEXITSTATUS(status)),
                          kept ? ": " : "", NULL);
    th_buf_mem(&c->msg, c->hook_out, kept);
  } else {
    rc = 0;
  }
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0) close(in[i]);
    if (out[i] >= 0) close(out[i]);
  }
  if (pidfd >= 0) close(pidfd);
  return rc;
}
