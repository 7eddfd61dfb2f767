/*
 * TAP test of the native shim's control-frame decoder and encoder (proto.c): hand-built frames,
 * valid and broken, truncation at every length, and deterministic mutations. `make test-native-shim`
 * builds and runs it (also part of `make test-unit`); exit status 1 on failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int tests, failed;
static struct tsh_msg m;
static struct tsh_out o;

static void ok(int cond, const char *fmt, ...) {
  va_list ap;
  tests++;
  if (!cond) failed++;
  printf("%s %d - ", cond ? "ok" : "not ok", tests);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

/* The body of o (without the length prefix). */
static const uint8_t *body(void) {
  return o.b + 4;
}
static size_t body_len(void) {
  return o.len - 4;
}

static int decode(char *err, size_t errlen) {
  return tsh_decode(body(), body_len(), &m, err, errlen);
}

static void spawn_frame(void) {
  tsh_begin(&o, 7, TSH_REQUEST, TSH_SPAWN);
  tsh_put_str(&o, TSH_T_NAME, "init");
  tsh_put_str(&o, TSH_T_ARG, "/usr/bin/runc");
  tsh_put_str(&o, TSH_T_ARG, "create");
  tsh_put_str(&o, TSH_T_ARG, "");
  tsh_put_str(&o, TSH_T_PIDFILE, "init.pid");
  tsh_put_str(&o, TSH_T_STDOUT, "file:///tmp/out");
  tsh_put_u32(&o, TSH_T_TERMINAL, 1);
  tsh_put_u64(&o, TSH_T_LOG_MAX, 0x100000002ull);
  tsh_put_u32(&o, TSH_T_LOG_FILES, 3);
  tsh_finish(&o);
}

static void plan_frame(void) {
  tsh_begin(&o, 9, TSH_REQUEST, TSH_SPAWN_PLAN);
  tsh_put_str(&o, TSH_T_NAME, "init");
  tsh_put_str(&o, TSH_T_PLAN, "plan-init.bin");
  tsh_put_u32(&o, TSH_T_FDS, 2);
  tsh_put_str(&o, TSH_T_STDIN, "/f/in");
  tsh_put_str(&o, TSH_T_STDOUT, "/f/out");
  tsh_put_str(&o, TSH_T_LOG_PATH, "/l/x-json.log");
  tsh_put_u64(&o, TSH_T_LOG_MAX, 1000);
  tsh_finish(&o);
}

/* `proto_test --seeds DIR`: write a few valid frame bodies to DIR for the fuzzer, then exit. */
static int write_seeds(const char *dir) {
  char path[4096];
  for (int i = 0; i < 6; i++) {
    if (i == 0) spawn_frame();
    if (i == 5) {
      tsh_begin(&o, 6, TSH_REQUEST, TSH_OOM_WATCH);
      tsh_put_str(&o, TSH_T_NAME, "init");
      tsh_put_str(&o, TSH_T_DIR, "/sys/fs/cgroup/memory/ns/c1");
      tsh_finish(&o);
    }
    if (i == 3) plan_frame();
    if (i == 4) {
      tsh_begin(&o, 4, TSH_REQUEST, TSH_ADOPT);
      tsh_put_str(&o, TSH_T_NAME, "init");
      tsh_put_u32(&o, TSH_T_PID, 4242);
      tsh_finish(&o);
    }
    if (i == 1) {
      tsh_begin(&o, 2, TSH_REQUEST, TSH_RESIZE);
      tsh_put_str(&o, TSH_T_NAME, "exec-1");
      tsh_put_u32(&o, TSH_T_WIDTH, 80);
      tsh_put_u32(&o, TSH_T_HEIGHT, 24);
      tsh_finish(&o);
    }
    if (i == 2) {
      tsh_begin(&o, 3, TSH_REQUEST, TSH_SIGNAL);
      tsh_put_str(&o, TSH_T_NAME, "init");
      tsh_put_u32(&o, TSH_T_SIGNAL, 9);
      tsh_finish(&o);
    }
    snprintf(path, sizeof path, "%s/seed-%d", dir, i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(body(), 1, body_len(), f) != body_len() || fclose(f) != 0) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  char err[160];
  if (argc == 3 && strcmp(argv[1], "--seeds") == 0) return write_seeds(argv[2]);
  printf("TAP version 14\n");

  spawn_frame();
  ok(o.b[0] == 0 && o.b[1] == 0 && ((size_t)o.b[2] << 8 | o.b[3]) == body_len(), "length prefix is the body length");
  ok(decode(err, sizeof err) == 0, "a spawn request decodes (%s)", err);
  ok(m.id == 7 && m.type == TSH_SPAWN, "id and type");
  ok(strcmp(m.name, "init") == 0 && strcmp(m.pidfile, "init.pid") == 0, "strings");
  ok(m.argc == 3 && strcmp(m.argv[0], "/usr/bin/runc") == 0 && strcmp(m.argv[2], "") == 0 && m.argv[3] == NULL,
     "argv in order, empty arg kept, NULL-terminated");
  ok(m.terminal == 1 && m.log_files == 3 && m.log_max == 0x100000002ull, "integers of both widths");
  ok(strcmp(m.stdin_path, "") == 0 && strcmp(m.console, "") == 0, "absent strings are empty");

  tsh_begin(&o, 1, TSH_REQUEST, TSH_HELLO);
  tsh_finish(&o);
  ok(decode(err, sizeof err) == 0 && m.type == TSH_HELLO, "a request without fields");

  tsh_begin(&o, 1, TSH_RESPONSE, TSH_HELLO);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "not a request"), "a response is refused: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, 99);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "unknown request type"), "unknown type: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, TSH_SIGNAL);
  tsh_put_str(&o, TSH_T_NAME, "a");
  tsh_put_str(&o, TSH_T_NAME, "b");
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "twice"), "a field twice: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, TSH_SIGNAL);
  tsh_put_bytes(&o, TSH_T_SIGNAL, (const uint8_t *)"\0\0\0", 3);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "wrong width"), "integer of the wrong width: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, TSH_SIGNAL);
  tsh_put_bytes(&o, TSH_T_NAME, (const uint8_t *)"a\0b", 3);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "NUL"), "string with NUL: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, TSH_SIGNAL);
  tsh_put_u32(&o, TSH_T_STATUS, 3);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "not allowed"), "an answer-only field: %s", err);

  plan_frame();
  ok(decode(err, sizeof err) == 0, "a spawn-plan request decodes (%s)", err);
  ok(m.type == TSH_SPAWN_PLAN && strcmp(m.plan, "plan-init.bin") == 0 && m.fds == 2 &&
         strcmp(m.stdout_path, "/f/out") == 0,
     "plan file, fd count and stdio");

  tsh_begin(&o, 5, TSH_REQUEST, TSH_ADOPT);
  tsh_put_str(&o, TSH_T_NAME, "init");
  tsh_put_u32(&o, TSH_T_PID, 4242);
  tsh_finish(&o);
  ok(decode(err, sizeof err) == 0 && m.type == TSH_ADOPT && m.pid == 4242, "an adopt request with its pid (%s)", err);

  tsh_begin(&o, 6, TSH_REQUEST, TSH_OOM_WATCH);
  tsh_put_str(&o, TSH_T_NAME, "init");
  tsh_put_str(&o, TSH_T_DIR, "/sys/fs/cgroup/memory/ns/c1");
  tsh_finish(&o);
  ok(decode(err, sizeof err) == 0 && m.type == TSH_OOM_WATCH && strcmp(m.dir, "/sys/fs/cgroup/memory/ns/c1") == 0 &&
         strcmp(m.name, "init") == 0,
     "an oom-watch request with its cgroup directory (%s)", err);

  tsh_begin(&o, 6, TSH_REQUEST, TSH_OOM_WATCH);
  tsh_put_str(&o, TSH_T_DIR, "/a");
  tsh_put_str(&o, TSH_T_DIR, "/b");
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "twice"), "the directory twice: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, TSH_EV_OOM);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "unknown request type"), "an event type as a request: %s", err);

  tsh_begin(&o, 5, TSH_REQUEST, TSH_ADOPT);
  tsh_put_bytes(&o, TSH_T_PID, (const uint8_t *)"\0\0\0\0\0\0\0\1", 8);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "wrong width"), "a pid is a u32: %s", err);

  tsh_begin(&o, 5, TSH_REQUEST, TSH_SPAWN_PLAN);
  tsh_put_u32(&o, TSH_T_FDS, 1);
  tsh_put_u32(&o, TSH_T_FDS, 1);
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "twice"), "the fd count twice: %s", err);

  /* mutations of a spawn-plan frame too */
  uint32_t pseed = 777;
  int pbad = 0;
  uint8_t pbuf[512];
  for (int round = 0; round < 100000; round++) {
    plan_frame();
    size_t n = body_len();
    memcpy(pbuf, body(), n);
    for (int k = 0; k < 3; k++) {
      pseed = pseed * 1103515245u + 12345u;
      pbuf[(pseed >> 8) % n] = (uint8_t)(pseed >> 16);
    }
    err[0] = '\0';
    if (tsh_decode(pbuf, n, &m, err, sizeof err) != 0 && err[0] == '\0') pbad++;
  }
  ok(pbad == 0, "100000 mutated spawn-plan frames: every rejection says why");

  tsh_begin(&o, 1, TSH_REQUEST, TSH_SIGNAL);
  tsh_put_str(&o, 200, "x");
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "unknown field"), "unknown tag: %s", err);

  tsh_begin(&o, 1, TSH_REQUEST, TSH_SPAWN);
  for (unsigned i = 0; i <= TSH_MAX_ARGS; i++) tsh_put_str(&o, TSH_T_ARG, "x");
  tsh_finish(&o);
  ok(decode(err, sizeof err) != 0 && strstr(err, "too many args"), "more than %u args: %s", TSH_MAX_ARGS, err);

  ok(tsh_decode(body(), TSH_MAX_FRAME + 1, &m, err, sizeof err) != 0 && strstr(err, "limit"), "over the limit: %s",
     err);

  /* every truncation of a valid frame: refused with a message, or (at a field boundary) decoded */
  spawn_frame();
  int bad = 0;
  for (size_t n = 0; n < body_len(); n++) {
    err[0] = '\0';
    int rc = tsh_decode(body(), n, &m, err, sizeof err);
    if (rc != 0 && err[0] == '\0') bad++;
    if (rc == 0 && (n < 6 || m.argv[m.argc] != NULL)) bad++;
  }
  ok(bad == 0, "truncations at every length (%zu) are refused with a message or decode whole fields", body_len());

  /* deterministic mutations: never a crash, every rejection with a message */
  uint32_t seed = 12345;
  bad = 0;
  uint8_t buf[512];
  for (int round = 0; round < 200000; round++) {
    spawn_frame();
    size_t n = body_len();
    memcpy(buf, body(), n);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1103515245u + 12345u;
      buf[(seed >> 8) % n] = (uint8_t)(seed >> 16);
    }
    err[0] = '\0';
    if (tsh_decode(buf, n, &m, err, sizeof err) != 0 && err[0] == '\0') bad++;
  }
  ok(bad == 0, "200000 mutated frames: every rejection says why");

  tsh_begin(&o, 1, TSH_RESPONSE, TSH_STATE);
  static uint8_t big[70000];
  tsh_put_bytes(&o, TSH_T_ERROR, big, sizeof big);
  ok(tsh_finish(&o) != 0, "the encoder refuses a field over 64 KiB");

  printf("1..%d\n", tests);
  return failed ? 1 : 0;
}
