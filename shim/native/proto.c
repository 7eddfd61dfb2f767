/* The control protocol's decoder and encoder (proto.h). Nothing here allocates or prints. */
#include <stdio.h>
#include <string.h>

#include "proto.h"

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int fail(char *err, size_t errlen, const char *what, size_t at) {
  if (errlen > 0) snprintf(err, errlen, "control frame: %s at byte %zu", what, at);
  return -1;
}

/* The width of an integer tag, 0 for strings. */
static size_t int_width(uint8_t tag) {
  switch (tag) {
  case TSH_T_TERMINAL:
  case TSH_T_LOG_FILES:
  case TSH_T_SIGNAL:
  case TSH_T_WIDTH:
  case TSH_T_HEIGHT:
  case TSH_T_PID:
  case TSH_T_FDS:
    return 4;
  case TSH_T_LOG_MAX:
    return 8;
  default:
    return 0;
  }
}

static const char **str_slot(struct tsh_msg *m, uint8_t tag) {
  switch (tag) {
  case TSH_T_NAME:
    return &m->name;
  case TSH_T_PIDFILE:
    return &m->pidfile;
  case TSH_T_STDIN:
    return &m->stdin_path;
  case TSH_T_STDOUT:
    return &m->stdout_path;
  case TSH_T_STDERR:
    return &m->stderr_path;
  case TSH_T_CONSOLE:
    return &m->console;
  case TSH_T_LOG_PATH:
    return &m->log_path;
  case TSH_T_PLAN:
    return &m->plan;
  case TSH_T_DIR:
    return &m->dir;
  default:
    return NULL;
  }
}

int tsh_decode(const uint8_t *body, size_t len, struct tsh_msg *m, char *err, size_t errlen) {
  size_t pos = 6, used = 0;
  uint32_t seen = 0;
  memset(m, 0, offsetof(struct tsh_msg, arena));
  m->arena[0] = '\0';
  used = 1;
  m->name = m->pidfile = m->stdin_path = m->stdout_path = m->stderr_path = m->console = m->log_path = m->plan = m->dir =
      m->arena;
  if (err && errlen > 0) err[0] = '\0';
  if (len > TSH_MAX_FRAME) return fail(err, errlen, "longer than the limit", 0);
  if (len < 6) return fail(err, errlen, "shorter than its header", 0);
  m->id = be32(body);
  m->kind = body[4];
  m->type = body[5];
  if (m->kind != TSH_REQUEST) return fail(err, errlen, "not a request", 4);
  if (m->type < TSH_HELLO || m->type > TSH_OOM_WATCH) return fail(err, errlen, "unknown request type", 5);
  while (pos < len) {
    if (len - pos < 3) return fail(err, errlen, "truncated field header", pos);
    uint8_t tag = body[pos];
    size_t n = (size_t)body[pos + 1] << 8 | body[pos + 2];
    const uint8_t *v = body + pos + 3;
    if (n > len - pos - 3) return fail(err, errlen, "field runs past the frame", pos);
    if (tag == 0 || tag > TSH_T_DIR) return fail(err, errlen, "unknown field tag", pos);
    if (tag != TSH_T_ARG) {
      if (seen & (1u << tag)) return fail(err, errlen, "field given twice", pos);
      seen |= 1u << tag;
    }
    size_t w = int_width(tag);
    if (w > 0) {
      if (n != w) return fail(err, errlen, "integer field of the wrong width", pos);
      uint64_t x = w == 4 ? be32(v) : (uint64_t)be32(v) << 32 | be32(v + 4);
      switch (tag) {
      case TSH_T_TERMINAL:
        m->terminal = (uint32_t)x;
        break;
      case TSH_T_LOG_FILES:
        m->log_files = (uint32_t)x;
        break;
      case TSH_T_SIGNAL:
        m->signal = (uint32_t)x;
        break;
      case TSH_T_WIDTH:
        m->width = (uint32_t)x;
        break;
      case TSH_T_HEIGHT:
        m->height = (uint32_t)x;
        break;
      case TSH_T_PID:
        m->pid = (uint32_t)x;
        break;
      case TSH_T_FDS:
        m->fds = (uint32_t)x;
        break;
      default:
        m->log_max = x;
        break;
      }
    } else {
      const char **slot = tag == TSH_T_ARG ? NULL : str_slot(m, tag);
      if (tag != TSH_T_ARG && slot == NULL) return fail(err, errlen, "field not allowed in a request", pos);
      if (memchr(v, '\0', n) != NULL) return fail(err, errlen, "string with a NUL byte", pos);
      if (used + n + 1 > sizeof m->arena) return fail(err, errlen, "strings exceed the frame", pos);
      char *s = m->arena + used;
      memcpy(s, v, n);
      s[n] = '\0';
      used += n + 1;
      if (tag == TSH_T_ARG) {
        if (m->argc >= TSH_MAX_ARGS) return fail(err, errlen, "too many args", pos);
        m->argv[m->argc++] = s;
      } else {
        *slot = s;
      }
    }
    pos += 3 + n;
  }
  m->argv[m->argc] = NULL;
  return 0;
}

void tsh_begin(struct tsh_out *o, uint32_t id, uint8_t kind, uint8_t type) {
  o->len = 4;
  o->overflow = 0;
  uint8_t h[6] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id, kind, type};
  memcpy(o->b + o->len, h, sizeof h);
  o->len += sizeof h;
}

void tsh_put_bytes(struct tsh_out *o, uint8_t tag, const uint8_t *p, size_t n) {
  if (n > 0xffff || o->len + 3 + n > sizeof o->b) {
    o->overflow = 1;
    return;
  }
  o->b[o->len] = tag;
  o->b[o->len + 1] = (uint8_t)(n >> 8);
  o->b[o->len + 2] = (uint8_t)n;
  if (n > 0) memcpy(o->b + o->len + 3, p, n);
  o->len += 3 + n;
}

void tsh_put_str(struct tsh_out *o, uint8_t tag, const char *s) {
  tsh_put_bytes(o, tag, (const uint8_t *)s, strlen(s));
}

void tsh_put_u32(struct tsh_out *o, uint8_t tag, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  tsh_put_bytes(o, tag, x, 4);
}

void tsh_put_u64(struct tsh_out *o, uint8_t tag, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (56 - 8 * i));
  tsh_put_bytes(o, tag, x, 8);
}

int tsh_finish(struct tsh_out *o) {
  if (o->overflow) return -1;
  uint32_t n = (uint32_t)(o->len - 4);
  o->b[0] = (uint8_t)(n >> 24);
  o->b[1] = (uint8_t)(n >> 16);
  o->b[2] = (uint8_t)(n >> 8);
  o->b[3] = (uint8_t)n;
  return 0;
}
