/*
 * A tiny string builder for the child, which may not call snprintf (stdio takes locks and may
 * allocate; see signal-safety(7)). Every function truncates silently and keeps the buffer
 * NUL-terminated, so a message that does not fit is cut short rather than lost.
 */
#ifndef TSRUN_FMT_H
#define TSRUN_FMT_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/** A fixed-capacity, always NUL-terminated text buffer. */
struct th_buf {
  char *p;
  size_t cap; /* bytes at p, including room for the NUL */
  size_t len; /* bytes used, excluding the NUL */
};

/** Room for any 64-bit number in decimal (with sign) or hex (with 0x), plus the NUL. */
#define TH_NUM_BYTES 24

void th_buf_init(struct th_buf *b, char *mem, size_t cap);
void th_buf_mem(struct th_buf *b, const char *s, size_t n);
void th_buf_str(struct th_buf *b, const char *s);
void th_buf_u64(struct th_buf *b, uint64_t v);
void th_buf_i64(struct th_buf *b, int64_t v);
void th_buf_hex(struct th_buf *b, uint64_t v);

/* Format one number into out[TH_NUM_BYTES] and return out, so numbers can join string lists. */
const char *th_u64s(char *out, uint64_t v);
const char *th_i64s(char *out, int64_t v);
const char *th_hexs(char *out, uint64_t v);

size_t th_strlen(const char *s);

#pragma GCC visibility pop

#endif
