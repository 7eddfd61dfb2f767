/*
 * tsrun-shim (native): one small process per container, the container's subreaper, owner of its
 * stdio and reporter of its exits (docs/native-shim.md). tsrund keeps the task logic; this
 * process only runs what must outlive tsrund:
 *
 *   tsrun-shim <dir>        started by tsrund (setsid, stdio /dev/null, fd 3 = readiness pipe)
 *     fork: the parent exits at once, so tsrund reaps it and the shim is nobody's child but init's
 *     the shim: subreaper, signalfd(SIGCHLD), listen <dir>/shim.sock, <dir>/shim.pid, "ok\n" on fd 3
 *     poll loop: control connections, stdio relays, json-file log, reaping, exit records, OOM watches
 *
 * A SPAWN request runs an OCI runtime command (create, exec --detach) with the process's stdio
 * (pipes the shim holds, or a console socket for a pty), so the container's process ends up the
 * shim's child when the runtime exits. Exits are written to <dir>/exit-<name>.json (temp, rename)
 * before they are reported, and kept as undelivered until a subscribed connection takes them.
 *
 * Memory: everything is static (no malloc anywhere); the child between fork and exec only calls
 * dup2, sigprocmask, signal and execv on data prepared before the fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "stage.h"
#include "tsrun.h"

#define MAX_CONNS 16
#define MAX_PROCS 32
#define MAX_ORPHANS 32
#define RELAY_BUF 16384
#define LOG_HOLD 16384
#define OUTPUT_GRACE_MS 2000
#define EXEC_GRACE_MS 5000
#define OOM_RECHECK_MS 100
#define PROTO_VERSION 1

struct relay {
  int src, dst;
  int log_stream; /* 0: no log, 1: stdout, 2: stderr */
  int src_eof;
  size_t off, len;
  char buf[RELAY_BUF];
};

struct proc {
  int used;
  char name[256];
  int state; /* enum tsh_pstate */
  pid_t pid;
  int status;
  char exited_at[40];
  int delivered;
  uint64_t exit_seq;
  int terminal, master;
  struct relay in, out, err;
  /* json-file log (init only) */
  int log_fd;
  uint64_t log_size, log_max;
  uint32_t log_files;
  char log_path[PATH_MAX];
  char held[2][LOG_HOLD];
  size_t held_len[2];
  /* a runtime command in flight */
  pid_t rt_pid;
  uint32_t req_id;
  int req_conn;
  uint32_t req_gen;
  char pidfile[PATH_MAX];
  int console_fd;
  char console_path[PATH_MAX];
  /* reaped, waiting for its output to drain (and, for init, the execs' exits) */
  int exit_pending;
  int64_t exit_deadline;
  /* OOM_WATCH: the memory cgroup's OOM-kill count, watched without polling (oom_watch) */
  int oom_fd;              /* v1: eventfd registered with cgroup.event_control; v2: inotify on memory.events */
  int oom_ctl;             /* v1: memory.oom_control, held open while its eventfd is registered */
  char oom_file[PATH_MAX]; /* the file with the "oom_kill N" line */
  uint64_t oom_seen;
  uint32_t oom_undelivered; /* OOM events no subscriber took yet (sent after SUBSCRIBE, before exits) */
  int64_t oom_recheck;      /* v1: the count did not grow yet when the eventfd fired: read it again then */
};

struct conn {
  int fd;
  int subscribed;
  int passed[TSH_MAX_PASSED_FDS]; /* fds that came with the bytes read so far (SCM_RIGHTS), in order */
  unsigned n_passed;
  uint32_t gen; /* bumped per accepted connection: a late answer never reaches the slot's next owner */
  size_t rlen;
  uint8_t rbuf[TSH_MAX_FRAME + 4];
};

static struct proc procs[MAX_PROCS];
static struct conn conns[MAX_CONNS];
static struct {
  pid_t pid;
  int status;
  char at[40];
} orphans[MAX_ORPHANS];
static int n_orphans;
static uint64_t exit_seq;
static struct tsh_msg msg;
static struct tsh_out out;
static char logline[RELAY_BUF * 6 + 256];
static int listen_fd = -1, sig_fd = -1, shutting_down;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rfc3339(char *buf, size_t len) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  if (k > 0 && len - k > 11) snprintf(buf + k, len - k, ".%09uZ", (unsigned)(ts.tv_nsec % 1000000000));
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* temp → rename, no fsync: the directory is volatile state (as the Node shim's). */
static int write_atomic(const char *file, const char *data, size_t len) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, ".%s.tmp-%d", file, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, len);
  close(fd);
  if (n != (ssize_t)len || rename(tmp, file) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* ---- control connections ---- */

/* Send a finished frame; a connection that cannot take it at once is dropped (0 sent, -1 not). */
static void drop_passed(struct conn *c) {
  for (unsigned k = 0; k < c->n_passed; k++) close_fd(&c->passed[k]);
  c->n_passed = 0;
}

static void drop_conn(int i) {
  drop_passed(&conns[i]);
  close_fd(&conns[i].fd);
  conns[i].subscribed = 0;
  conns[i].rlen = 0;
}

static int send_frame(int ci) {
  if (ci < 0 || ci >= MAX_CONNS || conns[ci].fd < 0 || tsh_finish(&out) != 0) return -1;
  ssize_t n = send(conns[ci].fd, out.b, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != (ssize_t)out.len) {
    drop_conn(ci);
    return -1;
  }
  return 0;
}

/* Send a finished frame with one fd attached (SCM_RIGHTS); the connection is dropped if it cannot take it. */
static int send_frame_fd(int ci, int fd) {
  if (ci < 0 || ci >= MAX_CONNS || conns[ci].fd < 0 || tsh_finish(&out) != 0) return -1;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {out.b, out.len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  ssize_t n = sendmsg(conns[ci].fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != (ssize_t)out.len) {
    drop_conn(ci);
    return -1;
  }
  return 0;
}

static void answer_error(int ci, uint32_t id, uint8_t type, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  tsh_begin(&out, id, TSH_RESPONSE, type);
  tsh_put_str(&out, TSH_T_ERROR, text);
  send_frame(ci);
}

static const char *errno_code(int e);

static struct proc *find_proc(const char *name) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].used && strcmp(procs[i].name, name) == 0) return &procs[i];
  return NULL;
}

static int is_init(const struct proc *p) {
  return strcmp(p->name, "init") == 0;
}

/* ---- json-file log ---- */

static void log_open(struct proc *p) {
  p->log_fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  struct stat st;
  p->log_size = p->log_fd >= 0 && fstat(p->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void log_rotate(struct proc *p) {
  char from[PATH_MAX + 16], to[PATH_MAX + 16];
  close_fd(&p->log_fd);
  if (p->log_files <= 1) {
    if (truncate(p->log_path, 0) != 0) {
      /* reopened below in append mode either way */
    }
  } else {
    snprintf(to, sizeof to, "%s.%u", p->log_path, p->log_files - 1);
    unlink(to);
    for (uint32_t i = p->log_files - 2; i >= 1; i--) {
      snprintf(from, sizeof from, "%s.%u", p->log_path, i);
      snprintf(to, sizeof to, "%s.%u", p->log_path, i + 1);
      rename(from, to);
    }
    snprintf(to, sizeof to, "%s.1", p->log_path);
    rename(p->log_path, to);
  }
  log_open(p);
}

static void log_emit(struct proc *p, int stream, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char at[40];
  size_t k = 0;
  k += (size_t)snprintf(logline + k, sizeof logline - k, "{\"log\":\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      logline[k++] = '\\';
      logline[k++] = (char)c;
    } else if (c == '\n') {
      logline[k++] = '\\';
      logline[k++] = 'n';
    } else if (c == '\r') {
      logline[k++] = '\\';
      logline[k++] = 'r';
    } else if (c == '\t') {
      logline[k++] = '\\';
      logline[k++] = 't';
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(logline + k, "\\u00", 4);
      logline[k + 4] = hex[c >> 4];
      logline[k + 5] = hex[c & 15];
      k += 6;
    } else {
      logline[k++] = (char)c;
    }
  }
  rfc3339(at, sizeof at);
  k += (size_t)snprintf(logline + k, sizeof logline - k, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
                        stream == 1 ? "stdout" : "stderr", at);
  if (p->log_max > 0 && p->log_size > 0 && p->log_size + k > p->log_max) log_rotate(p);
  if (p->log_fd < 0) return;
  if (write(p->log_fd, logline, k) == (ssize_t)k) p->log_size += k;
}

/* Bytes read from stream 1 or 2: whole lines go out, a partial one is held (flushed when full). */
static void log_write(struct proc *p, int stream, const char *s, size_t n) {
  char *held = p->held[stream - 1];
  size_t *hl = &p->held_len[stream - 1];
  for (size_t i = 0; i < n; i++) {
    held[(*hl)++] = s[i];
    if (s[i] == '\n' || *hl == LOG_HOLD) {
      log_emit(p, stream, held, *hl);
      *hl = 0;
    }
  }
}

static void log_end(struct proc *p, int stream) {
  if (p->log_fd >= 0 && p->held_len[stream - 1] > 0) log_emit(p, stream, p->held[stream - 1], p->held_len[stream - 1]);
  p->held_len[stream - 1] = 0;
}

/* ---- relays ---- */

static void relay_reset(struct relay *r) {
  r->src = r->dst = -1;
  r->log_stream = 0;
  r->src_eof = 1;
  r->off = r->len = 0;
}

static void relay_close(struct relay *r) {
  close_fd(&r->src);
  close_fd(&r->dst);
  r->src_eof = 1;
  r->len = 0;
}

static void relay_flush(struct relay *r) {
  while (r->len > 0 && r->dst >= 0) {
    ssize_t n = write(r->dst, r->buf + r->off, r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      close_fd(&r->dst); /* reader gone: drop the rest */
      r->len = 0;
      break;
    }
    r->off += (size_t)n;
    r->len -= (size_t)n;
  }
  if (r->dst < 0) r->len = 0;
  if (r->len == 0) r->off = 0;
}

/* After progress: a finished relay closes its destination (EOF for the reader). */
static void relay_settle(struct relay *r) {
  if (r->src_eof && r->len == 0) close_fd(&r->dst);
}

static void relay_read(struct proc *p, struct relay *r) {
  ssize_t n = read(r->src, r->buf, sizeof r->buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { /* EOF, or EIO from a pty master whose slave is closed */
    close_fd(&r->src);
    r->src_eof = 1;
    if (r->log_stream) log_end(p, r->log_stream);
    relay_settle(r);
    return;
  }
  if (r->log_stream && p->log_fd >= 0) log_write(p, r->log_stream, r->buf, (size_t)n);
  r->off = 0;
  r->len = r->dst >= 0 ? (size_t)n : 0;
  relay_flush(r);
  relay_settle(r);
}

static int output_done(const struct proc *p) {
  return p->out.src < 0 && p->err.src < 0;
}

/* ---- processes ---- */

static void proc_free(struct proc *p) {
  relay_close(&p->in);
  relay_close(&p->out);
  relay_close(&p->err);
  close_fd(&p->master);
  close_fd(&p->log_fd);
  close_fd(&p->console_fd);
  close_fd(&p->oom_fd);
  close_fd(&p->oom_ctl);
  p->oom_file[0] = '\0';
  p->used = 0;
}

static void exit_file(const struct proc *p, char *buf, size_t len) {
  snprintf(buf, len, "exit-%s.json", p->name);
}

/* ---- OOM kills ---- */

/* The start of a small file (a pid file, a cgroup's counters) into buf, NUL-terminated; its length, or -1 (unreadable
 * or empty). */
static ssize_t read_small(const char *file, char *buf, size_t len) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return n;
}

/* The "oom_kill N" count of a memory.oom_control (v1) or memory.events (v2); -1 if unreadable. */
static int read_oom_kill(const char *file, uint64_t *count) {
  static char text[4096];
  if (read_small(file, text, sizeof text) < 0) return -1;
  for (char *line = text; line; line = strchr(line, '\n')) {
    if (*line == '\n') line++;
    if (strncmp(line, "oom_kill ", 9) == 0) {
      *count = strtoull(line + 9, NULL, 10);
      return 0;
    }
  }
  return -1;
}

/* One OOM event to every subscriber; kept for the next SUBSCRIBE when none took it. */
static void emit_oom(struct proc *p) {
  int sent = 0;
  for (int i = 0; i < MAX_CONNS; i++) {
    if (conns[i].fd < 0 || !conns[i].subscribed) continue;
    tsh_begin(&out, 0, TSH_EVENT, TSH_EV_OOM);
    tsh_put_str(&out, TSH_T_NAME, p->name);
    if (send_frame(i) == 0) sent = 1;
  }
  if (!sent) p->oom_undelivered++;
}

/*
 * Read the count again: an OOM event when it grew. `fired`: a v1 eventfd said so, but the kernel
 * notifies before it kills and counts, so a count that did not grow yet is read once more shortly.
 */
static void oom_check(struct proc *p, int fired) {
  uint64_t now;
  p->oom_recheck = 0;
  if (p->oom_file[0] == '\0' || read_oom_kill(p->oom_file, &now) != 0) return; /* the cgroup is gone */
  if (now > p->oom_seen) {
    p->oom_seen = now;
    emit_oom(p);
  } else if (fired) {
    p->oom_recheck = now_ms() + OOM_RECHECK_MS;
  }
}

static void oom_unwatch(struct proc *p) {
  close_fd(&p->oom_fd);
  close_fd(&p->oom_ctl);
  p->oom_file[0] = '\0';
  p->oom_recheck = 0;
}

/* The watch's fd is readable: drain it (eventfd counter, or inotify events), then read the count. */
static void oom_readable(struct proc *p) {
  static char drain[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  while (read(p->oom_fd, drain, sizeof drain) > 0) {
  }
  oom_check(p, p->oom_ctl >= 0);
}

/*
 * OOM_WATCH: watch the memory cgroup `dir` of a running process for OOM kills, as containerd's
 * shim does: v1, an eventfd registered for memory.oom_control through cgroup.event_control; v2,
 * inotify on memory.events. A second watch of the same process is ignored (a tsrund re-adopting
 * the shim sends it again), so no count is read from a fresh start twice.
 */
static void do_oom_watch(int ci, struct proc *p) {
  const struct tsh_msg *m = &msg;
  char file[PATH_MAX], ctl[PATH_MAX];
  if (p->state != TSH_P_RUNNING || p->exit_pending || p->pid <= 0)
    return answer_error(ci, m->id, TSH_OOM_WATCH, "FailedPrecondition: process %s is not running", p->name);
  if (p->oom_fd >= 0) {
    tsh_begin(&out, m->id, TSH_RESPONSE, TSH_OOM_WATCH);
    send_frame(ci);
    return;
  }
  if (m->dir[0] != '/' || strlen(m->dir) + 32 >= sizeof file)
    return answer_error(ci, m->id, TSH_OOM_WATCH, "InvalidArgument: oom watch: bad cgroup directory");
  snprintf(file, sizeof file, "%s/memory.oom_control", m->dir);
  int ocfd = open(file, O_RDONLY | O_CLOEXEC);
  if (ocfd >= 0) {
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    snprintf(ctl, sizeof ctl, "%s/cgroup.event_control", m->dir);
    int cfd = efd < 0 ? -1 : open(ctl, O_WRONLY | O_CLOEXEC);
    char line[32];
    int n = snprintf(line, sizeof line, "%d %d", efd, ocfd);
    if (cfd < 0 || write(cfd, line, (size_t)n) != n) {
      int e = errno;
      if (cfd >= 0) close(cfd);
      if (efd >= 0) close(efd);
      close(ocfd);
      return answer_error(ci, m->id, TSH_OOM_WATCH, "%s: oom watch: register an eventfd in %s: %s", errno_code(e), ctl,
                          strerror(e));
    }
    close(cfd);
    p->oom_fd = efd;
    p->oom_ctl = ocfd;
  } else {
    snprintf(file, sizeof file, "%s/memory.events", m->dir);
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0 || inotify_add_watch(ifd, file, IN_MODIFY) < 0) {
      int e = errno;
      if (ifd >= 0) close(ifd);
      return answer_error(ci, m->id, TSH_OOM_WATCH, "%s: oom watch: %s: no memory.oom_control or memory.events: %s",
                          errno_code(e), m->dir, strerror(e));
    }
    p->oom_fd = ifd;
  }
  snprintf(p->oom_file, sizeof p->oom_file, "%s", file);
  if (read_oom_kill(p->oom_file, &p->oom_seen) != 0) {
    oom_unwatch(p);
    return answer_error(ci, m->id, TSH_OOM_WATCH, "NotFound: oom watch: no oom_kill count in %s", file);
  }
  p->oom_undelivered = 0;
  tsh_begin(&out, m->id, TSH_RESPONSE, TSH_OOM_WATCH);
  send_frame(ci);
}

/* Record the exit (file first), then report it to every subscriber. */
static void finish_exit(struct proc *p) {
  char file[300], doc[256];
  /* an OOM kill that ended the process is reported before its exit; its output drained, the kernel counted it */
  if (p->oom_fd >= 0) {
    oom_check(p, 0);
    oom_unwatch(p);
  }
  p->exit_pending = 0;
  p->state = TSH_P_STOPPED;
  p->exit_seq = ++exit_seq;
  int n = snprintf(doc, sizeof doc, "{\"pid\":%d,\"exitStatus\":%d,\"exitedAt\":\"%s\"}\n", (int)p->pid, p->status,
                   p->exited_at);
  exit_file(p, file, sizeof file);
  write_atomic(file, doc, (size_t)n);
  close_fd(&p->in.src); /* nobody to feed any more */
  close_fd(&p->in.dst);
  p->delivered = 0;
  for (int i = 0; i < MAX_CONNS; i++) {
    if (conns[i].fd < 0 || !conns[i].subscribed) continue;
    tsh_begin(&out, 0, TSH_EVENT, TSH_EV_EXIT);
    tsh_put_str(&out, TSH_T_NAME, p->name);
    tsh_put_u32(&out, TSH_T_PID, (uint32_t)p->pid);
    tsh_put_u32(&out, TSH_T_STATUS, (uint32_t)p->status);
    tsh_put_str(&out, TSH_T_TIME, p->exited_at);
    if (send_frame(i) == 0) p->delivered = 1;
  }
}

static int running_execs(void) {
  int n = 0;
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].used && !is_init(&procs[i]) && (procs[i].state == TSH_P_RUNNING || procs[i].exit_pending)) n++;
  return n;
}

/* When a pending exit may be reported: its output drained (or 2 s), and for init no exec left (or 5 s). */
static int64_t exit_due(const struct proc *p) {
  int64_t now = now_ms();
  if (!output_done(p) && now < p->exit_deadline) return p->exit_deadline;
  if (is_init(p) && running_execs() > 0) return p->exit_deadline - OUTPUT_GRACE_MS + EXEC_GRACE_MS;
  return now;
}

/* Report the exits that are due: execs first, so init's comes after theirs. */
static void settle_exits(void) {
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < MAX_PROCS; i++) {
      struct proc *p = &procs[i];
      if (p->used && p->exit_pending && is_init(p) == pass && exit_due(p) <= now_ms()) finish_exit(p);
    }
  }
}

static void mark_exited(struct proc *p, int raw, const char *at) {
  p->status = WIFEXITED(raw) ? WEXITSTATUS(raw) : WIFSIGNALED(raw) ? 128 + WTERMSIG(raw) : 255;
  snprintf(p->exited_at, sizeof p->exited_at, "%s", at);
  p->state = TSH_P_RUNNING; /* until finish_exit: not signalled any more (exit_pending) */
  p->exit_pending = 1;
  p->exit_deadline = now_ms() + OUTPUT_GRACE_MS;
  if (is_init(p)) {
    /* Execs outlive init only without a pid namespace of their own: end them as containerd does. */
    for (int i = 0; i < MAX_PROCS; i++)
      if (procs[i].used && !is_init(&procs[i]) && procs[i].state == TSH_P_RUNNING && !procs[i].exit_pending &&
          procs[i].pid > 0)
        kill(procs[i].pid, SIGKILL);
  }
}

static int read_pidfile(const char *file) {
  char buf[32];
  if (read_small(file, buf, sizeof buf) < 0) return -1;
  long v = strtol(buf, NULL, 10);
  return v > 0 && v < INT_MAX ? (int)v : -1;
}

/* The pty master a runtime sent to the console socket (runc's wire shape: one fd, SCM_RIGHTS). */
static int take_master(struct proc *p) {
  int c = accept4(p->console_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0) return -1;
  char data[256];
  char ctl[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {data, sizeof data};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  ssize_t n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
  close(c);
  if (n < 0) return -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      return fd;
    }
  return -1;
}

/* The process runs as pid: its relays start from the pty master, and an exit seen before we knew the pid counts. */
static void proc_running(struct proc *p, int pid) {
  p->pid = pid;
  p->state = TSH_P_RUNNING;
  if (p->terminal) {
    fcntl(p->master, F_SETFL, O_NONBLOCK);
    p->out.src = fcntl(p->master, F_DUPFD_CLOEXEC, 3); /* the relay owns its copy; p->master stays for resize */
    p->out.src_eof = p->out.src < 0;
    if (p->in.src >= 0) p->in.dst = fcntl(p->master, F_DUPFD_CLOEXEC, 3);
  }
  for (int i = 0; i < n_orphans; i++) {
    if (orphans[i].pid != pid) continue;
    /* it exited before we knew its pid (exec --detach returns after the process started) */
    mark_exited(p, orphans[i].status, orphans[i].at);
    memmove(&orphans[i], &orphans[i + 1], sizeof orphans[0] * (size_t)(n_orphans - i - 1));
    n_orphans--;
    break;
  }
}

/* The runtime command of a SPAWN finished: answer it. */
static void spawn_done(struct proc *p, int raw) {
  int ci = conns[p->req_conn].gen == p->req_gen ? p->req_conn : -1; /* the asker may be gone */
  uint32_t id = p->req_id;
  p->rt_pid = 0;
  int rs = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + (WIFSIGNALED(raw) ? WTERMSIG(raw) : 0);
  int pid = rs == 0 ? read_pidfile(p->pidfile) : -1;
  const char *why = NULL;
  if (rs != 0)
    why = "runtime failed";
  else if (pid <= 0)
    why = "no pid in the runtime's pid file";
  if (!why && p->terminal) {
    p->master = take_master(p);
    if (p->master < 0) why = "no pty master arrived on the console socket";
  }
  close_fd(&p->console_fd);
  if (p->console_path[0]) unlink(p->console_path);
  if (why) {
    tsh_begin(&out, id, TSH_RESPONSE, TSH_SPAWN);
    char text[600];
    snprintf(text, sizeof text, "Internal: %s (exit status %d)", why, rs);
    tsh_put_str(&out, TSH_T_ERROR, text);
    tsh_put_u32(&out, TSH_T_STATUS, (uint32_t)rs);
    send_frame(ci);
    proc_free(p);
    return;
  }
  proc_running(p, pid);
  tsh_begin(&out, id, TSH_RESPONSE, TSH_SPAWN);
  tsh_put_u32(&out, TSH_T_PID, (uint32_t)pid);
  send_frame(ci);
}

static void on_sigchld(void) {
  struct signalfd_siginfo si;
  while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
  }
  for (;;) {
    int raw;
    pid_t pid = waitpid(-1, &raw, WNOHANG);
    if (pid <= 0) break;
    char at[40];
    rfc3339(at, sizeof at);
    int matched = 0;
    for (int i = 0; i < MAX_PROCS && !matched; i++) {
      struct proc *p = &procs[i];
      if (!p->used) continue;
      if (p->rt_pid == pid) {
        spawn_done(p, raw);
        matched = 1;
      } else if (p->pid == pid && p->state == TSH_P_RUNNING && !p->exit_pending) {
        mark_exited(p, raw, at);
        matched = 1;
      }
    }
    if (!matched) {
      /* kept for a SPAWN that has not read its pid file yet; when full, the oldest goes */
      if (n_orphans == MAX_ORPHANS) {
        memmove(&orphans[0], &orphans[1], sizeof orphans[0] * (MAX_ORPHANS - 1));
        n_orphans--;
      }
      orphans[n_orphans].pid = pid;
      orphans[n_orphans].status = raw;
      snprintf(orphans[n_orphans].at, sizeof orphans[n_orphans].at, "%s", at);
      n_orphans++;
    }
  }
}

/* Where one output stream goes: a fifo (held O_RDWR so writes never EPIPE), a file://, or nothing. */
static int open_dest(const char *spec, char *err, size_t errlen) {
  if (spec[0] == '\0') return -1;
  int fd;
  if (strncmp(spec, "file://", 7) == 0)
    fd = open(spec + 7, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0640);
  else
    fd = open(spec, O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) snprintf(err, errlen, "InvalidArgument: open %s: %s", spec, strerror(errno));
  return fd < 0 ? -2 : fd;
}

static int listen_unix(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  unlink(path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/*
 * A new process entry for a SPAWN or SPAWN_PLAN: its json log, stdio relays and console socket,
 * and child_fd[0..2], what the process gets as 0-2 (pipe ends or /dev/null, all close-on-exec).
 * NULL with err filled when something could not be made (everything undone).
 */
static struct proc *prepare_proc(int ci, const struct tsh_msg *m, int child_fd[3], char *err, size_t errlen) {
  child_fd[0] = child_fd[1] = child_fd[2] = -1;
  if (m->name[0] == '\0' || strchr(m->name, '/') || strlen(m->name) >= sizeof procs[0].name) {
    snprintf(err, errlen, "InvalidArgument: spawn: bad process name");
    return NULL;
  }
  if (m->terminal && m->console[0] == '\0') {
    snprintf(err, errlen, "InvalidArgument: spawn: a terminal needs a console socket path");
    return NULL;
  }
  if (find_proc(m->name)) {
    snprintf(err, errlen, "AlreadyExists: process %s already exists", m->name);
    return NULL;
  }
  struct proc *p = NULL;
  for (int i = 0; i < MAX_PROCS && !p; i++)
    if (!procs[i].used) p = &procs[i];
  if (!p) {
    snprintf(err, errlen, "Unavailable: too many processes in one shim");
    return NULL;
  }
  memset(p, 0, offsetof(struct proc, in));
  p->used = 1;
  snprintf(p->name, sizeof p->name, "%s", m->name);
  p->state = TSH_P_CREATING;
  p->master = p->log_fd = p->console_fd = p->oom_fd = p->oom_ctl = -1;
  p->oom_file[0] = '\0';
  p->oom_undelivered = 0;
  p->oom_recheck = 0;
  relay_reset(&p->in);
  relay_reset(&p->out);
  relay_reset(&p->err);
  p->held_len[0] = p->held_len[1] = 0;
  p->terminal = m->terminal != 0;
  p->req_conn = ci;
  p->req_gen = conns[ci].gen;
  p->req_id = m->id;
  snprintf(p->pidfile, sizeof p->pidfile, "%s", m->pidfile);
  p->console_path[0] = '\0';
  int devnull = -1;
  if (m->log_path[0]) {
    snprintf(p->log_path, sizeof p->log_path, "%s", m->log_path);
    p->log_max = m->log_max;
    p->log_files = m->log_files > 0 ? m->log_files : 1;
    log_open(p);
    if (p->log_fd < 0) {
      snprintf(err, errlen, "InvalidArgument: open json log %s: %s", m->log_path, strerror(errno));
      goto fail;
    }
  }
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) {
    snprintf(err, errlen, "Internal: open /dev/null: %s", strerror(errno));
    goto fail;
  }
  if (m->stdin_path[0]) {
    p->in.src = open(m->stdin_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (p->in.src < 0) {
      snprintf(err, errlen, "InvalidArgument: open stdin %s: %s", m->stdin_path, strerror(errno));
      goto fail;
    }
    p->in.src_eof = 0;
  }
  const char *dests[2] = {m->stdout_path, m->stderr_path};
  struct relay *outs[2] = {&p->out, &p->err};
  for (int k = 0; k < 2; k++) {
    int d = open_dest(dests[k], err, errlen);
    if (d == -2) goto fail;
    outs[k]->dst = d;
    outs[k]->log_stream = p->log_fd >= 0 ? k + 1 : 0;
  }
  if (p->terminal) {
    snprintf(p->console_path, sizeof p->console_path, "%s", m->console);
    p->console_fd = listen_unix(p->console_path);
    if (p->console_fd < 0) {
      snprintf(err, errlen, "Internal: listen on console socket %s: %s", m->console, strerror(errno));
      goto fail;
    }
    p->err.log_stream = 0; /* one stream: the pty */
  } else {
    int pp[2];
    if (p->in.src >= 0) {
      if (pipe2(pp, O_CLOEXEC) != 0) goto fail_pipe;
      child_fd[0] = pp[0];
      p->in.dst = pp[1];
      fcntl(pp[1], F_SETFL, O_NONBLOCK);
    }
    for (int k = 0; k < 2; k++) {
      if (outs[k]->dst < 0 && !outs[k]->log_stream) continue;
      if (pipe2(pp, O_CLOEXEC) != 0) goto fail_pipe;
      outs[k]->src = pp[0];
      outs[k]->src_eof = 0;
      fcntl(pp[0], F_SETFL, O_NONBLOCK);
      child_fd[k + 1] = pp[1];
    }
  }
  /* what is not a pipe end is /dev/null: one description, dup'd so each entry is closed once */
  for (int k = 0; k < 3; k++)
    if (child_fd[k] < 0 && (child_fd[k] = fcntl(devnull, F_DUPFD_CLOEXEC, 3)) < 0) goto fail_pipe;
  close(devnull);
  return p;
fail_pipe:
  snprintf(err, errlen, "Internal: stdio for %s: %s", m->name, strerror(errno));
fail:
  for (int k = 0; k < 3; k++) close_fd(&child_fd[k]);
  close_fd(&devnull);
  if (p->console_path[0]) unlink(p->console_path);
  proc_free(p);
  return NULL;
}

static void do_spawn(int ci) {
  char err[600] = "";
  const struct tsh_msg *m = &msg;
  int child_fd[3];
  if (m->argc == 0 || m->argv[0][0] != '/')
    return answer_error(ci, m->id, TSH_SPAWN, "InvalidArgument: spawn: argv[0] must be an absolute path");
  if (m->pidfile[0] == '\0') return answer_error(ci, m->id, TSH_SPAWN, "InvalidArgument: spawn: no pid file");
  struct proc *p = prepare_proc(ci, m, child_fd, err, sizeof err);
  if (!p) return answer_error(ci, m->id, TSH_SPAWN, "%s", err);
  unlink(p->pidfile);
  pid_t pid = fork();
  if (pid == 0) {
    /* child: no allocation; every fd of ours is close-on-exec, dup2 clears it on 0-2 */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    for (int k = 0; k < 3; k++)
      if (dup2(child_fd[k], k) < 0) _exit(126);
    execv(m->argv[0], (char *const *)m->argv);
    _exit(errno == ENOENT ? 127 : 126);
  }
  int e = errno;
  for (int k = 0; k < 3; k++) close(child_fd[k]);
  if (pid < 0) {
    if (p->console_path[0]) unlink(p->console_path);
    proc_free(p);
    return answer_error(ci, m->id, TSH_SPAWN, "Internal: spawn %s: %s", m->argv[0], strerror(e));
  }
  p->rt_pid = pid; /* answered when the runtime exits (spawn_done) */
}

/* The TsrunError code for an errno, as the runtime library's codeForErrno words it. */
static const char *errno_code(int e) {
  switch (e) {
  case ENOENT:
  case ESRCH:
    return "NotFound";
  case EEXIST:
    return "AlreadyExists";
  case EACCES:
  case EPERM:
    return "PermissionDenied";
  case EINVAL:
  case ENOTDIR:
  case EISDIR:
    return "InvalidArgument";
  default:
    return "Internal";
  }
}

/*
 * SPAWN_PLAN: clone the process from an encoded plan with the plan executor (tsrun_spawn, the
 * sealed stage included), so it is the shim's child without any runtime process in between. The
 * answer carries the spawned pid and, attached, the runtime's end of the sync socket: tsrund runs
 * the sync loop (GO, hooks, CREATED) and then names the final pid with ADOPT. The shim keeps no
 * copy of the sync socket, so a tsrund that dies meanwhile is a hang-up for the child, which exits.
 */
static void do_spawn_plan(int ci) {
  char err[1200] = "";
  const struct tsh_msg *m = &msg;
  struct conn *c = &conns[ci];
  int child_fd[3], slots[3 + TSH_MAX_PASSED_FDS];
  unsigned n_slots = 0;
  if (m->plan[0] == '\0') return answer_error(ci, m->id, TSH_SPAWN_PLAN, "InvalidArgument: spawn plan: no plan file");
  if (m->fds != c->n_passed)
    return answer_error(ci, m->id, TSH_SPAWN_PLAN,
                        "InvalidArgument: spawn plan: %u fds announced, %u came with the frame", m->fds, c->n_passed);
  int plan_fd = open(m->plan, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (plan_fd < 0 || fstat(plan_fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > UINT32_MAX) {
    int e = errno;
    close_fd(&plan_fd);
    return answer_error(ci, m->id, TSH_SPAWN_PLAN, "InvalidArgument: spawn plan: plan file %s: %s", m->plan,
                        e ? strerror(e) : "not a regular file of a plan's size");
  }
  void *plan = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, plan_fd, 0);
  close(plan_fd);
  if (plan == MAP_FAILED)
    return answer_error(ci, m->id, TSH_SPAWN_PLAN, "Internal: spawn plan: map %s: %s", m->plan, strerror(errno));
  struct proc *p = prepare_proc(ci, m, child_fd, err, sizeof err);
  if (!p) {
    munmap(plan, (size_t)st.st_size);
    return answer_error(ci, m->id, TSH_SPAWN_PLAN, "%s", err);
  }
  /* the fds at the numbers the plan names (TSH_PLAN_FD_BASE), close-on-exec: the stage keeps what it needs */
  int ok = 1;
  for (unsigned k = 0; k < 3 + c->n_passed && ok; k++) {
    int from = k < 3 ? child_fd[k] : c->passed[k - 3];
    if (dup3(from, TSH_PLAN_FD_BASE + (int)k, O_CLOEXEC) < 0) {
      snprintf(err, sizeof err, "Internal: spawn plan: move fd %d to %d: %s", from, TSH_PLAN_FD_BASE + (int)k,
               strerror(errno));
      ok = 0;
    } else {
      slots[n_slots++] = TSH_PLAN_FD_BASE + (int)k;
    }
  }
  int32_t res[2] = {-1, -1};
  char herr[1024] = "";
  int rc = ok ? tsrun_spawn(plan, (uint32_t)st.st_size, res, herr, sizeof herr) : -1;
  munmap(plan, (size_t)st.st_size);
  for (unsigned k = 0; k < n_slots; k++) close(slots[k]);
  for (int k = 0; k < 3; k++) close(child_fd[k]);
  drop_passed(c);
  if (!ok || rc < 0) {
    if (p->console_path[0]) unlink(p->console_path);
    proc_free(p);
    /* the helper's message, and its errno as STATUS: tsrund words it as the CLI's spawn would */
    tsh_begin(&out, m->id, TSH_RESPONSE, TSH_SPAWN_PLAN);
    if (ok) snprintf(err, sizeof err, "%s: %s", errno_code(-rc), herr[0] ? herr : "spawn container init");
    tsh_put_str(&out, TSH_T_ERROR, err);
    if (ok) tsh_put_u32(&out, TSH_T_STATUS, (uint32_t)-rc);
    send_frame(ci);
    return;
  }
  p->pid = res[0]; /* the spawned process; ADOPT names init once the sync loop knows it */
  tsh_begin(&out, m->id, TSH_RESPONSE, TSH_SPAWN_PLAN);
  tsh_put_u32(&out, TSH_T_PID, (uint32_t)res[0]);
  send_frame_fd(ci, res[1]);
  close(res[1]);
}

/* ADOPT: the process a SPAWN_PLAN started reported CREATED as pid; take its pty master, and it runs. */
static void do_adopt(int ci, struct proc *p) {
  const struct tsh_msg *m = &msg;
  if (p->state != TSH_P_CREATING || p->rt_pid != 0)
    return answer_error(ci, m->id, TSH_ADOPT, "FailedPrecondition: process %s is not waiting to be adopted", p->name);
  if (m->pid == 0 || m->pid > INT_MAX) return answer_error(ci, m->id, TSH_ADOPT, "InvalidArgument: adopt: bad pid");
  if (p->terminal) {
    p->master = take_master(p);
    if (p->master < 0)
      return answer_error(ci, m->id, TSH_ADOPT, "Internal: no pty master arrived on the console socket %s",
                          p->console_path);
  }
  close_fd(&p->console_fd);
  if (p->console_path[0]) unlink(p->console_path);
  proc_running(p, (int)m->pid);
  tsh_begin(&out, m->id, TSH_RESPONSE, TSH_ADOPT);
  send_frame(ci);
}

static void send_undelivered(int ci) {
  /* OOM kills first: one that ended a process came before its exit */
  for (int i = 0; i < MAX_PROCS; i++) {
    struct proc *p = &procs[i];
    for (; p->used && p->oom_undelivered > 0; p->oom_undelivered--) {
      tsh_begin(&out, 0, TSH_EVENT, TSH_EV_OOM);
      tsh_put_str(&out, TSH_T_NAME, p->name);
      if (send_frame(ci) != 0) return;
    }
  }
  /* exits in the order they happened */
  for (;;) {
    struct proc *next = NULL;
    for (int i = 0; i < MAX_PROCS; i++) {
      struct proc *p = &procs[i];
      if (p->used && p->state == TSH_P_STOPPED && !p->delivered && (!next || p->exit_seq < next->exit_seq)) next = p;
    }
    if (!next) return;
    tsh_begin(&out, 0, TSH_EVENT, TSH_EV_EXIT);
    tsh_put_str(&out, TSH_T_NAME, next->name);
    tsh_put_u32(&out, TSH_T_PID, (uint32_t)next->pid);
    tsh_put_u32(&out, TSH_T_STATUS, (uint32_t)next->status);
    tsh_put_str(&out, TSH_T_TIME, next->exited_at);
    if (send_frame(ci) != 0) return;
    next->delivered = 1;
  }
}

static void put_proc(const struct proc *p) {
  struct tsh_out *o = &out;
  size_t at = o->len;
  /* a nested field: header now, length patched after its sub-fields */
  tsh_put_bytes(o, TSH_T_PROC, NULL, 0);
  size_t start = o->len;
  tsh_put_str(o, TSH_T_NAME, p->name);
  tsh_put_u32(o, TSH_T_PID, (uint32_t)(p->pid > 0 ? p->pid : 0));
  tsh_put_u32(o, TSH_T_STATE, (uint32_t)(p->exit_pending ? TSH_P_RUNNING : p->state));
  if (p->state == TSH_P_STOPPED) {
    tsh_put_u32(o, TSH_T_STATUS, (uint32_t)p->status);
    tsh_put_str(o, TSH_T_TIME, p->exited_at);
  }
  if (o->overflow) return;
  size_t n = o->len - start;
  o->b[at + 1] = (uint8_t)(n >> 8);
  o->b[at + 2] = (uint8_t)n;
}

static void handle(int ci) {
  const struct tsh_msg *m = &msg;
  struct proc *p = m->name[0] ? find_proc(m->name) : NULL;
  switch (m->type) {
  case TSH_HELLO:
    tsh_begin(&out, m->id, TSH_RESPONSE, m->type);
    tsh_put_u32(&out, TSH_T_PID, (uint32_t)getpid());
    tsh_put_u32(&out, TSH_T_VERSION, PROTO_VERSION);
    send_frame(ci);
    return;
  case TSH_SUBSCRIBE:
    conns[ci].subscribed = 1;
    tsh_begin(&out, m->id, TSH_RESPONSE, m->type);
    if (send_frame(ci) == 0) send_undelivered(ci);
    return;
  case TSH_SPAWN:
    do_spawn(ci);
    return;
  case TSH_SPAWN_PLAN:
    do_spawn_plan(ci);
    return;
  case TSH_STATE:
    tsh_begin(&out, m->id, TSH_RESPONSE, m->type);
    for (int i = 0; i < MAX_PROCS; i++)
      if (procs[i].used && (!p || p == &procs[i])) put_proc(&procs[i]);
    send_frame(ci);
    return;
  case TSH_SHUTDOWN:
    tsh_begin(&out, m->id, TSH_RESPONSE, m->type);
    send_frame(ci);
    shutting_down = 1;
    return;
  default:
    break;
  }
  if (!p) return answer_error(ci, m->id, m->type, "NotFound: process %s not found", m->name);
  int live = p->state == TSH_P_RUNNING && !p->exit_pending && p->pid > 0;
  switch (m->type) {
  case TSH_SIGNAL:
    if (!live) return answer_error(ci, m->id, m->type, "NotFound: process already finished");
    if (m->signal == 0 || m->signal > 64)
      return answer_error(ci, m->id, m->type, "InvalidArgument: bad signal %u", m->signal);
    /* not reaped yet, so the pid is still this process's (we are its parent) */
    if (kill(p->pid, (int)m->signal) != 0)
      return answer_error(ci, m->id, m->type, "Internal: kill %d: %s", (int)p->pid, strerror(errno));
    break;
  case TSH_RESIZE:
    if (p->master >= 0 && live && m->width > 0 && m->height > 0) {
      struct winsize ws = {.ws_row = (unsigned short)m->height, .ws_col = (unsigned short)m->width};
      if (ioctl(p->master, TIOCSWINSZ, &ws) != 0)
        return answer_error(ci, m->id, m->type, "Internal: resize pty: %s", strerror(errno));
    }
    break;
  case TSH_CLOSE_STDIN:
    if (p->terminal && p->master >= 0) {
      char eof = 4; /* VEOF: the line discipline's end of input */
      if (write(p->master, &eof, 1) != 1) {
        /* the terminal is gone: nothing to close */
      }
      close_fd(&p->in.src);
      close_fd(&p->in.dst);
    } else {
      close_fd(&p->in.src);
      p->in.src_eof = 1;
      relay_flush(&p->in);
      close_fd(&p->in.dst);
    }
    break;
  case TSH_ADOPT:
    return do_adopt(ci, p);
  case TSH_OOM_WATCH:
    return do_oom_watch(ci, p);
  case TSH_FORGET: {
    /* a stopped process, or a SPAWN_PLAN's entry whose create failed (tsrund killed what it spawned) */
    if (p->state != TSH_P_STOPPED && !(p->state == TSH_P_CREATING && p->rt_pid == 0))
      return answer_error(ci, m->id, m->type, "FailedPrecondition: process %s is still running", p->name);
    char file[300];
    exit_file(p, file, sizeof file);
    unlink(file);
    if (p->state == TSH_P_CREATING && p->console_path[0]) unlink(p->console_path);
    proc_free(p);
    break;
  }
  default:
    return answer_error(ci, m->id, m->type, "InvalidArgument: unknown request");
  }
  tsh_begin(&out, m->id, TSH_RESPONSE, m->type);
  send_frame(ci);
}

static void on_conn_readable(int ci) {
  struct conn *c = &conns[ci];
  /* recvmsg, not read: a SPAWN_PLAN frame comes with fds (SCM_RIGHTS), which stay queued on the
     connection until the frame they came with is handled, and are closed after it either way */
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * TSH_MAX_PASSED_FDS)];
  } ctl;
  struct iovec iov = {c->rbuf + c->rlen, sizeof c->rbuf - c->rlen};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  int overflow = (mh.msg_flags & MSG_CTRUNC) != 0;
  for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t k = 0; k < count; k++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof fd);
      if (c->n_passed < TSH_MAX_PASSED_FDS)
        c->passed[c->n_passed++] = fd;
      else
        close(fd), overflow = 1;
    }
  }
  if (n <= 0 || overflow) return drop_conn(ci); /* more fds than a frame may carry: a broken client */
  c->rlen += (size_t)n;
  while (c->fd >= 0 && c->rlen >= 4) {
    size_t len = (size_t)c->rbuf[0] << 24 | (size_t)c->rbuf[1] << 16 | (size_t)c->rbuf[2] << 8 | c->rbuf[3];
    if (len > TSH_MAX_FRAME) return drop_conn(ci);
    if (c->rlen < 4 + len) return;
    char err[160];
    if (tsh_decode(c->rbuf + 4, len, &msg, err, sizeof err) != 0) {
      uint32_t id =
          len >= 4 ? (uint32_t)c->rbuf[4] << 24 | (uint32_t)c->rbuf[5] << 16 | (uint32_t)c->rbuf[6] << 8 | c->rbuf[7]
                   : 0;
      answer_error(ci, id, len >= 6 ? c->rbuf[9] : 0, "InvalidArgument: %s", err);
    } else {
      handle(ci);
    }
    if (c->fd < 0) return;
    drop_passed(c); /* fds no request took */
    memmove(c->rbuf, c->rbuf + 4 + len, c->rlen - 4 - len);
    c->rlen -= 4 + len;
  }
}

/* ---- main ---- */

static void ready_fail(int ready, const char *what) {
  char line[512];
  int n = snprintf(line, sizeof line, "{\"code\":\"Internal\",\"message\":\"%s: %s\"}\n", what, strerror(errno));
  if (ready >= 0 && write(ready, line, (size_t)n) < 0) {
    /* tsrund reads EOF and reports the shim as not ready */
  }
  _exit(1);
}

static void shutdown_now(void) {
  for (int i = 0; i < MAX_PROCS; i++) {
    if (!procs[i].used) continue;
    char file[300];
    exit_file(&procs[i], file, sizeof file);
    unlink(file);
    proc_free(&procs[i]);
  }
  /* files first: tsrund empties the directory once it sees its connection close */
  close_fd(&listen_fd);
  unlink("shim.sock");
  unlink("shim.pid");
  for (int i = 0; i < MAX_CONNS; i++) close_fd(&conns[i].fd);
  exit(0);
}

enum { PF_LISTEN, PF_SIG, PF_CONN, PF_SRC, PF_DST, PF_OOM };

int main(int argc, char **argv) {
  int ready = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
  if (argc != 2 || argv[1][0] != '/') {
    fprintf(stderr, "usage: tsrun-shim <absolute shim directory>\n(started by tsrund; see docs/native-shim.md)\n");
    return 2;
  }
  if (ready >= 0) fcntl(ready, F_SETFD, FD_CLOEXEC);
  /* nothing inherited beyond 0-2 and the readiness pipe: no stray fd of tsrund's caller may reach a clone */
  close_range(ready >= 0 ? 4 : 3, ~0U, 0);
  /* the plan executor's sealed stage: build/tsrun-stage beside this binary (as beside tsrun.node) */
  char self[PATH_MAX], stage[PATH_MAX + 16];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl > 0) {
    self[sl] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) {
      *slash = '\0';
      snprintf(stage, sizeof stage, "%s/%s", self, TH_STAGE_FILE);
      th_stage_set_path(stage);
    }
  }
  if (chdir(argv[1]) != 0) ready_fail(ready, "chdir to the shim directory");
  /* Double fork: tsrund reaps the first process; the shim is re-parented to init (or a subreaper). */
  pid_t first = fork();
  if (first < 0) ready_fail(ready, "fork");
  if (first > 0) _exit(0);
  int devnull = open("/dev/null", O_RDWR);
  if (devnull < 0) ready_fail(ready, "open /dev/null");
  for (int k = 0; k < 3; k++)
    if (devnull != k) dup2(devnull, k);
  if (devnull > 2) close(devnull);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) ready_fail(ready, "become a subreaper");
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) ready_fail(ready, "signalfd");
  listen_fd = listen_unix("shim.sock");
  if (listen_fd < 0) ready_fail(ready, "listen on shim.sock");
  char pidtext[32];
  int pn = snprintf(pidtext, sizeof pidtext, "%d", (int)getpid());
  if (write_atomic("shim.pid", pidtext, (size_t)pn) != 0) ready_fail(ready, "write shim.pid");
  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  if (ready >= 0) {
    if (write(ready, "ok\n", 3) != 3) {
      /* tsrund went away meanwhile; it finds the shim by its directory when it comes back */
    }
    close(ready);
  }

  static struct pollfd pfd[2 + MAX_CONNS + MAX_PROCS * 7];
  static struct {
    int kind, index;
    struct relay *r;
  } what[2 + MAX_CONNS + MAX_PROCS * 7];
  for (;;) {
    if (shutting_down) shutdown_now();
    int n = 0;
    pfd[n] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    what[n++].kind = PF_LISTEN;
    pfd[n] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
    what[n++].kind = PF_SIG;
    for (int i = 0; i < MAX_CONNS; i++) {
      if (conns[i].fd < 0) continue;
      pfd[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
      what[n].kind = PF_CONN;
      what[n++].index = i;
    }
    int timeout = -1;
    int64_t now = now_ms();
    for (int i = 0; i < MAX_PROCS; i++) {
      struct proc *p = &procs[i];
      if (!p->used) continue;
      struct relay *rs[3] = {&p->in, &p->out, &p->err};
      for (int k = 0; k < 3; k++) {
        struct relay *r = rs[k];
        if (r->len == 0 && r->src >= 0) {
          pfd[n] = (struct pollfd){.fd = r->src, .events = POLLIN};
          what[n].kind = PF_SRC;
          what[n].index = i;
          what[n++].r = r;
        } else if (r->len > 0 && r->dst >= 0) {
          pfd[n] = (struct pollfd){.fd = r->dst, .events = POLLOUT};
          what[n].kind = PF_DST;
          what[n].index = i;
          what[n++].r = r;
        }
      }
      if (p->oom_fd >= 0) {
        pfd[n] = (struct pollfd){.fd = p->oom_fd, .events = POLLIN};
        what[n].kind = PF_OOM;
        what[n++].index = i;
      }
      if (p->oom_recheck > 0) {
        int64_t left = p->oom_recheck - now;
        int t = left < 0 ? 0 : (int)left;
        if (timeout < 0 || t < timeout) timeout = t;
      }
      if (p->exit_pending) {
        int64_t left = exit_due(p) - now;
        int t = left < 0 ? 0 : (int)left;
        if (timeout < 0 || t < timeout) timeout = t;
      }
    }
    if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) ready_fail(-1, "poll");
    for (int j = 0; j < n; j++) {
      if (pfd[j].revents == 0) continue;
      switch (what[j].kind) {
      case PF_LISTEN: {
        int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) break;
        int slot = -1;
        for (int i = 0; i < MAX_CONNS && slot < 0; i++)
          if (conns[i].fd < 0) slot = i;
        if (slot < 0) {
          close(c);
          break;
        }
        conns[slot].fd = c;
        conns[slot].gen++;
        conns[slot].subscribed = 0;
        conns[slot].rlen = 0;
        conns[slot].n_passed = 0;
        break;
      }
      case PF_SIG:
        on_sigchld();
        break;
      case PF_CONN:
        if (conns[what[j].index].fd == pfd[j].fd) on_conn_readable(what[j].index);
        break;
      case PF_SRC:
        if (what[j].r->src == pfd[j].fd) relay_read(&procs[what[j].index], what[j].r);
        break;
      case PF_DST:
        if (what[j].r->dst == pfd[j].fd) {
          relay_flush(what[j].r);
          relay_settle(what[j].r);
        }
        break;
      case PF_OOM:
        if (procs[what[j].index].oom_fd == pfd[j].fd) oom_readable(&procs[what[j].index]);
        break;
      }
    }
    for (int i = 0; i < MAX_PROCS; i++)
      if (procs[i].used && procs[i].oom_recheck > 0 && procs[i].oom_recheck <= now_ms()) oom_check(&procs[i], 0);
    /* stdin that ended: EOF for the process */
    for (int i = 0; i < MAX_PROCS; i++)
      if (procs[i].used) relay_settle(&procs[i].in);
    settle_exits();
  }
}
