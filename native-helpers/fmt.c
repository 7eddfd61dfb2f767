/*
 * String building without stdio, safe between clone and exec (see fmt.h).
 */
#include "fmt.h"

void th_buf_init(struct th_buf *b, char *mem, size_t cap) {
  b->p = mem;
  b->cap = cap;
  b->len = 0;
  if (cap > 0) mem[0] = '\0';
}

void th_buf_mem(struct th_buf *b, const char *s, size_t n) {
  if (b->cap == 0) return;
  size_t room = b->cap - 1 - b->len;
  if (n > room) n = room;
  for (size_t i = 0; i < n; i++) b->p[b->len + i] = s[i];
  b->len += n;
  b->p[b->len] = '\0';
}

size_t th_strlen(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  return n;
}

void th_buf_str(struct th_buf *b, const char *s) {
  th_buf_mem(b, s, th_strlen(s));
}

const char *th_u64s(char *out, uint64_t v) {
  char tmp[TH_NUM_BYTES];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
  return out;
}

const char *th_i64s(char *out, int64_t v) {
  if (v >= 0) return th_u64s(out, (uint64_t)v);
  out[0] = '-';
  /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
  th_u64s(out + 1, (uint64_t)0 - (uint64_t)v);
  return out;
}

const char *th_hexs(char *out, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[TH_NUM_BYTES];
  size_t n = 0;
  do {
    tmp[n++] = digits[v & 0xf];
    v >>= 4;
  } while (v != 0);
  out[0] = '0';
  out[1] = 'x';
  for (size_t i = 0; i < n; i++) out[2 + i] = tmp[n - 1 - i];
  out[2 + n] = '\0';
  return out;
}

void th_buf_u64(struct th_buf *b, uint64_t v) {
  char n[TH_NUM_BYTES];
  th_buf_str(b, th_u64s(n, v));
}

void th_buf_i64(struct th_buf *b, int64_t v) {
  char n[TH_NUM_BYTES];
  th_buf_str(b, th_i64s(n, v));
}

void th_buf_hex(struct th_buf *b, uint64_t v) {
  char n[TH_NUM_BYTES];
  th_buf_str(b, th_hexs(n, v));
}
