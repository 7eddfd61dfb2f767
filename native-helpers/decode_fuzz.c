/*
 * libFuzzer target for the plan decoder. Build with clang (docs/native-helper.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -o build/decode_fuzz native-helpers/decode_fuzz.c native-helpers/plan.c
 * A plan that decodes must satisfy the invariants the child relies on; anything else must be
 * rejected with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct th_plan plan;
  char err[256];
  if (th_plan_decode(data, size, &plan, err, sizeof err) != 0) {
    if (err[0] == '\0') abort(); /* every rejection says why */
    return 0;
  }
  if (plan.n == 0 || plan.ops[plan.n - 1].code != TH_OP_EXEC) abort();
  for (uint32_t i = 0; i < plan.n; i++) {
    const struct th_op *op = &plan.ops[i];
    for (unsigned k = 0; k < op->nfields; k++) {
      const struct th_field *f = &op->f[k];
      switch (th_op_fields[op->code][k]) {
      case TH_F_STR:
        if (strlen(f->s) != f->len) abort();
        break;
      case TH_F_STRLIST:
        for (uint32_t j = 0; j < f->len; j++) (void)strlen(f->list[j]);
        if (f->list[f->len] != NULL) abort();
        break;
      case TH_F_BYTES:
        if (f->len > 0 && (f->bytes < data || f->bytes + f->len > data + size)) abort();
        break;
      default:
        break;
      }
    }
  }
  th_plan_free(&plan);
  return 0;
}
