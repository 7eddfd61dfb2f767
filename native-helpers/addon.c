/*
 * build/tsrun.node: libtsrun.so's exported API as a Node-API addon, so the CLI reaches the C
 * helper without loading koffi (25-40 ms of every start, kill, delete and create). The addon is
 * built from the same sources as libtsrun.so plus this file; runtime/native/index.ts loads it
 * with process.dlopen and falls back to koffi + libtsrun.so when it is missing (no Node-API
 * headers at build time) or fails to load.
 *
 * Every function takes the arguments of the koffi binding of the same C function (see
 * runtime/native/index.ts), so the TypeScript side is one interface with two backends:
 *
 *   JS                                   C
 *   spawn(plan, len, out, err, errlen)   tsrun_spawn
 *   flock(fd, op)                        tsrun_flock
 *   waitpidAsync(pid, status, opts, cb)  tsrun_waitpid on a libuv pool thread; cb(null, rc)
 *   …                                    …
 *
 * Numbers are int32/uint32 (prctl's arguments: BigInt or Number), buffers are any TypedArray
 * (Buffer, Int32Array; the pointer is the view's first byte), strings are UTF-8 and NUL-free.
 * A wrong argument throws a TypeError; the C functions' results come back unchanged (-errno).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsrun.h"

/* Defined in bpf.c, which declares it there (its only other user is koffi). */
TSRUN_EXPORT int tsrun_bpf_prog_load_attach(int cgroup_fd, const uint8_t *insns, uint32_t len, char *log,
                                            uint32_t loglen);

#define TH_MAX_ARGS 8

/* The arguments of one call, fetched and checked together; `bad` names the first wrong one. */
typedef struct {
  napi_env env;
  size_t argc;
  napi_value argv[TH_MAX_ARGS];
  const char *fn;
  int bad;
  char *owned[4];
  int n_owned;
} th_args;

static int th_args_get(napi_env env, napi_callback_info info, th_args *a, const char *fn, size_t want) {
  memset(a, 0, sizeof *a);
  a->env = env;
  a->fn = fn;
  a->argc = TH_MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok || a->argc < want) {
    a->bad = 1;
    return -1;
  }
  return 0;
}

static int32_t th_i32(th_args *a, size_t i) {
  int32_t v = 0;
  if (i >= a->argc || napi_get_value_int32(a->env, a->argv[i], &v) != napi_ok) a->bad = 1;
  return v;
}

static uint32_t th_u32(th_args *a, size_t i) {
  uint32_t v = 0;
  if (i >= a->argc || napi_get_value_uint32(a->env, a->argv[i], &v) != napi_ok) a->bad = 1;
  return v;
}

static uint64_t th_u64(th_args *a, size_t i) {
  napi_valuetype t = napi_undefined;
  if (i >= a->argc || napi_typeof(a->env, a->argv[i], &t) != napi_ok) {
    a->bad = 1;
    return 0;
  }
  if (t == napi_bigint) {
    uint64_t v = 0;
    bool lossless = true;
    if (napi_get_value_bigint_uint64(a->env, a->argv[i], &v, &lossless) != napi_ok) a->bad = 1;
    return v;
  }
  int64_t v = 0;
  if (napi_get_value_int64(a->env, a->argv[i], &v) != napi_ok) a->bad = 1;
  return (uint64_t)v;
}

/* The bytes of a TypedArray (a Buffer is a Uint8Array); NULL for null or undefined. */
static void *th_bytes(th_args *a, size_t i, size_t *len) {
  *len = 0;
  if (i >= a->argc) {
    a->bad = 1;
    return NULL;
  }
  napi_valuetype t = napi_undefined;
  if (napi_typeof(a->env, a->argv[i], &t) == napi_ok && (t == napi_null || t == napi_undefined)) return NULL;
  bool is = false;
  if (napi_is_typedarray(a->env, a->argv[i], &is) != napi_ok || !is) {
    a->bad = 1;
    return NULL;
  }
  napi_typedarray_type type;
  size_t count = 0, offset = 0;
  void *data = NULL;
  napi_value ab;
  if (napi_get_typedarray_info(a->env, a->argv[i], &type, &count, &data, &ab, &offset) != napi_ok) {
    a->bad = 1;
    return NULL;
  }
  size_t size = 1;
  switch (type) {
  case napi_int16_array:
  case napi_uint16_array:
    size = 2;
    break;
  case napi_int32_array:
  case napi_uint32_array:
  case napi_float32_array:
    size = 4;
    break;
  case napi_float64_array:
  case napi_bigint64_array:
  case napi_biguint64_array:
    size = 8;
    break;
  default:
    size = 1;
  }
  *len = count * size;
  return data;
}

/* A NUL-terminated copy of a string argument (freed by th_args_free); NULL for null or undefined. */
static char *th_str(th_args *a, size_t i) {
  napi_valuetype t = napi_undefined;
  if (i >= a->argc || napi_typeof(a->env, a->argv[i], &t) != napi_ok) {
    a->bad = 1;
    return NULL;
  }
  if (t == napi_null || t == napi_undefined) return NULL;
  size_t n = 0;
  if (t != napi_string || napi_get_value_string_utf8(a->env, a->argv[i], NULL, 0, &n) != napi_ok ||
      a->n_owned == (int)(sizeof a->owned / sizeof a->owned[0])) {
    a->bad = 1;
    return NULL;
  }
  char *s = malloc(n + 1);
  if (s == NULL || napi_get_value_string_utf8(a->env, a->argv[i], s, n + 1, &n) != napi_ok || strlen(s) != n) {
    free(s);
    a->bad = 1;
    return NULL;
  }
  a->owned[a->n_owned++] = s;
  return s;
}

static void th_args_free(th_args *a) {
  for (int i = 0; i < a->n_owned; i++) free(a->owned[i]);
  a->n_owned = 0;
}

/* The call's result, or a TypeError (and undefined) when an argument was wrong. */
static napi_value th_result(th_args *a, int rc) {
  th_args_free(a);
  if (a->bad) {
    char msg[128];
    strcpy(msg, "tsrun.node: ");
    strncat(msg, a->fn, sizeof msg - strlen(msg) - 40);
    strcat(msg, ": wrong arguments");
    napi_throw_type_error(a->env, NULL, msg);
    return NULL;
  }
  napi_value v;
  napi_create_int32(a->env, rc, &v);
  return v;
}

/* A buffer argument that must hold at least `need` bytes. */
static void *th_out(th_args *a, size_t i, size_t need) {
  size_t len = 0;
  void *p = th_bytes(a, i, &len);
  if (p == NULL || len < need) a->bad = 1;
  return a->bad ? NULL : p;
}

static napi_value th_abi_version(napi_env env, napi_callback_info info) {
  th_args a;
  th_args_get(env, info, &a, "abiVersion", 0);
  return th_result(&a, tsrun_abi_version());
}

static napi_value th_plan_version(napi_env env, napi_callback_info info) {
  th_args a;
  th_args_get(env, info, &a, "planVersion", 0);
  return th_result(&a, tsrun_plan_version());
}

static napi_value th_spawn(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "spawn", 5) == 0) {
    size_t plen = 0;
    const uint8_t *plan = th_bytes(&a, 0, &plen);
    uint32_t len = th_u32(&a, 1);
    int32_t *out = th_out(&a, 2, 2 * sizeof(int32_t));
    uint32_t errlen = th_u32(&a, 4);
    char *err = th_out(&a, 3, errlen);
    if (plan == NULL || len > plen) a.bad = 1;
    if (!a.bad) rc = tsrun_spawn(plan, len, out, err, errlen);
  }
  return th_result(&a, rc);
}

static napi_value th_sync_send(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "syncSend", 7) == 0) {
    int fd = th_i32(&a, 0);
    uint32_t type = th_u32(&a, 1), stage = th_u32(&a, 2);
    int32_t err = th_i32(&a, 3), value = th_i32(&a, 4);
    size_t plen = 0;
    const uint8_t *payload = th_bytes(&a, 5, &plen);
    uint32_t len = th_u32(&a, 6);
    if (len > plen) a.bad = 1;
    if (!a.bad) rc = tsrun_sync_send(fd, type, stage, err, value, payload, len);
  }
  return th_result(&a, rc);
}

static napi_value th_sync_recv(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "syncRecv", 5) == 0) {
    int fd = th_i32(&a, 0);
    int32_t timeout = th_i32(&a, 1);
    uint32_t buflen = th_u32(&a, 3);
    uint8_t *buf = th_out(&a, 2, buflen);
    int32_t *rfd = th_out(&a, 4, sizeof(int32_t));
    if (!a.bad) rc = tsrun_sync_recv_fd(fd, timeout, buf, buflen, rfd);
  }
  return th_result(&a, rc);
}

static napi_value th_unix_connect(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "unixConnect", 1) == 0) {
    const char *path = th_str(&a, 0);
    if (path == NULL) a.bad = 1;
    if (!a.bad) rc = tsrun_unix_connect(path);
  }
  return th_result(&a, rc);
}

static napi_value th_flock(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "flock", 2) == 0) {
    int fd = th_i32(&a, 0), op = th_i32(&a, 1);
    if (!a.bad) rc = tsrun_flock(fd, op);
  }
  return th_result(&a, rc);
}

static napi_value th_waitpid(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "waitpid", 3) == 0) {
    int pid = th_i32(&a, 0);
    int32_t *status = th_out(&a, 1, sizeof(int32_t));
    int options = th_i32(&a, 2);
    if (!a.bad) rc = tsrun_waitpid(pid, status, options);
  }
  return th_result(&a, rc);
}

/* One waitpid on a libuv pool thread; the status is copied into the caller's array on the main thread. */
typedef struct {
  napi_async_work work;
  napi_ref status_ref;
  napi_ref cb_ref;
  int pid, options, rc;
  int32_t status;
} th_wait;

static void th_wait_execute(napi_env env, void *data) {
  (void)env;
  th_wait *w = data;
  w->rc = tsrun_waitpid(w->pid, &w->status, w->options);
}

static void th_wait_complete(napi_env env, napi_status status, void *data) {
  th_wait *w = data;
  napi_value cb, arr, global, args[2];
  napi_get_reference_value(env, w->cb_ref, &cb);
  napi_get_reference_value(env, w->status_ref, &arr);
  napi_get_global(env, &global);
  if (status == napi_ok && w->rc >= 0) {
    size_t count = 0, offset = 0;
    void *p = NULL;
    napi_typedarray_type type;
    napi_value ab;
    if (napi_get_typedarray_info(env, arr, &type, &count, &p, &ab, &offset) == napi_ok && count >= 1 && p != NULL)
      memcpy(p, &w->status, sizeof w->status);
  }
  if (status == napi_ok) {
    napi_get_null(env, &args[0]);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, "tsrun.node: waitpidAsync: cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &args[0]);
  }
  napi_create_int32(env, w->rc, &args[1]);
  napi_delete_reference(env, w->cb_ref);
  napi_delete_reference(env, w->status_ref);
  napi_delete_async_work(env, w->work);
  free(w);
  napi_call_function(env, global, cb, 2, args, NULL);
}

static napi_value th_waitpid_async(napi_env env, napi_callback_info info) {
  th_args a;
  if (th_args_get(env, info, &a, "waitpidAsync", 4) == 0) {
    int pid = th_i32(&a, 0);
    th_out(&a, 1, sizeof(int32_t));
    int options = th_i32(&a, 2);
    napi_valuetype t = napi_undefined;
    if (napi_typeof(env, a.argv[3], &t) != napi_ok || t != napi_function) a.bad = 1;
    if (!a.bad) {
      th_wait *w = calloc(1, sizeof *w);
      napi_value name;
      if (w == NULL) {
        a.bad = 1;
      } else {
        w->pid = pid;
        w->options = options;
        napi_create_string_utf8(env, "tsrun:waitpid", NAPI_AUTO_LENGTH, &name);
        if (napi_create_reference(env, a.argv[1], 1, &w->status_ref) != napi_ok ||
            napi_create_reference(env, a.argv[3], 1, &w->cb_ref) != napi_ok ||
            napi_create_async_work(env, NULL, name, th_wait_execute, th_wait_complete, w, &w->work) != napi_ok ||
            napi_queue_async_work(env, w->work) != napi_ok) {
          if (w->work != NULL) napi_delete_async_work(env, w->work);
          if (w->cb_ref != NULL) napi_delete_reference(env, w->cb_ref);
          if (w->status_ref != NULL) napi_delete_reference(env, w->status_ref);
          free(w);
          napi_throw_error(env, NULL, "tsrun.node: waitpidAsync: cannot queue the wait");
          return NULL;
        }
      }
    }
  }
  return th_result(&a, 0);
}

static napi_value th_pidfd_open(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "pidfdOpen", 2) == 0) {
    int pid = th_i32(&a, 0);
    uint32_t flags = th_u32(&a, 1);
    if (!a.bad) rc = tsrun_pidfd_open(pid, flags);
  }
  return th_result(&a, rc);
}

static napi_value th_pidfd_send_signal(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "pidfdSendSignal", 2) == 0) {
    int fd = th_i32(&a, 0), sig = th_i32(&a, 1);
    if (!a.bad) rc = tsrun_pidfd_send_signal(fd, sig);
  }
  return th_result(&a, rc);
}

static napi_value th_prctl(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "prctl", 5) == 0) {
    int option = th_i32(&a, 0);
    uint64_t a2 = th_u64(&a, 1), a3 = th_u64(&a, 2), a4 = th_u64(&a, 3), a5 = th_u64(&a, 4);
    if (!a.bad) rc = tsrun_prctl(option, a2, a3, a4, a5);
  }
  return th_result(&a, rc);
}

static napi_value th_mkfifo(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "mkfifo", 2) == 0) {
    const char *path = th_str(&a, 0);
    uint32_t mode = th_u32(&a, 1);
    if (path == NULL) a.bad = 1;
    if (!a.bad) rc = tsrun_mkfifo(path, mode);
  }
  return th_result(&a, rc);
}

static napi_value th_set_winsize(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "setWinsize", 3) == 0) {
    int fd = th_i32(&a, 0);
    uint32_t rows = th_u32(&a, 1), cols = th_u32(&a, 2);
    if (!a.bad) rc = tsrun_set_winsize(fd, rows, cols);
  }
  return th_result(&a, rc);
}

static napi_value th_send_fd(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "sendFd", 3) == 0) {
    int sock = th_i32(&a, 0), fd = th_i32(&a, 1);
    const char *name = th_str(&a, 2);
    if (!a.bad) rc = tsrun_send_fd(sock, fd, name);
  }
  return th_result(&a, rc);
}

static napi_value th_recv_fd(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "recvFd", 3) == 0) {
    int sock = th_i32(&a, 0);
    uint32_t namelen = th_u32(&a, 2);
    char *name = th_out(&a, 1, namelen);
    if (!a.bad) rc = tsrun_recv_fd(sock, name, namelen);
  }
  return th_result(&a, rc);
}

static napi_value th_idmapped_tree(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "idmappedTree", 8) == 0) {
    const char *source = th_str(&a, 0), *uid_map = th_str(&a, 1), *gid_map = th_str(&a, 2);
    uint32_t recursive = th_u32(&a, 3);
    uint64_t attr_set = th_u64(&a, 4), attr_clr = th_u64(&a, 5);
    uint32_t errlen = th_u32(&a, 7);
    char *err = th_out(&a, 6, errlen);
    if (source == NULL || uid_map == NULL || gid_map == NULL) a.bad = 1;
    if (!a.bad) rc = tsrun_idmapped_tree(source, uid_map, gid_map, recursive, attr_set, attr_clr, err, errlen);
  }
  return th_result(&a, rc);
}

static napi_value th_bpf_prog_load_attach(napi_env env, napi_callback_info info) {
  th_args a;
  int rc = 0;
  if (th_args_get(env, info, &a, "bpfProgLoadAttach", 5) == 0) {
    int fd = th_i32(&a, 0);
    size_t ilen = 0;
    const uint8_t *insns = th_bytes(&a, 1, &ilen);
    uint32_t len = th_u32(&a, 2);
    uint32_t loglen = th_u32(&a, 4);
    char *log = th_out(&a, 3, loglen);
    if (insns == NULL || len > ilen) a.bad = 1;
    if (!a.bad) rc = tsrun_bpf_prog_load_attach(fd, insns, len, log, loglen);
  }
  return th_result(&a, rc);
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"abiVersion", th_abi_version},
      {"planVersion", th_plan_version},
      {"spawn", th_spawn},
      {"syncSend", th_sync_send},
      {"syncRecv", th_sync_recv},
      {"unixConnect", th_unix_connect},
      {"flock", th_flock},
      {"waitpid", th_waitpid},
      {"waitpidAsync", th_waitpid_async},
      {"pidfdOpen", th_pidfd_open},
      {"pidfdSendSignal", th_pidfd_send_signal},
      {"prctl", th_prctl},
      {"mkfifo", th_mkfifo},
      {"setWinsize", th_set_winsize},
      {"sendFd", th_send_fd},
      {"recvFd", th_recv_fd},
      {"idmappedTree", th_idmapped_tree},
      {"bpfProgLoadAttach", th_bpf_prog_load_attach},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return NULL;
  }
  return exports;
}
