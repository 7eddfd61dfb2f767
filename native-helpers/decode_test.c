/*
 * TAP test of the plan decoder (plan.c): hand-built plans, valid and broken, plus a short
 * deterministic mutation run. `make test-native` builds and runs it; exit status 1 on failure.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "plan.h"

static int th_tests, th_failed;

static void ok(int cond, const char *fmt, ...) {
  va_list ap;
  th_tests++;
  if (!cond) th_failed++;
  printf("%s %d - ", cond ? "ok" : "not ok", th_tests);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

/* A plan under construction. */
struct pb {
  uint8_t b[1 << 16];
  size_t len, op_at;
  uint32_t nops;
};

static void put(struct pb *p, const void *d, size_t n) {
  memcpy(p->b + p->len, d, n);
  p->len += n;
}
static void u16(struct pb *p, uint16_t v) {
  uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  put(p, x, 2);
}
static void u32(struct pb *p, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(p, x, 4);
}
static void u64(struct pb *p, uint64_t v) {
  u32(p, (uint32_t)v);
  u32(p, (uint32_t)(v >> 32));
}
static void str(struct pb *p, const char *s) {
  u32(p, (uint32_t)strlen(s));
  put(p, s, strlen(s) + 1);
}
static void set32(struct pb *p, size_t at, uint32_t v) {
  size_t keep = p->len;
  p->len = at;
  u32(p, v);
  p->len = keep;
}
static void begin(struct pb *p) {
  p->len = 0;
  p->nops = 0;
  u32(p, TH_PLAN_MAGIC);
  u32(p, TH_PLAN_VERSION);
  u32(p, 0);
  u32(p, 0);
}
static void op(struct pb *p, uint16_t code) {
  p->op_at = p->len;
  p->nops++;
  u16(p, code);
  u16(p, 0);
  u32(p, 0);
}
static void end_op(struct pb *p) {
  set32(p, p->op_at + 4, (uint32_t)(p->len - p->op_at - 8));
}
static void finish(struct pb *p) {
  set32(p, 8, p->nops);
  set32(p, 12, (uint32_t)p->len);
}

/* Whole ops for the common cases. */
static void op_ns(struct pb *p, uint32_t type, const char *path) {
  op(p, TH_OP_NAMESPACE);
  u32(p, type);
  str(p, path);
  end_op(p);
}
static void op_rootfs(struct pb *p) {
  op(p, TH_OP_ROOTFS);
  str(p, "/tmp/rootfs");
  u64(p, MS_SLAVE | MS_REC);
  end_op(p);
}
static void op_process(struct pb *p) {
  op(p, TH_OP_PROCESS);
  u32(p, 2);
  str(p, "/bin/sh");
  str(p, "-c");
  u32(p, 1);
  str(p, "PATH=/bin");
  str(p, "/usr/bin:/bin");
  end_op(p);
}
static void op_empty(struct pb *p, uint16_t code) {
  op(p, code);
  end_op(p);
}
static void op_pivot(struct pb *p) {
  op(p, TH_OP_PIVOT);
  u32(p, TH_PIVOT_PIVOT_ROOT);
  end_op(p);
}

static void op_rootfs_prop(struct pb *p, uint64_t prop) {
  op(p, TH_OP_ROOTFS);
  str(p, "/tmp/rootfs");
  u64(p, prop);
  end_op(p);
}
static void op_pivot_mode(struct pb *p, uint32_t mode) {
  op(p, TH_OP_PIVOT);
  u32(p, mode);
  end_op(p);
}

/* The smallest valid plan: mount namespace, rootfs, process, exec. Callers may add ops first. */
static void minimal_head(struct pb *p) {
  begin(p);
  op_ns(p, CLONE_NEWNS, "");
  op_rootfs(p);
}
static void minimal_tail(struct pb *p) {
  op_process(p);
  op_empty(p, TH_OP_EXEC);
  finish(p);
}

static char err[512];

static int decode(struct pb *p, struct th_plan *out) {
  return th_plan_decode(p->b, p->len, out, err, sizeof err);
}

/* Decoding must fail with -EINVAL and a message containing want. */
static void rejects(struct pb *p, const char *want, const char *name) {
  struct th_plan plan;
  int rc = decode(p, &plan);
  ok(rc == -EINVAL && strstr(err, want) != NULL, "%s: rejected with \"%s\"", name, err);
  if (rc == 0) th_plan_free(&plan);
}

static void test_round_trip(void) {
  struct pb *p = calloc(1, sizeof *p);
  begin(p);
  op(p, TH_OP_CLOSE_FDS), u32(p, 2), end_op(p);
  op(p, TH_OP_SET_NAME), str(p, "tsrun:[1:init]"), end_op(p);
  op_ns(p, CLONE_NEWNS, "");
  op_ns(p, CLONE_NEWPID, "");
  op_ns(p, CLONE_NEWNET, "/proc/1/ns/net");
  op_rootfs(p);
  op(p, TH_OP_MOUNT), str(p, "proc"), str(p, "/proc"), str(p, "proc"), u64(p, MS_NOSUID | MS_NODEV);
  u64(p, MS_PRIVATE), str(p, ""), u32(p, TH_MOUNT_KIND_DIR), u64(p, 0), u64(p, 0), end_op(p);
  op(p, TH_OP_DEVICE), str(p, "/dev/null"), u32(p, 'c'), u32(p, 1), u32(p, 3), u32(p, 0666), u32(p, 0);
  u32(p, 0), u32(p, 0), end_op(p);
  op(p, TH_OP_HOOK), u32(p, TH_HOOK_CREATE_CONTAINER), str(p, "/bin/hook"), u32(p, 0), u32(p, 1), str(p, "A=b");
  u32(p, 5), end_op(p);
  op_pivot(p);
  op(p, TH_OP_USER), u32(p, 1000), u32(p, 1000), u32(p, 3), u32(p, 10), u32(p, 20), u32(p, 0x80000001u);
  u32(p, 1), end_op(p);
  op(p, TH_OP_OOM_SCORE_ADJ), u64(p, (uint64_t)-500), end_op(p);
  op(p, TH_OP_EXEC_FIFO), str(p, "/run/tsrun/x/exec.fifo"), end_op(p);
  op_process(p);
  op_empty(p, TH_OP_CREATED);
  op_empty(p, TH_OP_WAIT_START);
  op(p, TH_OP_SECCOMP), u32(p, 0), u32(p, 16);
  for (int i = 0; i < 16; i++) put(p, "\x06", 1);
  end_op(p);
  op_empty(p, TH_OP_EXEC);
  finish(p);

  struct th_plan plan;
  int rc = decode(p, &plan);
  ok(rc == 0, "valid plan of %u ops decodes (%s)", p->nops, err);
  if (rc != 0) {
    free(p);
    return;
  }
  ok(plan.n == p->nops, "op count round-trips");
  ok(plan.ops[0].code == TH_OP_CLOSE_FDS && plan.ops[0].f[TH_CLOSE_FDS_PRESERVE].u32 == 2, "close-fds preserve");
  ok(strcmp(plan.ops[1].f[TH_SET_NAME_NAME].s, "tsrun:[1:init]") == 0, "set-name string");
  ok(strcmp(plan.ops[4].f[TH_NAMESPACE_PATH].s, "/proc/1/ns/net") == 0 && plan.ops[4].f[TH_NAMESPACE_PATH].len == 14,
     "namespace path and length");
  const struct th_op *m = &plan.ops[6];
  ok(m->code == TH_OP_MOUNT && strcmp(m->f[TH_MOUNT_DESTINATION].s, "/proc") == 0 &&
         m->f[TH_MOUNT_FLAGS].u64 == (MS_NOSUID | MS_NODEV) && m->f[TH_MOUNT_PROPAGATION].u64 == MS_PRIVATE &&
         m->f[TH_MOUNT_DATA].len == 0,
     "mount fields");
  ok(plan.ops[7].f[TH_DEVICE_TYPE].u32 == 'c' && plan.ops[7].f[TH_DEVICE_MODE].u32 == 0666, "device fields");
  const struct th_op *h = &plan.ops[8];
  ok(h->f[TH_HOOK_ARGS].len == 0 && h->f[TH_HOOK_ARGS].list != NULL && h->f[TH_HOOK_ARGS].list[0] == NULL &&
         h->f[TH_HOOK_ENV].len == 1 && strcmp(h->f[TH_HOOK_ENV].list[0], "A=b") == 0 &&
         h->f[TH_HOOK_ENV].list[1] == NULL && h->f[TH_HOOK_TIMEOUT].u32 == 5,
     "hook lists: empty list is a NULL-terminated array");
  const struct th_op *u = &plan.ops[10];
  ok(u->f[TH_USER_GROUPS].len == 3 && u->f[TH_USER_GROUPS].u32s[0] == 10 && u->f[TH_USER_GROUPS].u32s[2] == 0x80000001u,
     "u32list copied");
  ok((int64_t)plan.ops[11].f[TH_OOM_SCORE_ADJ_VALUE].u64 == -500, "i64 in a u64");
  const struct th_op *pr = th_plan_find(&plan, TH_OP_PROCESS);
  ok(pr != NULL && pr->f[TH_PROCESS_ARGS].len == 2 && strcmp(pr->f[TH_PROCESS_ARGS].list[1], "-c") == 0 &&
         pr->f[TH_PROCESS_ARGS].list[2] == NULL && strcmp(pr->f[TH_PROCESS_DEFAULT_PATH].s, "/usr/bin:/bin") == 0,
     "process args, env, default_path");
  const struct th_op *sc = th_plan_find(&plan, TH_OP_SECCOMP);
  ok(sc != NULL && sc->f[TH_SECCOMP_FILTER].len == 16 && sc->f[TH_SECCOMP_FILTER].bytes[15] == 6, "seccomp bytes");
  ok(th_plan_create_flags(&plan) == (CLONE_NEWNS | CLONE_NEWPID), "create flags are the created namespaces");
  ok(!th_plan_needs_second_fork(&plan), "no second fork for created pid + joined net");
  th_plan_free(&plan);
  ok(plan.ops == NULL && plan.n == 0, "th_plan_free resets the plan");
  th_plan_free(&plan);

  /* Truncation at every length: with the header's total_len patched to match (so the decoder
     walks into the ops), and as-is (a total_len mismatch). */
  size_t full = p->len;
  int clean = 1;
  for (size_t l = 0; l < full; l++) {
    struct pb *q = calloc(1, sizeof *q);
    memcpy(q->b, p->b, l);
    q->len = l;
    if (l >= 16) set32(q, 12, (uint32_t)l);
    if (decode(q, &plan) != -EINVAL || err[0] == '\0') clean = 0, printf("# truncated at %zu: %s\n", l, err);
    q->len = l;
    if (l >= 16) set32(q, 12, (uint32_t)full);
    if (decode(q, &plan) != -EINVAL) clean = 0;
    free(q);
  }
  ok(clean, "every truncation of a %zu-byte plan fails cleanly with a message", full);
  free(p);
}

static void test_rejections(void) {
  struct pb *p = calloc(1, sizeof *p);

  minimal_head(p), minimal_tail(p);
  set32(p, 0, 0x12345678);
  rejects(p, "bad magic 0x12345678", "bad magic");

  minimal_head(p), minimal_tail(p);
  set32(p, 4, TH_PLAN_VERSION + 1);
  {
    char want[80];
    snprintf(want, sizeof want, "plan version %u, but this helper reads version %u", TH_PLAN_VERSION + 1,
             TH_PLAN_VERSION);
    rejects(p, want, "wrong version");
  }

  minimal_head(p), minimal_tail(p);
  set32(p, 12, (uint32_t)p->len + 1);
  rejects(p, "header says the plan is", "total_len mismatch");

  minimal_head(p), minimal_tail(p);
  set32(p, 8, 3);
  rejects(p, "bytes after the last of the 3 ops", "op_count smaller than the ops present");

  minimal_head(p), minimal_tail(p);
  set32(p, 8, 5);
  rejects(p, "op 4: header runs past the end of the plan", "op_count larger than the ops present");

  minimal_head(p);
  op_empty(p, 99);
  minimal_tail(p);
  rejects(p, "op 2: unknown op code 99", "unknown op");

  minimal_head(p);
  op_empty(p, 0);
  minimal_tail(p);
  rejects(p, "op 2: unknown op code 0", "op code 0");

  minimal_head(p);
  op_empty(p, TH_OP_NO_NEW_PRIVS);
  p->b[p->op_at + 2] = 1;
  minimal_tail(p);
  rejects(p, "op 2 (no-new-privs): reserved field is 1, must be 0", "nonzero reserved");

  minimal_head(p);
  op(p, TH_OP_UMASK), u32(p, 022), u32(p, 0), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (umask): 4 bytes left over after the last field", "trailing bytes in a payload");

  minimal_head(p);
  op(p, TH_OP_UMASK), u32(p, 022), end_op(p);
  set32(p, p->op_at + 4, 1000);
  minimal_tail(p);
  rejects(p, "op 2 (umask): payload of 1000 bytes runs past the end of the plan", "payload past the end");

  minimal_head(p);
  op(p, TH_OP_HOSTNAME), u32(p, 3), put(p, "abcd", 4), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (hostname): field name: string of 3 bytes is not NUL-terminated", "string without NUL");

  minimal_head(p);
  op(p, TH_OP_HOSTNAME), u32(p, 3), put(p, "a\0c\0", 4), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (hostname): field name: string contains a NUL byte at offset 1", "string with interior NUL");

  minimal_head(p);
  op(p, TH_OP_HOSTNAME), u32(p, 50), put(p, "abc\0", 4), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (hostname): field name: string of 50 bytes runs past the end of the payload",
          "string past the end of the payload");

  minimal_head(p);
  op(p, TH_OP_HOOK), u32(p, TH_HOOK_START_CONTAINER), str(p, "/h"), u32(p, 0xffffffffu), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (hook): field args: count 4294967295 is more than", "strlist count overflow");

  minimal_head(p);
  op(p, TH_OP_HOOK), u32(p, TH_HOOK_START_CONTAINER), str(p, "/h"), u32(p, 2), str(p, "a"), u32(p, 9);
  end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (hook): field args: item 1: string of 9 bytes runs past", "strlist item past the end");

  minimal_head(p);
  op(p, TH_OP_USER), u32(p, 0), u32(p, 0), u32(p, 0x40000000u), u32(p, 1), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (user): field groups: count 1073741824 is more than", "u32list count overflow");

  minimal_head(p);
  op(p, TH_OP_SECCOMP), u32(p, 0), u32(p, 12), put(p, "012345678901", 12), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (seccomp): filter is 12 bytes, not a whole number", "seccomp filter size");

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_rootfs(p), op_process(p);
  op(p, TH_OP_SECCOMP), u32(p, 0), u32(p, 8), put(p, "01234567", 8), end_op(p);
  op_empty(p, TH_OP_NO_NEW_PRIVS), op_empty(p, TH_OP_EXEC), finish(p);
  rejects(p, "op 3 (seccomp): needs a pivot op before it", "seccomp before pivot");

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_rootfs(p), op_process(p), op_empty(p, TH_OP_EXEC);
  op_empty(p, TH_OP_NO_NEW_PRIVS), finish(p);
  rejects(p, "op 3 (exec): must be the last op", "exec not last");

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_rootfs(p), op_process(p), finish(p);
  rejects(p, "the last op is process; a plan must end with exec", "no exec");

  minimal_head(p), op_pivot(p), op_pivot(p), minimal_tail(p);
  rejects(p, "op 3 (pivot): a plan may hold only one pivot op (the first is op 2)", "duplicate pivot");

  minimal_head(p);
  op(p, TH_OP_CLOSE_FDS), u32(p, 0), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (close-fds): must be the first op", "close-fds not first");

  minimal_head(p), op_ns(p, CLONE_NEWUTS, ""), minimal_tail(p);
  rejects(p, "op 2 (namespace): namespace ops must precede every op but close-fds and set-name (op 1 is rootfs)",
          "namespace after another op");

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_ns(p, CLONE_NEWNS, "/proc/1/ns/mnt"), op_rootfs(p), minimal_tail(p);
  rejects(p, "op 1 (namespace): a second mnt namespace (the first is op 0)", "duplicate namespace type");

  {
    struct th_plan plan;
    begin(p);
    op(p, TH_OP_NS_PIDFD), u32(p, 5), u32(p, CLONE_NEWNS | CLONE_NEWPID), end_op(p);
    op_ns(p, CLONE_NEWNS, "/proc/1/ns/mnt"), op_ns(p, CLONE_NEWPID, "/proc/1/ns/pid"), minimal_tail(p);
    int rc = decode(p, &plan);
    ok(rc == 0, "ns-pidfd before the namespace ops it covers: accepted (%s)", rc == 0 ? "ok" : err);
    if (rc == 0) th_plan_free(&plan);
  }

  begin(p), op_ns(p, CLONE_NEWNS, "/proc/1/ns/mnt");
  op(p, TH_OP_NS_PIDFD), u32(p, 5), u32(p, CLONE_NEWNS), end_op(p);
  minimal_tail(p);
  rejects(p, "op 1 (ns-pidfd): must precede the namespace ops (op 0 is one)", "ns-pidfd after a namespace op");

  begin(p);
  op(p, TH_OP_NS_PIDFD), u32(p, 5), u32(p, 0x1), end_op(p);
  op_ns(p, CLONE_NEWNS, "/proc/1/ns/mnt"), minimal_tail(p);
  rejects(p, "op 0 (ns-pidfd): nstypes 0x1 is not a set of CLONE_NEW* flags", "ns-pidfd with a bad type mask");

  begin(p);
  op(p, TH_OP_NS_PIDFD), u32(p, 2), u32(p, CLONE_NEWNS), end_op(p);
  op_ns(p, CLONE_NEWNS, "/proc/1/ns/mnt"), minimal_tail(p);
  rejects(p, "op 0 (ns-pidfd): fd 2 is not an inherited descriptor above stdio", "ns-pidfd on a stdio fd");

  {
    struct th_plan plan;
    begin(p);
    op(p, TH_OP_CLOSE_FDS), u32(p, 0), end_op(p);
    op(p, TH_OP_STDIO), u32(p, 5), u32(p, TH_STDIO_INHERIT), u32(p, 5), end_op(p);
    op_ns(p, CLONE_NEWNS, ""), op_rootfs(p), minimal_tail(p);
    int rc = decode(p, &plan);
    ok(rc == 0 && plan.ops[1].code == TH_OP_STDIO && plan.ops[1].f[TH_STDIO_FD0].u32 == 5 &&
           plan.ops[1].f[TH_STDIO_FD1].u32 == TH_STDIO_INHERIT && plan.ops[1].f[TH_STDIO_FD2].u32 == 5,
       "stdio right after close-fds, before the namespace ops: accepted with its fds (%s)", rc == 0 ? "ok" : err);
    if (rc == 0) th_plan_free(&plan);
  }

  begin(p), op_ns(p, CLONE_NEWNS, "");
  op(p, TH_OP_STDIO), u32(p, 5), u32(p, 6), u32(p, 7), end_op(p);
  op_rootfs(p), minimal_tail(p);
  rejects(p, "op 1 (stdio): must follow close-fds directly", "stdio not right after close-fds");

  begin(p);
  op(p, TH_OP_CLOSE_FDS), u32(p, 0), end_op(p);
  op(p, TH_OP_STDIO), u32(p, 0x80000000u), u32(p, 6), u32(p, 7), end_op(p);
  op_ns(p, CLONE_NEWNS, ""), op_rootfs(p), minimal_tail(p);
  rejects(p, "op 1 (stdio): fd0 2147483648 is not a descriptor", "stdio fd out of range");

  {
    struct th_plan plan;
    begin(p);
    op(p, TH_OP_CLOSE_FDS), u32(p, 0), end_op(p);
    op_ns(p, CLONE_NEWNS, ""), op_ns(p, CLONE_NEWCGROUP, "");
    op(p, TH_OP_CGROUP_JOIN), u32(p, 5), u32(p, TH_CGROUP_JOIN_MODE_TASKS), end_op(p);
    op(p, TH_OP_CGROUP_JOIN), u32(p, 6), u32(p, TH_CGROUP_JOIN_MODE_INTO), end_op(p);
    op(p, TH_OP_CGROUP_JOIN), u32(p, 7), u32(p, TH_CGROUP_JOIN_MODE_PROCS), end_op(p);
    op(p, TH_OP_CGROUP_JOIN), u32(p, 8), u32(p, TH_CGROUP_JOIN_MODE_TASKS), end_op(p);
    op_rootfs(p), minimal_tail(p);
    int rc = decode(p, &plan);
    ok(rc == 0 && plan.ops[3].code == TH_OP_CGROUP_JOIN && plan.ops[4].f[TH_CGROUP_JOIN_FD].u32 == 6 &&
           plan.ops[4].f[TH_CGROUP_JOIN_MODE].u32 == TH_CGROUP_JOIN_MODE_INTO,
       "cgroup-join ops right after the namespace ops: accepted with their fds and modes (%s)", rc == 0 ? "ok" : err);
    if (rc == 0) th_plan_free(&plan);
  }

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_rootfs(p);
  op(p, TH_OP_CGROUP_JOIN), u32(p, 5), u32(p, TH_CGROUP_JOIN_MODE_TASKS), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (cgroup-join): must directly follow the namespace ops (op 1 is rootfs)",
          "cgroup-join after set-up began");

  begin(p), op(p, TH_OP_CGROUP_JOIN), u32(p, 5), u32(p, TH_CGROUP_JOIN_MODE_TASKS), end_op(p);
  op_ns(p, CLONE_NEWNS, ""), op_rootfs(p), minimal_tail(p);
  rejects(p, "op 1 (namespace): namespace ops must precede every op", "a namespace op after cgroup-join");

  {
    static const struct {
      uint32_t n, ops[2][2]; /* {fd, mode} */
      const char *want, *what;
    } bad[] = {
        {2,
         {{5, TH_CGROUP_JOIN_MODE_INTO}, {6, TH_CGROUP_JOIN_MODE_INTO}},
         "op 2 (cgroup-join): a second cgroup v2 directory (the first is op 1)",
         "two cgroup v2 directories"},
        {2,
         {{5, TH_CGROUP_JOIN_MODE_PROCS}, {6, TH_CGROUP_JOIN_MODE_PROCS}},
         "op 2 (cgroup-join): a second cgroup v2 cgroup.procs (the first is op 1)",
         "two cgroup.procs"},
        {1, {{5, 3}}, "op 1 (cgroup-join): mode 3 is unknown", "cgroup-join with an unknown mode"},
        {1,
         {{1, TH_CGROUP_JOIN_MODE_TASKS}},
         "op 1 (cgroup-join): fd 1 is not an inherited descriptor above stdio",
         "cgroup-join on a stdio fd"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
      begin(p), op_ns(p, CLONE_NEWNS, "");
      for (uint32_t j = 0; j < bad[k].n; j++)
        op(p, TH_OP_CGROUP_JOIN), u32(p, bad[k].ops[j][0]), u32(p, bad[k].ops[j][1]), end_op(p);
      op_rootfs(p), minimal_tail(p);
      rejects(p, bad[k].want, bad[k].what);
    }
  }

  begin(p), op_ns(p, CLONE_NEWNS | CLONE_NEWPID, ""), op_rootfs(p), minimal_tail(p);
  rejects(p, "op 0 (namespace): nstype 0x20020000 is not a single CLONE_NEW* flag", "nstype with two flags");

  begin(p), op_ns(p, CLONE_NEWUTS, ""), op_rootfs(p), minimal_tail(p);
  rejects(p, "op 1 (rootfs): needs a mount namespace op", "rootfs without a mount namespace");

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_pivot(p), op_rootfs(p), minimal_tail(p);
  rejects(p, "op 1 (pivot): needs a rootfs op before it", "pivot before rootfs");

  minimal_head(p), op_empty(p, TH_OP_EXEC_FIFO - 0), minimal_tail(p);
  rejects(p, "op 2 (exec-fifo): field path: string length runs past the end", "missing field");

  minimal_head(p);
  op(p, TH_OP_EXEC_FIFO), str(p, "/f"), end_op(p);
  op_empty(p, TH_OP_WAIT_START);
  minimal_tail(p);
  rejects(p, "op 3 (wait-start): needs a created op before it", "wait-start before created");

  begin(p), op_ns(p, CLONE_NEWNS, ""), op_rootfs(p);
  op(p, TH_OP_PROCESS), u32(p, 0), u32(p, 0), str(p, ""), end_op(p);
  op_empty(p, TH_OP_EXEC), finish(p);
  rejects(p, "op 2 (process): args is empty", "empty args");

  minimal_head(p);
  op(p, TH_OP_SYSCTL), str(p, "net..ipv4"), str(p, "1"), end_op(p);
  minimal_tail(p);
  rejects(p, "key \"net..ipv4\" is not a sysctl name", "sysctl key with an empty component");

  minimal_head(p);
  op(p, TH_OP_SYSCTL), str(p, "kernel/../../etc"), str(p, "1"), end_op(p);
  minimal_tail(p);
  rejects(p, "is not a sysctl name", "sysctl key climbing out of /proc/sys");

  minimal_head(p);
  op(p, TH_OP_CWD), str(p, "relative"), end_op(p);
  minimal_tail(p);
  rejects(p, "op 2 (cwd): path \"relative\" is not absolute", "relative cwd");

  begin(p), finish(p);
  rejects(p, "plan has no ops", "no ops");

  ok(th_plan_decode(NULL, 0, &(struct th_plan){0}, err, sizeof err) == -EINVAL, "NULL buffer rejected");
  free(p);
}

static void test_second_fork(void) {
  struct pb *p = calloc(1, sizeof *p);
  struct th_plan plan;
  begin(p), op_ns(p, CLONE_NEWNS, ""), op_ns(p, CLONE_NEWPID, "/proc/1/ns/pid"), op_rootfs(p), minimal_tail(p);
  ok(decode(p, &plan) == 0 && th_plan_needs_second_fork(&plan) && th_plan_create_flags(&plan) == CLONE_NEWNS,
     "joined pid namespace needs a second fork");
  th_plan_free(&plan);
  begin(p), op_ns(p, CLONE_NEWNS, ""), op_ns(p, CLONE_NEWTIME, ""), op_rootfs(p), minimal_tail(p);
  ok(decode(p, &plan) == 0 && th_plan_needs_second_fork(&plan), "created time namespace needs a second fork");
  th_plan_free(&plan);
  free(p);
}

static void test_field_names(void) {
  int good = 1;
  for (unsigned code = 0; code <= TH_OP_MAX; code++) {
    if (!th_op_known[code]) continue;
    unsigned k = 0;
    while (k < TH_OP_MAX_FIELDS && th_op_fields[code][k] != 0) {
      if (th_plan_field_name(code, k) == NULL) good = 0, printf("# %s field %u has no name\n", th_op_names[code], k);
      k++;
    }
    if (k < TH_OP_MAX_FIELDS && th_plan_field_name(code, k) != NULL)
      good = 0, printf("# %s has a name for a field it does not have\n", th_op_names[code]);
  }
  ok(good, "plan_ops.h names exactly the fields each op declares");
}

/* Deterministic mutations of a valid plan: no crash, no leak of a half-decoded plan. */
static void test_mutations(void) {
  struct pb *base = calloc(1, sizeof *base), *q = calloc(1, sizeof *q);
  minimal_head(base);
  op(base, TH_OP_MOUNT), str(base, "proc"), str(base, "/proc"), str(base, "proc"), u64(base, 0), u64(base, 0);
  str(base, ""), u32(base, 0), u64(base, 0), u64(base, 0), end_op(base);
  minimal_tail(base);
  uint64_t s = 0x9e3779b97f4a7c15ull;
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 200000; i++) {
    memcpy(q, base, sizeof *q);
    int flips = 1 + (int)(s % 4);
    for (int f = 0; f < flips; f++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      q->b[s % q->len] ^= (uint8_t)(1u << (s >> 32) % 8);
    }
    struct th_plan plan;
    if (decode(q, &plan) == 0)
      accepted++, th_plan_free(&plan);
    else
      rejected++;
  }
  ok(rejected > 0, "200000 mutated plans decode or fail without crashing (%d accepted, %d rejected)", accepted,
     rejected);
  free(base);
  free(q);
}

/* Without a mount namespace the plan shares the runtime's: it may only chroot (see plan.c). */
static void test_no_mount_ns(void) {
  struct pb *p = calloc(1, sizeof *p);
  struct th_plan plan;
  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, 0), op_pivot_mode(p, TH_PIVOT_CHROOT), minimal_tail(p);
  int rc = decode(p, &plan);
  ok(rc == 0, "no mount namespace, rootfs and chroot: accepted (%s)", rc == 0 ? "ok" : err);
  if (rc == 0) th_plan_free(&plan);

  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, 0), minimal_tail(p);
  rejects(p, "op 1 (rootfs): needs a mount namespace op", "rootfs without a mount namespace or a pivot");
  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, 0), op_pivot_mode(p, TH_PIVOT_PIVOT_ROOT), minimal_tail(p);
  rejects(p, "op 2 (pivot): without a mount namespace op only mode chroot is allowed",
          "pivot_root without a mount namespace");
  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, 0), op_pivot_mode(p, TH_PIVOT_MOVE_CHROOT), minimal_tail(p);
  rejects(p, "op 2 (pivot): without a mount namespace op only mode chroot is allowed",
          "move of the rootfs without a mount namespace");
  minimal_head(p), op_pivot_mode(p, TH_PIVOT_CHROOT), minimal_tail(p);
  rejects(p, "op 2 (pivot): mode chroot is for a plan without a mount namespace op", "chroot with a mount namespace");
  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, MS_SHARED), op_pivot_mode(p, TH_PIVOT_CHROOT),
      minimal_tail(p);
  rejects(p, "op 1 (rootfs): a propagation needs a mount namespace op", "propagation without a mount namespace");
  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, 0), op_pivot_mode(p, TH_PIVOT_CHROOT);
  op_empty(p, TH_OP_ROOT_READONLY), minimal_tail(p);
  rejects(p, "op 3 (root-readonly): needs a mount namespace op", "read-only root without a mount namespace");
  begin(p), op_ns(p, CLONE_NEWPID, ""), op_rootfs_prop(p, 0), op_pivot_mode(p, 3), minimal_tail(p);
  rejects(p, "mode 3 is unknown", "unknown pivot mode");
  free(p);
}

int main(void) {
  printf("TAP version 14\n");
  test_round_trip();
  test_no_mount_ns();
  test_rejections();
  test_second_fork();
  test_field_names();
  test_mutations();
  printf("1..%d\n", th_tests);
  if (th_failed) printf("# %d of %d failed\n", th_failed, th_tests);
  return th_failed ? 1 : 0;
}
