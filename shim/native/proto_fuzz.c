/*
 * libFuzzer target for the native shim's control-frame decoder (proto.c); `make fuzz-shim` runs it.
 * A frame that decodes must satisfy what the shim relies on: NUL-terminated strings inside the
 * arena, a NULL-terminated argv of argc entries; every rejection must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void in_arena(const struct tsh_msg *m, const char *s) {
  if (s < m->arena || s >= m->arena + sizeof m->arena) abort();
  if (strlen(s) >= (size_t)(m->arena + sizeof m->arena - s)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct tsh_msg m;
  char err[160];
  if (tsh_decode(data, size, &m, err, sizeof err) != 0) {
    if (err[0] == '\0') abort();
    return 0;
  }
  if (m.kind != TSH_REQUEST || m.type < TSH_HELLO || m.type > TSH_OOM_WATCH) abort();
  const char *strs[] = {m.name,    m.pidfile,  m.stdin_path, m.stdout_path, m.stderr_path,
                        m.console, m.log_path, m.plan,       m.dir};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) in_arena(&m, strs[i]);
  if (m.argc > TSH_MAX_ARGS || m.argv[m.argc] != NULL) abort();
  for (uint32_t i = 0; i < m.argc; i++) in_arena(&m, m.argv[i]);
  return 0;
}
