/*
 * Plan decoder: bytes (format in runtime/plan/ops.ts) → struct th_plan, or a message that names
 * the op, the field and what is wrong. Runs in the parent before clone, so it may allocate and
 * use stdio. Op indexes in messages count from 0, like the TypeScript plan's ops array.
 */
#include "plan.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "plan_names.h"

const char *th_plan_field_name(unsigned code, unsigned index) {
  if (code > TH_OP_MAX || index >= TH_OP_MAX_FIELDS) return NULL;
  return th_field_names[code][index];
}

const char *th_plan_ns_name(uint32_t flag) {
  for (size_t i = 0; i < sizeof th_ns_types / sizeof th_ns_types[0]; i++)
    if (th_ns_types[i].flag == flag) return th_ns_types[i].name;
  return NULL;
}

static uint16_t th_rd16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t th_rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t th_rd64(const uint8_t *p) {
  return (uint64_t)th_rd32(p) | (uint64_t)th_rd32(p + 4) << 32;
}

__attribute__((format(printf, 3, 4))) static int th_say(char *out, size_t outlen, const char *fmt, ...) {
  if (out != NULL && outlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* The unread part of one op's payload. */
struct th_cursor {
  const uint8_t *p;
  size_t left;
};

/* item < 0: a plain str field; else the index inside a strlist (named in the message). */
static int th_take_str(struct th_cursor *c, const char **s, uint32_t *len, long item, char *why, size_t n) {
  char pre[32] = "";
  if (item >= 0) snprintf(pre, sizeof pre, "item %ld: ", item);
  if (c->left < 4) return th_say(why, n, "%sstring length runs past the end of the payload", pre);
  uint32_t l = th_rd32(c->p);
  /* Room for the bytes plus the NUL; written so that no sum can overflow. */
  if (l >= c->left - 4) return th_say(why, n, "%sstring of %u bytes runs past the end of the payload", pre, l);
  const char *str = (const char *)c->p + 4;
  if (str[l] != '\0') return th_say(why, n, "%sstring of %u bytes is not NUL-terminated", pre, l);
  const char *nul = memchr(str, '\0', l);
  if (nul != NULL) return th_say(why, n, "%sstring contains a NUL byte at offset %zu", pre, (size_t)(nul - str));
  *s = str;
  *len = l;
  c->p += 4 + (size_t)l + 1;
  c->left -= 4 + (size_t)l + 1;
  return 0;
}

static int th_take_count(struct th_cursor *c, uint32_t *count, size_t min_item, char *why, size_t n) {
  if (c->left < 4) return th_say(why, n, "count runs past the end of the payload");
  *count = th_rd32(c->p);
  c->p += 4;
  c->left -= 4;
  if (*count > c->left / min_item)
    return th_say(why, n, "count %u is more than the %zu payload bytes left can hold", *count, c->left);
  return 0;
}

static int th_take_field(struct th_cursor *c, unsigned kind, struct th_field *f, char *why, size_t n) {
  switch (kind) {
  case TH_F_U32:
    if (c->left < 4) return th_say(why, n, "u32 runs past the end of the payload");
    f->u32 = th_rd32(c->p);
    f->u64 = f->u32;
    c->p += 4;
    c->left -= 4;
    return 0;
  case TH_F_U64:
    if (c->left < 8) return th_say(why, n, "u64 runs past the end of the payload");
    f->u64 = th_rd64(c->p);
    f->u32 = (uint32_t)f->u64;
    c->p += 8;
    c->left -= 8;
    return 0;
  case TH_F_STR:
    return th_take_str(c, &f->s, &f->len, -1, why, n);
  case TH_F_STRLIST: {
    uint32_t count;
    /* The smallest string is 5 bytes (length + NUL). */
    if (th_take_count(c, &count, 5, why, n) < 0) return -EINVAL;
    /* Two spare NULL slots: the terminator, and room for the child to append one entry without
       allocating (PROCESS adds HOME= the way runc does). */
    f->list = calloc((size_t)count + 2, sizeof f->list[0]);
    if (f->list == NULL) return th_say(why, n, "out of memory for %u strings", count), -ENOMEM;
    f->len = count;
    for (uint32_t i = 0; i < count; i++) {
      const char *s;
      uint32_t l;
      if (th_take_str(c, &s, &l, (long)i, why, n) < 0) return -EINVAL;
      f->list[i] = (char *)s;
    }
    return 0;
  }
  case TH_F_U32LIST: {
    uint32_t count;
    if (th_take_count(c, &count, 4, why, n) < 0) return -EINVAL;
    /* Never NULL, even when empty, so callers need no special case. */
    f->u32s = malloc(((size_t)count + 1) * sizeof f->u32s[0]);
    if (f->u32s == NULL) return th_say(why, n, "out of memory for %u numbers", count), -ENOMEM;
    f->len = count;
    for (uint32_t i = 0; i < count; i++) f->u32s[i] = th_rd32(c->p + 4 * (size_t)i);
    c->p += 4 * (size_t)count;
    c->left -= 4 * (size_t)count;
    return 0;
  }
  case TH_F_BYTES: {
    if (c->left < 4) return th_say(why, n, "length runs past the end of the payload");
    uint32_t l = th_rd32(c->p);
    if (l > c->left - 4) return th_say(why, n, "%u bytes run past the end of the payload", l);
    f->bytes = c->p + 4;
    f->len = l;
    c->p += 4 + (size_t)l;
    c->left -= 4 + (size_t)l;
    return 0;
  }
  default:
    return th_say(why, n, "field kind %u is unknown to this helper", kind);
  }
}

/* A sysctl key becomes a path under /proc/sys: refuse anything that could climb out of it. */
static int th_sysctl_key_ok(const char *k) {
  if (k[0] == '\0') return 0;
  const char *start = k;
  for (const char *p = k;; p++) {
    if (*p == '.' || *p == '/' || *p == '\0') {
      size_t l = (size_t)(p - start);
      if (l == 0) return 0; /* empty component, or a leading/trailing separator */
      if (start[0] == '.' && (l == 1 || (l == 2 && start[1] == '.'))) return 0;
      if (*p == '\0') return 1;
      start = p + 1;
    }
  }
}

/* Checks on one op's values (the ones the child would otherwise trip over after clone). */
static int th_check_op(const struct th_op *op, char *why, size_t n) {
  const struct th_field *f = op->f;
  switch (op->code) {
  case TH_OP_CLOSE_FDS:
    if (f[TH_CLOSE_FDS_PRESERVE].u32 > TH_MAX_PRESERVE_FDS)
      return th_say(why, n, "preserve %u is over the limit of %u", f[0].u32, TH_MAX_PRESERVE_FDS);
    return 0;
  case TH_OP_NAMESPACE:
    if (th_plan_ns_name(f[TH_NAMESPACE_NSTYPE].u32) == NULL)
      return th_say(why, n, "nstype 0x%x is not a single CLONE_NEW* flag", f[TH_NAMESPACE_NSTYPE].u32);
    return 0;
  case TH_OP_NS_PIDFD: {
    uint32_t t = f[TH_NS_PIDFD_NSTYPES].u32, known = 0;
    for (size_t k = 0; k < sizeof th_ns_types / sizeof th_ns_types[0]; k++) known |= th_ns_types[k].flag;
    if (t == 0 || (t & ~known) != 0) return th_say(why, n, "nstypes 0x%x is not a set of CLONE_NEW* flags", t);
    if (f[TH_NS_PIDFD_FD].u32 < 3 || f[TH_NS_PIDFD_FD].u32 > INT32_MAX)
      return th_say(why, n, "fd %u is not an inherited descriptor above stdio", f[TH_NS_PIDFD_FD].u32);
    return 0;
  }
  case TH_OP_CGROUP_JOIN:
    if (f[TH_CGROUP_JOIN_MODE].u32 > TH_CGROUP_JOIN_MODE_PROCS)
      return th_say(why, n, "mode %u is unknown", f[TH_CGROUP_JOIN_MODE].u32);
    if (f[TH_CGROUP_JOIN_FD].u32 < 3 || f[TH_CGROUP_JOIN_FD].u32 > INT32_MAX)
      return th_say(why, n, "fd %u is not an inherited descriptor above stdio", f[TH_CGROUP_JOIN_FD].u32);
    return 0;
  case TH_OP_STDIO:
    for (int k = 0; k < 3; k++)
      if (f[k].u32 != TH_STDIO_INHERIT && f[k].u32 > INT32_MAX)
        return th_say(why, n, "fd%d %u is not a descriptor", k, f[k].u32);
    return 0;
  case TH_OP_ROOTFS:
    if (f[TH_ROOTFS_PATH].s[0] != '/') return th_say(why, n, "path \"%s\" is not absolute", f[0].s);
    return 0;
  case TH_OP_MOUNT:
    if (f[TH_MOUNT_DESTINATION].len == 0) return th_say(why, n, "destination is empty");
    if (f[TH_MOUNT_KIND].u32 > TH_MOUNT_KIND_AUTO) return th_say(why, n, "kind %u is unknown", f[TH_MOUNT_KIND].u32);
    return 0;
  case TH_OP_DEVICE: {
    uint32_t t = f[TH_DEVICE_TYPE].u32;
    if (f[TH_DEVICE_PATH].len == 0) return th_say(why, n, "path is empty");
    if (t != 'c' && t != 'b' && t != 'p' && t != 'u') return th_say(why, n, "type %u is not c, b, p or u", t);
    return 0;
  }
  case TH_OP_SYMLINK:
    if (f[TH_SYMLINK_LINKPATH].len == 0) return th_say(why, n, "linkpath is empty");
    return 0;
  case TH_OP_HOOK: {
    uint32_t ph = f[TH_HOOK_PHASE].u32;
    if (ph != TH_HOOK_CREATE_CONTAINER && ph != TH_HOOK_START_CONTAINER)
      return th_say(why, n, "phase %u cannot run inside the container (only createContainer and startContainer)", ph);
    if (f[TH_HOOK_PATH].len == 0) return th_say(why, n, "path is empty");
    return 0;
  }
  case TH_OP_PIVOT:
    if (f[TH_PIVOT_MODE].u32 > TH_PIVOT_CHROOT) return th_say(why, n, "mode %u is unknown", f[0].u32);
    return 0;
  case TH_OP_SYSCTL:
    if (!th_sysctl_key_ok(f[TH_SYSCTL_KEY].s)) return th_say(why, n, "key \"%s\" is not a sysctl name", f[0].s);
    return 0;
  case TH_OP_RLIMIT:
    if (f[TH_RLIMIT_RESOURCE].u32 >= RLIM_NLIMITS) return th_say(why, n, "resource %u is unknown", f[0].u32);
    return 0;
  case TH_OP_USER:
    if (f[TH_USER_GROUPS].len > TH_MAX_GROUPS)
      return th_say(why, n, "%u groups is over the limit of %u", f[TH_USER_GROUPS].len, TH_MAX_GROUPS);
    return 0;
  case TH_OP_CWD:
    if (f[TH_CWD_PATH].s[0] != '/') return th_say(why, n, "path \"%s\" is not absolute", f[0].s);
    return 0;
  case TH_OP_EXEC_FIFO:
    if (f[TH_EXEC_FIFO_PATH].len == 0) return th_say(why, n, "path is empty");
    return 0;
  case TH_OP_PROCESS:
    if (f[TH_PROCESS_ARGS].len == 0 || f[TH_PROCESS_ARGS].list[0][0] == '\0') return th_say(why, n, "args is empty");
    return 0;
  case TH_OP_SECCOMP: {
    uint32_t l = f[TH_SECCOMP_FILTER].len;
    if (l % 8 != 0) return th_say(why, n, "filter is %u bytes, not a whole number of 8-byte instructions", l);
    if (l == 0 || l / 8 > TH_SECCOMP_MAX_INSNS)
      return th_say(why, n, "filter has %u instructions; the kernel takes 1 to %u", l / 8, TH_SECCOMP_MAX_INSNS);
    return 0;
  }
  default:
    return 0;
  }
}

/* Ordering rules: the few invariants the executor relies on (see docs/native-helper.md). */
static int th_check_order(const struct th_plan *p, char *err, size_t errlen) {
  long first[TH_OP_MAX + 1];
  long ns_first[sizeof th_ns_types / sizeof th_ns_types[0]];
  long not_ns = -1;           /* first op that may not precede a NAMESPACE op */
  long not_join = -1;         /* first op that may not precede a CGROUP_JOIN op */
  long into = -1, procs = -1; /* the CGROUP_JOIN ops with mode INTO and PROCS */
  int has_mount_ns = 0;
  for (size_t i = 0; i <= TH_OP_MAX; i++) first[i] = -1;
  for (size_t i = 0; i < sizeof ns_first / sizeof ns_first[0]; i++) ns_first[i] = -1;

  for (uint32_t i = 0; i < p->n; i++) {
    const struct th_op *op = &p->ops[i];
    unsigned c = op->code;
    const char *nm = th_op_names[c];
    switch (c) {
    case TH_OP_CLOSE_FDS:
    case TH_OP_ROOTFS:
    case TH_OP_PIVOT:
    case TH_OP_PROCESS:
    case TH_OP_EXEC:
    case TH_OP_CREATED:
    case TH_OP_WAIT_START:
    case TH_OP_EXEC_FIFO:
    case TH_OP_SECCOMP:
    case TH_OP_NS_PIDFD:
    case TH_OP_STDIO:
      if (first[c] >= 0)
        return th_say(err, errlen, "op %u (%s): a plan may hold only one %s op (the first is op %ld)", i, nm, nm,
                      first[c]);
      break;
    default:
      break;
    }
    if (c == TH_OP_CLOSE_FDS && i != 0) return th_say(err, errlen, "op %u (close-fds): must be the first op", i);
    if (c == TH_OP_STDIO && (i != 1 || p->ops[0].code != TH_OP_CLOSE_FDS))
      return th_say(err, errlen, "op %u (stdio): must follow close-fds directly", i);
    if (c == TH_OP_EXEC && i != p->n - 1) return th_say(err, errlen, "op %u (exec): must be the last op", i);
    if (c == TH_OP_NAMESPACE) {
      uint32_t t = op->f[TH_NAMESPACE_NSTYPE].u32;
      if (not_ns >= 0)
        return th_say(err, errlen,
                      "op %u (namespace): namespace ops must precede every op but close-fds and set-name "
                      "(op %ld is %s)",
                      i, not_ns, th_op_names[p->ops[not_ns].code]);
      for (size_t k = 0; k < sizeof th_ns_types / sizeof th_ns_types[0]; k++) {
        if (th_ns_types[k].flag != t) continue;
        if (ns_first[k] >= 0)
          return th_say(err, errlen, "op %u (namespace): a second %s namespace (the first is op %ld)", i,
                        th_ns_types[k].name, ns_first[k]);
        ns_first[k] = i;
      }
      if (t == CLONE_NEWNS) has_mount_ns = 1;
    } else if (c == TH_OP_NS_PIDFD && first[TH_OP_NAMESPACE] >= 0) {
      return th_say(err, errlen, "op %u (ns-pidfd): must precede the namespace ops (op %ld is one)", i,
                    first[TH_OP_NAMESPACE]);
    } else if (c != TH_OP_CLOSE_FDS && c != TH_OP_STDIO && c != TH_OP_SET_NAME && c != TH_OP_NS_PIDFD && not_ns < 0) {
      not_ns = i;
    }
    if (c == TH_OP_CGROUP_JOIN) {
      if (not_join >= 0)
        return th_say(err, errlen, "op %u (cgroup-join): must directly follow the namespace ops (op %ld is %s)", i,
                      not_join, th_op_names[p->ops[not_join].code]);
      uint32_t mode = op->f[TH_CGROUP_JOIN_MODE].u32;
      long *seen = mode == TH_CGROUP_JOIN_MODE_INTO ? &into : mode == TH_CGROUP_JOIN_MODE_PROCS ? &procs : NULL;
      if (seen != NULL && *seen >= 0)
        return th_say(err, errlen, "op %u (cgroup-join): a second cgroup v2 %s (the first is op %ld)", i,
                      mode == TH_CGROUP_JOIN_MODE_INTO ? "directory" : "cgroup.procs", *seen);
      if (seen != NULL) *seen = i;
    } else if (c != TH_OP_CLOSE_FDS && c != TH_OP_STDIO && c != TH_OP_SET_NAME && c != TH_OP_NS_PIDFD &&
               c != TH_OP_NAMESPACE && not_join < 0) {
      not_join = i;
    }
    const char *needs = NULL;
    switch (c) {
    case TH_OP_MOUNT:
    case TH_OP_DEVICE:
    case TH_OP_SYMLINK:
    case TH_OP_PIVOT:
    case TH_OP_MASK_PATH:
    case TH_OP_READONLY_PATH:
      if (first[TH_OP_ROOTFS] < 0) needs = "rootfs";
      break;
    case TH_OP_ROOT_READONLY:
      if (first[TH_OP_PIVOT] < 0) needs = "pivot";
      break;
    /* The builder places the filter: last when no_new_privs is set, else before capabilities drop
       (seccomp(2) needs one of the two); never while the mounts are still being made. */
    case TH_OP_SECCOMP:
      /* An exec plan joins an existing mount namespace and has no rootfs to set up. */
      if (first[TH_OP_ROOTFS] >= 0 && first[TH_OP_PIVOT] < 0) needs = "pivot";
      break;
    case TH_OP_EXEC:
      if (first[TH_OP_PROCESS] < 0) needs = "process";
      break;
    case TH_OP_WAIT_START:
      if (first[TH_OP_EXEC_FIFO] < 0)
        needs = "exec-fifo";
      else if (first[TH_OP_CREATED] < 0)
        needs = "created";
      break;
    default:
      break;
    }
    if (needs != NULL) return th_say(err, errlen, "op %u (%s): needs a %s op before it", i, nm, needs);
    if (first[c] < 0) first[c] = i;
  }
  if (p->ops[p->n - 1].code != TH_OP_EXEC)
    return th_say(err, errlen, "the last op is %s; a plan must end with exec", th_op_names[p->ops[p->n - 1].code]);
  /* Offsets only mean something for a time namespace the plan creates. */
  if (first[TH_OP_TIME_OFFSETS] >= 0 && !(th_plan_create_flags(p) & CLONE_NEWTIME))
    return th_say(err, errlen, "op %ld (time-offsets): needs a new time namespace", first[TH_OP_TIME_OFFSETS]);
  /*
   * Without a mount namespace the container shares the runtime's: pivot_root or a move of the
   * rootfs would change the runtime's own root, and propagation or read-only changes would
   * change its mounts. Such a plan chroots, and holds none of those; with a mount namespace it
   * never merely chroots.
   */
  if (first[TH_OP_ROOTFS] >= 0 && first[TH_OP_PIVOT] < 0 && !has_mount_ns)
    return th_say(err, errlen, "op %ld (rootfs): needs a mount namespace op", first[TH_OP_ROOTFS]);
  if (first[TH_OP_PIVOT] >= 0) {
    long pv = first[TH_OP_PIVOT];
    int chroot_only = p->ops[pv].f[TH_PIVOT_MODE].u32 == TH_PIVOT_CHROOT;
    if (has_mount_ns && chroot_only)
      return th_say(err, errlen, "op %ld (pivot): mode chroot is for a plan without a mount namespace op", pv);
    if (!has_mount_ns && !chroot_only)
      return th_say(err, errlen, "op %ld (pivot): without a mount namespace op only mode chroot is allowed", pv);
    if (!has_mount_ns && p->ops[first[TH_OP_ROOTFS]].f[TH_ROOTFS_PROPAGATION].u64 != 0)
      return th_say(err, errlen, "op %ld (rootfs): a propagation needs a mount namespace op", first[TH_OP_ROOTFS]);
    static const unsigned own_ns_only[] = {TH_OP_MASK_PATH, TH_OP_READONLY_PATH, TH_OP_ROOT_READONLY};
    for (size_t k = 0; !has_mount_ns && k < sizeof own_ns_only / sizeof own_ns_only[0]; k++)
      if (first[own_ns_only[k]] >= 0)
        return th_say(err, errlen, "op %ld (%s): needs a mount namespace op", first[own_ns_only[k]],
                      th_op_names[own_ns_only[k]]);
  }
  return 0;
}

void th_plan_free(struct th_plan *p) {
  if (p->ops != NULL) {
    for (uint32_t i = 0; i < p->n; i++) {
      struct th_op *op = &p->ops[i];
      if (op->code > TH_OP_MAX) continue;
      for (unsigned k = 0; k < op->nfields; k++) {
        unsigned kind = th_op_fields[op->code][k];
        if (kind == TH_F_STRLIST) free(op->f[k].list);
        if (kind == TH_F_U32LIST) free(op->f[k].u32s);
      }
    }
    free(p->ops);
  }
  p->ops = NULL;
  p->n = 0;
}

int th_plan_decode(const uint8_t *buf, size_t len, struct th_plan *out, char *err, size_t errlen) {
  char why[256];
  int rc;
  out->ops = NULL;
  out->n = 0;
  if (err != NULL && errlen > 0) err[0] = '\0';

  if (buf == NULL || len < TH_PLAN_HEADER_BYTES)
    return th_say(err, errlen, "plan is %zu bytes, shorter than its %u-byte header", buf ? len : 0,
                  TH_PLAN_HEADER_BYTES);
  if (len > TH_PLAN_MAX_BYTES)
    return th_say(err, errlen, "plan is %zu bytes, over the %u-byte limit", len, TH_PLAN_MAX_BYTES);
  uint32_t magic = th_rd32(buf), version = th_rd32(buf + 4), count = th_rd32(buf + 8), total = th_rd32(buf + 12);
  if (magic != TH_PLAN_MAGIC)
    return th_say(err, errlen, "bad magic 0x%08x, want 0x%08x (\"TSPL\")", magic, TH_PLAN_MAGIC);
  if (version != TH_PLAN_VERSION)
    return th_say(err, errlen, "plan version %u, but this helper reads version %u", version, TH_PLAN_VERSION);
  if (total != len) return th_say(err, errlen, "header says the plan is %u bytes, but it is %zu", total, len);
  if (count == 0) return th_say(err, errlen, "plan has no ops");
  if (count > TH_PLAN_MAX_OPS)
    return th_say(err, errlen, "op_count %u is over the limit of %u", count, TH_PLAN_MAX_OPS);
  if (count > (len - TH_PLAN_HEADER_BYTES) / TH_OP_HEADER_BYTES)
    return th_say(err, errlen, "op_count %u is more than %zu bytes can hold", count, len);

  out->ops = calloc(count, sizeof out->ops[0]);
  if (out->ops == NULL) return th_say(err, errlen, "out of memory for %u ops", count), -ENOMEM;
  out->n = count;

  size_t off = TH_PLAN_HEADER_BYTES;
  for (uint32_t i = 0; i < count; i++) {
    struct th_op *op = &out->ops[i];
    op->index = i;
    if (len - off < TH_OP_HEADER_BYTES) {
      rc = th_say(err, errlen, "op %u: header runs past the end of the plan", i);
      goto fail;
    }
    uint16_t code = th_rd16(buf + off), reserved = th_rd16(buf + off + 2);
    uint32_t plen = th_rd32(buf + off + 4);
    if (code > TH_OP_MAX || !th_op_known[code]) {
      op->code = 0; /* nothing allocated; keeps th_plan_free off unknown tables */
      rc = th_say(err, errlen, "op %u: unknown op code %u", i, code);
      goto fail;
    }
    op->code = code;
    const char *nm = th_op_names[code];
    if (reserved != 0) {
      rc = th_say(err, errlen, "op %u (%s): reserved field is %u, must be 0", i, nm, reserved);
      goto fail;
    }
    if (plen > len - off - TH_OP_HEADER_BYTES) {
      rc = th_say(err, errlen, "op %u (%s): payload of %u bytes runs past the end of the plan", i, nm, plen);
      goto fail;
    }
    struct th_cursor cur = {buf + off + TH_OP_HEADER_BYTES, plen};
    for (unsigned k = 0; k < TH_OP_MAX_FIELDS && th_op_fields[code][k] != 0; k++) {
      op->nfields = (uint16_t)(k + 1);
      rc = th_take_field(&cur, th_op_fields[code][k], &op->f[k], why, sizeof why);
      if (rc < 0) {
        const char *fname = th_plan_field_name(code, k);
        if (fname != NULL)
          th_say(err, errlen, "op %u (%s): field %s: %s", i, nm, fname, why);
        else
          th_say(err, errlen, "op %u (%s): field #%u: %s", i, nm, k, why);
        goto fail;
      }
    }
    if (cur.left != 0) {
      rc = th_say(err, errlen, "op %u (%s): %zu bytes left over after the last field", i, nm, cur.left);
      goto fail;
    }
    if (th_check_op(op, why, sizeof why) < 0) {
      rc = th_say(err, errlen, "op %u (%s): %s", i, nm, why);
      goto fail;
    }
    off += TH_OP_HEADER_BYTES + plen;
  }
  if (off != len) {
    rc = th_say(err, errlen, "%zu bytes after the last of the %u ops", len - off, count);
    goto fail;
  }
  rc = th_check_order(out, err, errlen);
  if (rc < 0) goto fail;
  return 0;

fail:
  th_plan_free(out);
  return rc;
}

uint64_t th_plan_create_flags(const struct th_plan *p) {
  uint64_t flags = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (p->ops[i].code == TH_OP_NAMESPACE && p->ops[i].f[TH_NAMESPACE_PATH].len == 0)
      flags |= p->ops[i].f[TH_NAMESPACE_NSTYPE].u32;
  return flags;
}

int th_plan_needs_second_fork(const struct th_plan *p) {
  for (uint32_t i = 0; i < p->n; i++) {
    const struct th_op *op = &p->ops[i];
    if (op->code != TH_OP_NAMESPACE) continue;
    uint32_t t = op->f[TH_NAMESPACE_NSTYPE].u32;
    int join = op->f[TH_NAMESPACE_PATH].len != 0;
    if ((t == CLONE_NEWPID && join) || (t == CLONE_NEWTIME && !join)) return 1;
  }
  return 0;
}

const struct th_op *th_plan_find(const struct th_plan *p, unsigned code) {
  for (uint32_t i = 0; i < p->n; i++)
    if (p->ops[i].code == code) return &p->ops[i];
  return NULL;
}
