/*
 * build/tsrun.node: the C helper's exports (tsrun.h) as a Node-API addon, the one way the
 * runtime reaches the helper: runtime/native/index.ts loads it with process.dlopen, which costs
 * next to nothing, where an FFI library would have to be loaded and its signatures parsed first.
 *
 * One wrapper serves every export. addon_exports.h, generated from runtime/native/exports.ts,
 * lists each export's JS name, its argument kinds and a trampoline that calls the C function
 * with the fetched values; th_dispatch fetches and checks the arguments by kind, calls, and
 * returns the int result unchanged (-errno on failure). An export marked async also gets
 * `<name>Async`, which runs the call on a libuv pool thread.
 *
 * Numbers are int32/uint32, uint64_t is a BigInt (or a Number), buffers are any TypedArray (the
 * pointer is the view's first byte; lengths are checked against the view), strings are UTF-8
 * without NUL. A wrong argument throws a TypeError naming the function and the argument.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsrun.h"

/* How an argument crosses (runtime/native/exports.ts, ArgKind). */
enum th_kind { TH_A_I32 = 1, TH_A_U32, TH_A_U64, TH_A_STR, TH_A_IN, TH_A_OUT };

typedef struct {
  const char *name;
  enum th_kind kind;
  int len_arg;        /* TH_A_IN, TH_A_OUT: the index of the byte count argument, or -1 */
  uint32_t min_bytes; /* TH_A_OUT without len_arg: the size the function writes */
} th_arg;

typedef union {
  int32_t i32;
  uint32_t u32;
  uint64_t u64;
  const char *s;
  void *p;
} th_val;

typedef struct {
  const char *name;
  int (*call)(const th_val *v);
  size_t argc;
  const th_arg *args;
  int has_async;
} th_export;

#include "addon_exports.h"

#define TH_MAX_ARGS 8

/* One call's arguments: fetched, checked, and the copies that must be freed. */
typedef struct {
  napi_env env;
  const th_export *fn;
  size_t argc;
  napi_value argv[TH_MAX_ARGS + 1];
  th_val v[TH_MAX_ARGS];
  size_t have[TH_MAX_ARGS]; /* TH_A_IN, TH_A_OUT: the view's byte length */
  void *owned[TH_MAX_ARGS];
  const char *bad; /* the first wrong argument's name, or NULL */
} th_frame;

static size_t th_element_size(napi_typedarray_type type) {
  switch (type) {
  case napi_int16_array:
  case napi_uint16_array:
    return 2;
  case napi_int32_array:
  case napi_uint32_array:
  case napi_float32_array:
    return 4;
  case napi_float64_array:
  case napi_bigint64_array:
  case napi_biguint64_array:
    return 8;
  default:
    return 1;
  }
}

/* The bytes of a TypedArray argument (a Buffer is a Uint8Array); -1 when it is not one. */
static int th_view(napi_env env, napi_value value, void **data, size_t *bytes) {
  bool is = false;
  napi_typedarray_type type;
  size_t count = 0, offset = 0;
  napi_value ab;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return -1;
  if (napi_get_typedarray_info(env, value, &type, &count, data, &ab, &offset) != napi_ok) return -1;
  *bytes = count * th_element_size(type);
  return 0;
}

/* A NUL-terminated copy of a string argument; NULL when it is not a string or holds a NUL. */
static char *th_string(napi_env env, napi_value value) {
  size_t n = 0;
  napi_valuetype t = napi_undefined;
  if (napi_typeof(env, value, &t) != napi_ok || t != napi_string) return NULL;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (s == NULL || napi_get_value_string_utf8(env, value, s, n + 1, &n) != napi_ok || strlen(s) != n) {
    free(s);
    return NULL;
  }
  return s;
}

static uint64_t th_uint64(napi_env env, napi_value value, int *ok) {
  napi_valuetype t = napi_undefined;
  if (napi_typeof(env, value, &t) != napi_ok) return *ok = 0, 0;
  if (t == napi_bigint) {
    uint64_t v = 0;
    bool lossless = true;
    if (napi_get_value_bigint_uint64(env, value, &v, &lossless) != napi_ok) *ok = 0;
    return v;
  }
  int64_t v = 0;
  if (t != napi_number || napi_get_value_int64(env, value, &v) != napi_ok) *ok = 0;
  return (uint64_t)v;
}

/* Fetch fn's arguments (and `extra` more, left in argv) by kind, then check the buffers' lengths. */
static void th_fetch(napi_env env, napi_callback_info info, th_frame *f, size_t extra) {
  void *data = NULL;
  memset(f, 0, sizeof *f);
  f->env = env;
  f->argc = TH_MAX_ARGS + 1;
  if (napi_get_cb_info(env, info, &f->argc, f->argv, NULL, &data) != napi_ok || data == NULL) {
    f->bad = "(call)";
    return;
  }
  f->fn = data;
  if (f->argc < f->fn->argc + extra) {
    f->bad = "(too few arguments)";
    return;
  }
  for (size_t i = 0; i < f->fn->argc && f->bad == NULL; i++) {
    const th_arg *a = &f->fn->args[i];
    int ok = 1;
    switch (a->kind) {
    case TH_A_I32:
      ok = napi_get_value_int32(env, f->argv[i], &f->v[i].i32) == napi_ok;
      break;
    case TH_A_U32:
      ok = napi_get_value_uint32(env, f->argv[i], &f->v[i].u32) == napi_ok;
      break;
    case TH_A_U64:
      f->v[i].u64 = th_uint64(env, f->argv[i], &ok);
      break;
    case TH_A_STR:
      f->owned[i] = th_string(env, f->argv[i]);
      f->v[i].s = f->owned[i];
      ok = f->owned[i] != NULL;
      break;
    case TH_A_IN:
    case TH_A_OUT:
      ok = th_view(env, f->argv[i], &f->v[i].p, &f->have[i]) == 0;
      break;
    }
    if (!ok) f->bad = a->name;
  }
  for (size_t i = 0; i < f->fn->argc && f->bad == NULL; i++) {
    const th_arg *a = &f->fn->args[i];
    if (a->kind != TH_A_IN && a->kind != TH_A_OUT) continue;
    size_t need = a->len_arg >= 0 ? f->v[a->len_arg].u32 : a->min_bytes;
    if (f->have[i] < need) f->bad = a->name;
  }
}

static void th_release(th_frame *f) {
  for (size_t i = 0; i < TH_MAX_ARGS; i++) {
    free(f->owned[i]);
    f->owned[i] = NULL;
  }
}

/* A TypeError "tsrun.node: <fn>: wrong argument <arg>". */
static void th_throw_bad(th_frame *f) {
  char msg[160];
  snprintf(msg, sizeof msg, "tsrun.node: %s: wrong argument %s", f->fn != NULL ? f->fn->name : "?", f->bad);
  napi_throw_type_error(f->env, NULL, msg);
}

static napi_value th_dispatch(napi_env env, napi_callback_info info) {
  th_frame f;
  th_fetch(env, info, &f, 0);
  if (f.bad != NULL) {
    th_release(&f);
    th_throw_bad(&f);
    return NULL;
  }
  int rc = f.fn->call(f.v);
  th_release(&f);
  napi_value v;
  napi_create_int32(env, rc, &v);
  return v;
}

/*
 * <name>Async: the call on a libuv pool thread. The pool thread must not touch JS memory, so every
 * buffer argument is copied (owned) first, and the out buffers are copied back into the caller's
 * views (held by references until then) on the main thread before done(null, rc) is called.
 */
typedef struct {
  napi_async_work work;
  th_frame f;
  napi_ref views[TH_MAX_ARGS];
  napi_ref done;
  int rc;
} th_job;

static void th_job_execute(napi_env env, void *data) {
  (void)env;
  th_job *j = data;
  j->rc = j->f.fn->call(j->f.v);
}

static void th_job_free(napi_env env, th_job *j) {
  for (size_t i = 0; i < TH_MAX_ARGS; i++)
    if (j->views[i] != NULL) napi_delete_reference(env, j->views[i]);
  if (j->done != NULL) napi_delete_reference(env, j->done);
  if (j->work != NULL) napi_delete_async_work(env, j->work);
  th_release(&j->f);
  free(j);
}

static void th_job_complete(napi_env env, napi_status status, void *data) {
  th_job *j = data;
  napi_value done, global, args[2];
  for (size_t i = 0; i < j->f.fn->argc; i++) {
    napi_value view;
    void *p = NULL;
    size_t bytes = 0;
    if (j->f.fn->args[i].kind != TH_A_OUT || status != napi_ok) continue;
    if (napi_get_reference_value(env, j->views[i], &view) == napi_ok && th_view(env, view, &p, &bytes) == 0)
      memcpy(p, j->f.v[i].p, bytes < j->f.have[i] ? bytes : j->f.have[i]);
  }
  napi_get_reference_value(env, j->done, &done);
  napi_get_global(env, &global);
  if (status == napi_ok) {
    napi_get_null(env, &args[0]);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, "tsrun.node: async call cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &args[0]);
  }
  napi_create_int32(env, j->rc, &args[1]);
  th_job_free(env, j);
  napi_call_function(env, global, done, 2, args, NULL);
}

static napi_value th_dispatch_async(napi_env env, napi_callback_info info) {
  th_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, NULL, "tsrun.node: out of memory");
    return NULL;
  }
  th_fetch(env, info, &j->f, 1);
  napi_valuetype t = napi_undefined;
  if (j->f.bad == NULL && (napi_typeof(env, j->f.argv[j->f.fn->argc], &t) != napi_ok || t != napi_function))
    j->f.bad = "done";
  if (j->f.bad != NULL) {
    th_throw_bad(&j->f);
    th_job_free(env, j);
    return NULL;
  }
  int ok = napi_create_reference(env, j->f.argv[j->f.fn->argc], 1, &j->done) == napi_ok;
  for (size_t i = 0; i < j->f.fn->argc && ok; i++) {
    enum th_kind k = j->f.fn->args[i].kind;
    if (k != TH_A_IN && k != TH_A_OUT) continue;
    void *copy = malloc(j->f.have[i] > 0 ? j->f.have[i] : 1);
    if (copy == NULL) {
      ok = 0;
      break;
    }
    if (j->f.have[i] > 0) memcpy(copy, j->f.v[i].p, j->f.have[i]);
    j->f.owned[i] = copy;
    j->f.v[i].p = copy;
    if (k == TH_A_OUT) ok = napi_create_reference(env, j->f.argv[i], 1, &j->views[i]) == napi_ok;
  }
  napi_value name;
  ok = ok && napi_create_string_utf8(env, j->f.fn->name, NAPI_AUTO_LENGTH, &name) == napi_ok &&
       napi_create_async_work(env, NULL, name, th_job_execute, th_job_complete, j, &j->work) == napi_ok &&
       napi_queue_async_work(env, j->work) == napi_ok;
  if (!ok) {
    th_job_free(env, j);
    napi_throw_error(env, NULL, "tsrun.node: cannot queue the call");
    return NULL;
  }
  return NULL;
}

static int th_define(napi_env env, napi_value exports, const char *name, napi_callback cb, const th_export *e) {
  napi_value f;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, (void *)e, &f) == napi_ok &&
         napi_set_named_property(env, exports, name, f) == napi_ok;
}

NAPI_MODULE_INIT() {
  for (size_t i = 0; i < TH_N_EXPORTS; i++) {
    const th_export *e = &th_exports[i];
    char async_name[64];
    if (!th_define(env, exports, e->name, th_dispatch, e)) return NULL;
    if (!e->has_async) continue;
    snprintf(async_name, sizeof async_name, "%sAsync", e->name);
    if (!th_define(env, exports, async_name, th_dispatch_async, e)) return NULL;
  }
  return exports;
}
