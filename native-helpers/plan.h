/*
 * The decoded plan. th_plan_decode checks the whole wire format that runtime/plan/ops.ts draws
 * (bounds, op codes, field kinds, terminators, ordering rules) before anything is cloned, so
 * the child never meets a malformed op. The decoder is driven by th_op_fields from the
 * generated plan_ops.h: a new op in ops.ts needs no decoder change.
 *
 * Strings point INTO the caller's plan buffer (the decoder checked their NUL); string lists
 * and u32 lists are arrays allocated here (u32 lists are copied because the wire data is
 * unaligned). Everything allocated is released by th_plan_free.
 */
#ifndef TSRUN_PLAN_H
#define TSRUN_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "plan_ops.h"

#pragma GCC visibility push(hidden)

#define TH_PLAN_HEADER_BYTES 16u
#define TH_OP_HEADER_BYTES 8u
/* More ops than any real container needs; bounds the memory a hostile plan can make us use. */
#define TH_PLAN_MAX_OPS 65536u
/* BPF_MAXINSNS: the kernel refuses longer classic BPF programs. */
#define TH_SECCOMP_MAX_INSNS 4096u
/* Largest CLOSE_FDS.preserve accepted (fds 3..3+preserve-1 stay open). */
#define TH_MAX_PRESERVE_FDS 1048576u
/* NGROUPS_MAX on Linux. */
#define TH_MAX_GROUPS 65536u

/** One decoded field; which members are meaningful depends on the field's kind. */
struct th_field {
  uint64_t u64; /* TH_F_U64, and TH_F_U32 widened */
  uint32_t u32; /* TH_F_U32 */
  uint32_t len; /* TH_F_STR and TH_F_BYTES: length; TH_F_STRLIST and TH_F_U32LIST: count */
  union {
    const char *s;        /* TH_F_STR: NUL-terminated, inside the plan buffer */
    char **list;          /* TH_F_STRLIST: NULL-terminated array (allocated), items in the plan */
    uint32_t *u32s;       /* TH_F_U32LIST: copied array (allocated) */
    const uint8_t *bytes; /* TH_F_BYTES: inside the plan buffer */
  };
};

/** One decoded op: its code, its position in the plan, and its fields in wire order. */
struct th_op {
  uint16_t code;
  uint16_t nfields;
  uint32_t index;
  struct th_field f[TH_OP_MAX_FIELDS];
};

/** A decoded, checked plan. */
struct th_plan {
  struct th_op *ops;
  uint32_t n;
};

/** Decode and check buf; 0, or -EINVAL/-ENOMEM with a message in err ("op 3 (mount): field ..."). */
int th_plan_decode(const uint8_t *buf, size_t len, struct th_plan *out, char *err, size_t errlen);

/** Release what th_plan_decode allocated; safe on a zeroed or already freed plan. */
void th_plan_free(struct th_plan *p);

/** The wire name of field index of op code ("destination"), or NULL if there is none. */
const char *th_plan_field_name(unsigned code, unsigned index);

/** The /proc/<pid>/ns name of one CLONE_NEW* flag ("net"), or NULL. */
const char *th_plan_ns_name(uint32_t flag);

/** The CLONE_NEW* flags of every namespace the plan creates (NAMESPACE ops with path ""). */
uint64_t th_plan_create_flags(const struct th_plan *p);

/**
 * Whether init must be a grandchild: joining a pid namespace and creating a time namespace
 * only take effect for children of the caller (setns(2), unshare(2)).
 */
int th_plan_needs_second_fork(const struct th_plan *p);

/** The first op with this code, or NULL. */
const struct th_op *th_plan_find(const struct th_plan *p, unsigned code);

#pragma GCC visibility pop

#endif
