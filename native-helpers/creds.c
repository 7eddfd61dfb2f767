/*
 * Limits, identity and privileges: RLIMIT, CAPS_BOUNDING, USER, CAPS, UMASK, NO_NEW_PRIVS and
 * SECCOMP. The builder orders them: rlimits while still privileged, bounding set and
 * PR_SET_KEEPCAPS before the uid switch (so permitted capabilities survive it,
 * capabilities(7)), the capability sets after it, seccomp last.
 *
 * Identity changes use raw syscalls: glibc's setuid/setgid/setgroups broadcast the change to
 * every thread it believes exists, by signal (nptl(7), "setxid"), and in this copy of a
 * multi-threaded process glibc still believes in Node's threads.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "sync.h"

/* Name tables keyed by the kernel's own constants, for messages. */
#define TH_NAMED(x) [x] = #x

static const char *const th_rlimit_names[RLIM_NLIMITS] = {
    TH_NAMED(RLIMIT_CPU),      TH_NAMED(RLIMIT_FSIZE), TH_NAMED(RLIMIT_DATA),   TH_NAMED(RLIMIT_STACK),
    TH_NAMED(RLIMIT_CORE),     TH_NAMED(RLIMIT_RSS),   TH_NAMED(RLIMIT_NPROC),  TH_NAMED(RLIMIT_NOFILE),
    TH_NAMED(RLIMIT_MEMLOCK),  TH_NAMED(RLIMIT_AS),    TH_NAMED(RLIMIT_LOCKS),  TH_NAMED(RLIMIT_SIGPENDING),
    TH_NAMED(RLIMIT_MSGQUEUE), TH_NAMED(RLIMIT_NICE),  TH_NAMED(RLIMIT_RTPRIO), TH_NAMED(RLIMIT_RTTIME),
};

static const char *const th_cap_names[CAP_CHECKPOINT_RESTORE + 1] = {
    TH_NAMED(CAP_CHOWN),
    TH_NAMED(CAP_DAC_OVERRIDE),
    TH_NAMED(CAP_DAC_READ_SEARCH),
    TH_NAMED(CAP_FOWNER),
    TH_NAMED(CAP_FSETID),
    TH_NAMED(CAP_KILL),
    TH_NAMED(CAP_SETGID),
    TH_NAMED(CAP_SETUID),
    TH_NAMED(CAP_SETPCAP),
    TH_NAMED(CAP_LINUX_IMMUTABLE),
    TH_NAMED(CAP_NET_BIND_SERVICE),
    TH_NAMED(CAP_NET_BROADCAST),
    TH_NAMED(CAP_NET_ADMIN),
    TH_NAMED(CAP_NET_RAW),
    TH_NAMED(CAP_IPC_LOCK),
    TH_NAMED(CAP_IPC_OWNER),
    TH_NAMED(CAP_SYS_MODULE),
    TH_NAMED(CAP_SYS_RAWIO),
    TH_NAMED(CAP_SYS_CHROOT),
    TH_NAMED(CAP_SYS_PTRACE),
    TH_NAMED(CAP_SYS_PACCT),
    TH_NAMED(CAP_SYS_ADMIN),
    TH_NAMED(CAP_SYS_BOOT),
    TH_NAMED(CAP_SYS_NICE),
    TH_NAMED(CAP_SYS_RESOURCE),
    TH_NAMED(CAP_SYS_TIME),
    TH_NAMED(CAP_SYS_TTY_CONFIG),
    TH_NAMED(CAP_MKNOD),
    TH_NAMED(CAP_LEASE),
    TH_NAMED(CAP_AUDIT_WRITE),
    TH_NAMED(CAP_AUDIT_CONTROL),
    TH_NAMED(CAP_SETFCAP),
    TH_NAMED(CAP_MAC_OVERRIDE),
    TH_NAMED(CAP_MAC_ADMIN),
    TH_NAMED(CAP_SYSLOG),
    TH_NAMED(CAP_WAKE_ALARM),
    TH_NAMED(CAP_BLOCK_SUSPEND),
    TH_NAMED(CAP_AUDIT_READ),
    TH_NAMED(CAP_PERFMON),
    TH_NAMED(CAP_BPF),
    TH_NAMED(CAP_CHECKPOINT_RESTORE),
};

static const char *th_cap_name(char *num, unsigned cap) {
  if (cap < sizeof th_cap_names / sizeof th_cap_names[0]) return th_cap_names[cap];
  return th_u64s(num, cap);
}

static const char *th_limit_value(char *out, uint64_t v) {
  return v == (uint64_t)RLIM_INFINITY ? "unlimited" : th_u64s(out, v);
}

int th_op_rlimit(struct th_child *c, const struct th_op *op) {
  uint32_t res = op->f[TH_RLIMIT_RESOURCE].u32;
  struct rlimit lim = {.rlim_cur = op->f[TH_RLIMIT_SOFT].u64, .rlim_max = op->f[TH_RLIMIT_HARD].u64};
  if (syscall(SYS_prlimit64, 0, res, &lim, NULL) < 0) {
    char s[TH_NUM_BYTES], h[TH_NUM_BYTES];
    return th_fail(c, errno, "setrlimit ", th_rlimit_names[res], " (soft ", th_limit_value(s, lim.rlim_cur), ", hard ",
                   th_limit_value(h, lim.rlim_max), ")", NULL);
  }
  return 0;
}

/* Capabilities this kernel knows, as a mask; unknown bits are dropped as runc does. */
static uint64_t th_known_caps(const struct th_child *c) {
  return c->cap_last_cap >= 63 ? ~(uint64_t)0 : ((uint64_t)1 << (c->cap_last_cap + 1)) - 1;
}

int th_op_caps_bounding(struct th_child *c, const struct th_op *op) {
  uint64_t keep = op->f[TH_CAPS_BOUNDING_BOUNDING].u64;
  char n[TH_NUM_BYTES];
  for (int cap = 0; cap <= c->cap_last_cap && cap < 64; cap++) {
    if (keep & ((uint64_t)1 << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      return th_fail(c, errno, "drop ", th_cap_name(n, (unsigned)cap), " from the bounding set", NULL);
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return th_fail(c, errno, "set PR_SET_KEEPCAPS", NULL);
  return 0;
}

/* The largest id the runtime hands to set*id: (uid_t)-1 means "leave unchanged" to setresuid(2),
   so 4294967295 would keep the runtime's own (root) ids; runc refuses ids above INT32_MAX too. */
#define TH_MAX_ID 2147483647u

/* Supplementary groups as the kernel reports them after setgroups; static, not on the child's
   stack, and allocated before clone like all the child's memory. */
static gid_t th_groups_now[TH_MAX_GROUPS];

/* Defence in depth: read the credentials back and fail unless they are exactly what was asked,
   so no kernel or libc surprise (an unchanged id, a dropped group) lets the process run as root. */
static int th_check_user(struct th_child *c, uint32_t uid, uint32_t gid, const struct th_field *groups, int setgroups) {
  static const char *const nope = "user switch did not take: ";
  uid_t r, e, s;
  gid_t rg, eg, sg;
  char a[TH_NUM_BYTES], b[TH_NUM_BYTES];
  if (syscall(SYS_getresuid, &r, &e, &s) < 0) return th_fail(c, errno, "getresuid after the user switch", NULL);
  if (r != uid || e != uid || s != uid)
    return th_fail_complete(c, EPERM, nope, "uid is ", th_u64s(a, e), ", want ", th_u64s(b, uid), NULL);
  if (syscall(SYS_getresgid, &rg, &eg, &sg) < 0) return th_fail(c, errno, "getresgid after the user switch", NULL);
  if (rg != gid || eg != gid || sg != gid)
    return th_fail_complete(c, EPERM, nope, "gid is ", th_u64s(a, eg), ", want ", th_u64s(b, gid), NULL);
  if (!setgroups) return 0;
  long n = syscall(SYS_getgroups, TH_MAX_GROUPS, th_groups_now);
  if (n < 0) return th_fail(c, errno, "getgroups after the user switch", NULL);
  if ((uint32_t)n != groups->len)
    return th_fail_complete(c, EPERM, nope, th_u64s(a, (uint64_t)n), " supplementary groups, want ",
                            th_u64s(b, groups->len), NULL);
  /* The kernel sorts the list (groups_sort), so compare as sets. */
  for (uint32_t i = 0; i < groups->len; i++) {
    long j = 0;
    while (j < n && th_groups_now[j] != groups->u32s[i]) j++;
    if (j == n)
      return th_fail_complete(c, EPERM, nope, "supplementary group ", th_u64s(a, groups->u32s[i]), " missing", NULL);
  }
  return 0;
}

int th_op_user(struct th_child *c, const struct th_op *op) {
  static const char *const range = ": uids and gids must be in range 0-2147483647";
  const struct th_field *f = op->f;
  uint32_t uid = f[TH_USER_UID].u32, gid = f[TH_USER_GID].u32;
  int setgroups = f[TH_USER_SETGROUPS].u32 != 0;
  char a[TH_NUM_BYTES];
  if (uid > TH_MAX_ID) return th_fail_complete(c, EINVAL, "invalid uid ", th_u64s(a, uid), range, NULL);
  if (gid > TH_MAX_ID) return th_fail_complete(c, EINVAL, "invalid gid ", th_u64s(a, gid), range, NULL);
  for (uint32_t i = 0; i < f[TH_USER_GROUPS].len; i++)
    if (f[TH_USER_GROUPS].u32s[i] > TH_MAX_ID)
      return th_fail_complete(c, EINVAL, "invalid additional gid ", th_u64s(a, f[TH_USER_GROUPS].u32s[i]), range, NULL);
  if (setgroups && syscall(SYS_setgroups, f[TH_USER_GROUPS].len, f[TH_USER_GROUPS].u32s) < 0)
    return th_fail(c, errno, "setgroups (", th_u64s(a, f[TH_USER_GROUPS].len), " groups)", NULL);
  if (syscall(SYS_setresgid, gid, gid, gid) < 0) return th_fail(c, errno, "setresgid ", th_u64s(a, gid), NULL);
  if (syscall(SYS_setresuid, uid, uid, uid) < 0) return th_fail(c, errno, "setresuid ", th_u64s(a, uid), NULL);
  return th_check_user(c, uid, gid, &f[TH_USER_GROUPS], setgroups);
}

int th_op_caps(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  uint64_t known = th_known_caps(c), eff = f[TH_CAPS_EFFECTIVE].u64 & known, prm = f[TH_CAPS_PERMITTED].u64 & known,
           inh = f[TH_CAPS_INHERITABLE].u64 & known, amb = f[TH_CAPS_AMBIENT].u64 & known;
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2] = {
      {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
      {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)},
  };
  char h1[TH_NUM_BYTES], h2[TH_NUM_BYTES], h3[TH_NUM_BYTES], n[TH_NUM_BYTES];
  if (syscall(SYS_capset, &hdr, data) < 0)
    return th_fail(c, errno, "capset (effective ", th_hexs(h1, eff), ", permitted ", th_hexs(h2, prm), ", inheritable ",
                   th_hexs(h3, inh), ")", NULL);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return th_fail(c, errno, "clear the ambient capabilities", NULL);
  for (int cap = 0; cap < 64; cap++) {
    if (!(amb & ((uint64_t)1 << cap))) continue;
    /* The kernel refuses (EPERM) a cap that is not both permitted and inheritable
       (capabilities(7)). runc only warns then ("can't raise ambient capability"), and configs
       from `runc spec` list ambient caps with no inheritable set, so skip it likewise. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
      return th_fail(c, errno, "raise ambient ", th_cap_name(n, (unsigned)cap), NULL);
  }
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return th_fail(c, errno, "clear PR_SET_KEEPCAPS", NULL);
  return 0;
}

int th_op_umask(struct th_child *c, const struct th_op *op) {
  (void)c;
  umask((mode_t)(op->f[TH_UMASK_MASK].u32 & 0777));
  return 0;
}

int th_op_no_new_privs(struct th_child *c, const struct th_op *op) {
  (void)op;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return th_fail(c, errno, "set no_new_privs", NULL);
  return 0;
}

/* The filter was compiled by libseccomp in the runtime; the decoder checked its size. */
int th_op_seccomp(struct th_child *c, const struct th_op *op) {
  struct sock_fprog prog = {
      .len = (unsigned short)(op->f[TH_SECCOMP_FILTER].len / sizeof(struct sock_filter)),
      /* The kernel copies the program, so pointing into the (unaligned) plan bytes is fine. */
      .filter = (struct sock_filter *)(uintptr_t)op->f[TH_SECCOMP_FILTER].bytes,
  };
  char h[TH_NUM_BYTES], n[TH_NUM_BYTES];
  long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, op->f[TH_SECCOMP_FLAGS].u32, &prog);
  if (rc < 0)
    return th_fail(c, errno, "install the seccomp filter (", th_u64s(n, prog.len), " instructions, flags ",
                   th_hexs(h, op->f[TH_SECCOMP_FLAGS].u32), ")", NULL);
  /* With NEW_LISTENER the kernel returns the user-notification fd: the runtime hands it on. */
  if (op->f[TH_SECCOMP_FLAGS].u32 & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
    int e = th_sync_send_fd(c->sync_fd, TH_MSG_SECCOMP_FD, (int)rc);
    close((int)rc);
    if (e < 0) return th_fail(c, -e, "send the seccomp listener fd to the runtime", NULL);
  }
  return 0;
}

/* struct sched_attr (sched_setattr(2)); glibc has neither the struct nor a wrapper. */
struct th_sched_attr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

int th_op_scheduler(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  struct th_sched_attr a = {
      .size = sizeof a,
      .sched_policy = f[TH_SCHEDULER_POLICY].u32,
      .sched_flags = f[TH_SCHEDULER_FLAGS].u64,
      .sched_nice = (int32_t)f[TH_SCHEDULER_NICE].u32,
      .sched_priority = f[TH_SCHEDULER_PRIORITY].u32,
      .sched_runtime = f[TH_SCHEDULER_RUNTIME].u64,
      .sched_deadline = f[TH_SCHEDULER_DEADLINE].u64,
      .sched_period = f[TH_SCHEDULER_PERIOD].u64,
  };
  char p[TH_NUM_BYTES], n[TH_NUM_BYTES], q[TH_NUM_BYTES];
  if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
    return th_fail(c, errno, "sched_setattr (policy ", th_u64s(p, a.sched_policy), ", nice ", th_i64s(n, a.sched_nice),
                   ", priority ", th_u64s(q, a.sched_priority), ")", NULL);
  return 0;
}

int th_op_io_priority(struct th_child *c, const struct th_op *op) {
  uint32_t v = op->f[TH_IO_PRIORITY_VALUE].u32;
  char a[TH_NUM_BYTES], b[TH_NUM_BYTES];
  /* ioprio_set(IOPRIO_WHO_PROCESS, 0 = this process, (class << 13) | level) */
  if (syscall(SYS_ioprio_set, 1, 0, (int)v) < 0)
    return th_fail(c, errno, "ioprio_set (class ", th_u64s(a, v >> 13), ", level ", th_u64s(b, v & 0x1fff), ")", NULL);
  return 0;
}

int th_op_personality(struct th_child *c, const struct th_op *op) {
  uint32_t v = op->f[TH_PERSONALITY_PERSONA].u32;
  char a[TH_NUM_BYTES];
  if (personality(v) < 0) return th_fail(c, errno, "personality ", th_hexs(a, v), NULL);
  return 0;
}
