/*
 * The native tsrun-shim's control protocol (docs/native-shim.md §Control protocol): one frame is
 * a 4-byte big-endian length (at most TSH_MAX_FRAME) and a body
 *
 *   u32 id (BE) | u8 kind | u8 type | fields: { u8 tag | u16 len (BE) | len bytes } ...
 *
 * Requests come from tsrund (kind REQUEST), answers carry the request's id (kind RESPONSE),
 * events have id 0 (kind EVENT). Integers in fields are big-endian u32 or u64 by tag. The
 * decoder below reads requests; the shim's answers are built with the tsh_put_* helpers.
 */
#ifndef TSH_PROTO_H
#define TSH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TSH_MAX_FRAME 65536u
#define TSH_MAX_ARGS 64u

enum tsh_kind { TSH_REQUEST = 1, TSH_RESPONSE = 2, TSH_EVENT = 3 };

enum tsh_type {
  TSH_HELLO = 1,
  TSH_SUBSCRIBE = 2,
  TSH_SPAWN = 3,
  TSH_SIGNAL = 4,
  TSH_RESIZE = 5,
  TSH_CLOSE_STDIN = 6,
  TSH_STATE = 7,
  TSH_FORGET = 8,
  TSH_SHUTDOWN = 9,
  TSH_SPAWN_PLAN = 10,
  TSH_ADOPT = 11,
  TSH_OOM_WATCH = 12,
  TSH_EV_EXIT = 20,
  TSH_EV_OOM = 21,
};

enum tsh_tag {
  TSH_T_NAME = 1,       /* str: the process ("init" or an exec id) */
  TSH_T_ARG = 2,        /* str, repeated: the runtime command's argv */
  TSH_T_PIDFILE = 3,    /* str: where the runtime writes the process's pid */
  TSH_T_STDIN = 4,      /* str: fifo path or "" */
  TSH_T_STDOUT = 5,     /* str: fifo path, file:///path, or "" */
  TSH_T_STDERR = 6,     /* str: as stdout */
  TSH_T_TERMINAL = 7,   /* u32: 1 = the process gets a pty, its master comes over CONSOLE */
  TSH_T_CONSOLE = 8,    /* str: the console socket the shim listens on */
  TSH_T_LOG_PATH = 9,   /* str: json-file log */
  TSH_T_LOG_MAX = 10,   /* u64: bytes before rotation, 0 = never */
  TSH_T_LOG_FILES = 11, /* u32: files kept, live one included */
  TSH_T_SIGNAL = 12,    /* u32 */
  TSH_T_WIDTH = 13,     /* u32 */
  TSH_T_HEIGHT = 14,    /* u32 */
  TSH_T_PID = 15,       /* u32 */
  TSH_T_STATUS = 16,    /* u32: exit status (code or 128+signal); runtime exit status in SPAWN's answer */
  TSH_T_TIME = 17,      /* str: RFC 3339 with nanoseconds */
  TSH_T_ERROR = 18,     /* str: "Code: message" (a TsrunError code first) */
  TSH_T_STATE = 19,     /* u32: enum tsh_pstate */
  TSH_T_PROC = 20,      /* bytes, repeated: nested NAME PID STATE STATUS TIME fields */
  TSH_T_VERSION = 21,   /* u32 */
  TSH_T_PLAN = 22,      /* str: the file holding an encoded plan (runtime/plan/ops.ts) */
  TSH_T_FDS = 23,       /* u32: how many fds came with the frame (SCM_RIGHTS) */
  TSH_T_DIR = 24,       /* str: a memory cgroup directory (OOM_WATCH) */
};

/*
 * SPAWN_PLAN: the fds a plan names live at fixed numbers in the shim while tsrun_spawn clones:
 * the process's stdin, stdout and stderr at TSH_PLAN_FD_BASE + 0, 1, 2, and the k-th fd that came
 * with the frame at TSH_PLAN_FD_BASE + 3 + k. The shim's own fds never reach these numbers (at
 * most a few hundred: its tables are fixed), and they stay below the default RLIMIT_NOFILE (1024).
 */
#define TSH_PLAN_FD_BASE 1000
#define TSH_MAX_PASSED_FDS 16u

enum tsh_pstate { TSH_P_CREATING = 1, TSH_P_RUNNING = 2, TSH_P_STOPPED = 3 };

/* A decoded request. Strings are NUL-terminated copies in arena; absent ones are "". */
struct tsh_msg {
  uint32_t id;
  uint8_t kind, type;
  const char *name, *pidfile, *stdin_path, *stdout_path, *stderr_path, *console, *log_path, *plan, *dir;
  const char *argv[TSH_MAX_ARGS + 1]; /* NULL-terminated */
  uint32_t argc;
  uint32_t terminal, log_files, signal, width, height, pid, fds;
  uint64_t log_max;
  char arena[TSH_MAX_FRAME + 16];
};

/*
 * Decode one frame body (without its length prefix). 0, or -1 with a message in err. Checks:
 * known kind and type, fields inside the body, strings without NUL, integers of their width,
 * at most TSH_MAX_ARGS args, no field given twice (except ARG).
 */
int tsh_decode(const uint8_t *body, size_t len, struct tsh_msg *m, char *err, size_t errlen);

/* An answer or event under construction: b[0..4) is the length prefix, filled by tsh_finish. */
struct tsh_out {
  uint8_t b[TSH_MAX_FRAME + 4];
  size_t len;
  int overflow;
};

void tsh_begin(struct tsh_out *o, uint32_t id, uint8_t kind, uint8_t type);
void tsh_put_str(struct tsh_out *o, uint8_t tag, const char *s);
void tsh_put_bytes(struct tsh_out *o, uint8_t tag, const uint8_t *p, size_t n);
void tsh_put_u32(struct tsh_out *o, uint8_t tag, uint32_t v);
void tsh_put_u64(struct tsh_out *o, uint8_t tag, uint64_t v);
/* Fill in the length prefix; the frame is o->b[0..o->len). -1 if a put overflowed. */
int tsh_finish(struct tsh_out *o);

#endif
