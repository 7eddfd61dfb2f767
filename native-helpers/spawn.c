/*
 * tsrun_spawn: decode and check the plan, clone init, and (with a second fork) learn init's pid
 * from the intermediate; pivot-first, the intermediate's own pid once its namespaces exist.
 * Runs on the Node main thread, which it blocks only for the decode, the clone and, with a
 * second fork, the intermediate's few syscalls.
 *
 * The clone is a raw syscall (not fork(3)): no atfork handlers run, and the child continues on
 * a copy of this stack only as far as the exec of the sealed stage (stage.h). All signals are
 * blocked around it so that nothing of Node's runs in the child; the exec resets the handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "stage.h"
#include "sync.h"
#include "tsrun.h"

/* How long the intermediate may take to report init's pid before it is killed. */
#define TH_PID_TIMEOUT_MS 30000

/* Static, not on the Node stack (it is ~150 KiB) and not on the heap (the child reads it).
   tsrun_spawn is therefore not reentrant: call it from one thread (Node's main thread). */
static struct th_child th_ctx;
static struct th_sealed th_sealed_stage;

static int th_read_cap_last_cap(void) {
  char buf[16] = "";
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return CAP_LAST_CAP;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  int v = n > 0 ? atoi(buf) : 0;
  return v > 0 && v < 64 ? v : CAP_LAST_CAP;
}

static int64_t th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void th_kill_reap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

/*
 * Second fork: the intermediate sends MSG_PID (or an ERROR) and exits. Once it is reaped,
 * everything it sent is queued, so drain and decide. On failure kill and reap both processes.
 */
static int th_await_init(pid_t mid, int fd, pid_t *init, char *err, size_t errlen) {
  uint8_t buf[TH_MSG_HEADER_BYTES + TH_MSG_MAX + 1];
  char et[128];
  pid_t gc = 0;
  int failed = 0, status = 0, reaped = 0;
  int64_t deadline = th_now_ms() + TH_PID_TIMEOUT_MS;
  for (;;) {
    int n = th_sync_recv(fd, reaped || gc != 0 || failed ? 0 : 100, buf, sizeof buf - 1);
    if (n > 0) {
      uint32_t type = th_sync_u32(buf, 0);
      if (type == TH_MSG_PID && gc == 0) {
        gc = (pid_t)th_sync_u32(buf, 12);
      } else if (type == TH_MSG_ERROR && !failed) {
        int e = (int)th_sync_u32(buf, 8), complete = (int)th_sync_u32(buf, 12);
        buf[n] = '\0';
        failed = e > 0 ? -e : -EIO;
        if (complete || e <= 0)
          th_errf(err, errlen, "%s", (char *)buf + TH_MSG_HEADER_BYTES);
        else
          th_errf(err, errlen, "%s: %s", (char *)buf + TH_MSG_HEADER_BYTES, th_errtext(e, et, sizeof et));
      } else if (!failed) {
        failed = -EPROTO;
        th_errf(err, errlen, "waiting for the init pid: unexpected message type %u", type);
      }
      continue;
    }
    if (n < 0 && n != -ETIMEDOUT && !failed) {
      failed = n;
      th_errf(err, errlen, "waiting for the init pid: %s", th_errtext(-n, et, sizeof et));
    }
    if (reaped) break;
    /* Once it has reported, the intermediate's only step left is _exit: wait for it outright. */
    int reported = gc != 0 || failed;
    pid_t r = waitpid(mid, &status, reported ? 0 : WNOHANG);
    if (r == mid || (r < 0 && errno != EINTR))
      reaped = 1;
    else if (th_now_ms() > deadline && !failed) {
      failed = -ETIMEDOUT;
      th_errf(err, errlen, "the intermediate process did not report the init pid within %d ms", TH_PID_TIMEOUT_MS);
      th_kill_reap(mid);
      reaped = 1;
    }
  }
  if (!failed && gc == 0) {
    failed = -ECHILD;
    if (WIFSIGNALED(status))
      th_errf(err, errlen, "the intermediate process was killed by signal %d before reporting the init pid",
              WTERMSIG(status));
    else
      th_errf(err, errlen, "the intermediate process exited with status %d before reporting the init pid",
              WEXITSTATUS(status));
  }
  if (failed) {
    if (gc > 0) th_kill_reap(gc);
    return failed;
  }
  *init = gc;
  return 0;
}

/*
 * Pivot-first second fork: the intermediate stays, and sends MSG_PID with its own pid once it has
 * joined and created the namespaces (the runtime writes the id maps to it). Init's pid follows on
 * the sync socket later, for the runtime to read. On failure the intermediate is killed and reaped.
 */
static int th_await_ready(pid_t mid, int fd, char *err, size_t errlen) {
  uint8_t buf[TH_MSG_HEADER_BYTES + TH_MSG_MAX + 1];
  char et[128];
  int rc = th_sync_recv(fd, TH_PID_TIMEOUT_MS, buf, sizeof buf - 1);
  if (rc > 0 && th_sync_u32(buf, 0) == TH_MSG_PID && (pid_t)th_sync_u32(buf, 12) == mid) return 0;
  if (rc > 0 && th_sync_u32(buf, 0) == TH_MSG_ERROR) {
    int e = (int)th_sync_u32(buf, 8), complete = (int)th_sync_u32(buf, 12);
    buf[rc] = '\0';
    if (complete || e <= 0)
      th_errf(err, errlen, "%s", (char *)buf + TH_MSG_HEADER_BYTES);
    else
      th_errf(err, errlen, "%s: %s", (char *)buf + TH_MSG_HEADER_BYTES, th_errtext(e, et, sizeof et));
    rc = e > 0 ? -e : -EIO;
  } else if (rc > 0) {
    th_errf(err, errlen, "waiting for the set-up process: unexpected message type %u", th_sync_u32(buf, 0));
    rc = -EPROTO;
  } else if (rc == 0) {
    th_errf(err, errlen, "the set-up process exited before it was ready");
    rc = -ECHILD;
  } else {
    th_errf(err, errlen, "waiting for the set-up process: %s", th_errtext(-rc, et, sizeof et));
  }
  th_kill_reap(mid);
  return rc;
}

int tsrun_spawn(const uint8_t *plan, uint32_t len, int32_t *out, char *err, uint32_t errlen) {
  struct th_plan p;
  char et[128];
  int sv[2];
  if (out == NULL) return th_errf(err, errlen, "spawn: out is NULL"), -EINVAL;
  int rc = th_plan_decode(plan, len, &p, err, errlen);
  if (rc < 0) return rc;
  for (uint32_t i = 0; i < p.n; i++) {
    if (!th_child_can_run(p.ops[i].code)) {
      th_errf(err, errlen, "op %u (%s): this helper has no executor for it", i, th_op_names[p.ops[i].code]);
      th_plan_free(&p);
      return -EINVAL;
    }
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    rc = -errno;
    th_errf(err, errlen, "socketpair: %s", th_errtext(-rc, et, sizeof et));
    th_plan_free(&p);
    return rc;
  }

  struct th_child *c = &th_ctx;
  th_child_setup(c, &p);
  c->sync_fd = sv[1];
  c->parent_fd = sv[0];
  c->parent_pid = getpid();
  c->cap_last_cap = th_read_cap_last_cap();
  /* Everything the child's exec needs is made now: after the clone it may not allocate. */
  rc = th_stage_prepare(&th_sealed_stage, c, plan, len, err, errlen);
  if (rc < 0) {
    th_stage_release(&th_sealed_stage);
    close(sv[0]);
    close(sv[1]);
    th_plan_free(&p);
    return rc;
  }
  unsigned long flags = (c->second_fork ? 0 : c->create_flags) | SIGCHLD;

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* With a second fork, the intermediate stays where the runtime is; init's clone (ns.c) goes
     into the cgroup. */
  pid_t pid = c->second_fork ? th_raw_clone(flags) : th_clone_init(c, flags);
  if (pid == 0) th_stage_exec(c, &th_sealed_stage);
  int e = errno;
  th_stage_release(&th_sealed_stage);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  th_plan_free(&p);
  if (pid < 0) {
    close(sv[0]);
    th_errf(err, errlen, "clone (flags 0x%lx): %s", flags, th_errtext(e, et, sizeof et));
    return -e;
  }
  if (c->pivot_first) {
    rc = th_await_ready(pid, sv[0], err, errlen);
    if (rc < 0) {
      close(sv[0]);
      return rc;
    }
  } else if (c->second_fork) {
    pid_t init = 0;
    rc = th_await_init(pid, sv[0], &init, err, errlen);
    if (rc < 0) {
      close(sv[0]);
      return rc;
    }
    pid = init;
  }
  out[0] = pid;
  out[1] = sv[0];
  return 0;
}
