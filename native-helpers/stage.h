/*
 * The sealed stage (CVE-2019-5736 class). A process that tsrun_spawn clones is a copy of the
 * runtime (node): until it execs, its /proc/N/exe is the host's node binary and its map_files
 * show host libraries, which a container process with CAP_SYS_PTRACE could open and later reopen
 * for writing. So the clone execs, before it joins or creates anything a container can see, a
 * copy of build/tsrun-stage (stage_main.c, a static executable built from these sources) held
 * in a sealed memfd. The new image reads the plan from a second sealed memfd and runs
 * th_child_main as before.
 *
 * The stage's argv: "tsrun-stage" TH_STAGE_MAGIC sync_fd plan_fd plan_len parent_pid
 * cap_last_cap cgroup_into_done carried_inheritable; its environment is empty.
 *
 * Capabilities across the exec: a clone that creates a user namespace has every capability in
 * it, but the exec would drop them all, because the process's uid is not mapped there yet (the
 * runtime writes the maps later) and so it is not the namespace's root. The child therefore
 * carries them as ambient capabilities (inheritable raised to permitted, every one raised into
 * ambient), and the stage, first thing, clears the ambient set and puts back the inheritable
 * set it had: carried_inheritable, in hex, or "-" when nothing was carried.
 */
#ifndef TSRUN_STAGE_H
#define TSRUN_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "child.h"

#pragma GCC visibility push(hidden)

/** Format a message into err (when given); returns 0, so callers can `return th_errf(…), -e`. */
__attribute__((format(printf, 3, 4))) int th_errf(char *err, size_t errlen, const char *fmt, ...);
/** strerror text in the style of the runtime's messages (lower-case first letter). */
const char *th_errtext(int e, char *buf, size_t len);

/** The stage binary's file name, beside tsrun.node. */
#define TH_STAGE_FILE "tsrun-stage"
/** argv[1] of the stage: refuses to run from a helper of another build of the protocol. */
#define TH_STAGE_MAGIC "tsrun-stage-v2"
#define TH_STAGE_ARGC 9

/**
 * Use path (absolute) as the stage binary instead of the file beside the library this code was
 * loaded from: an executable linking these sources (the native shim) is not found by dladdr.
 * 0 or -EINVAL.
 */
int th_stage_set_path(const char *path);

/** What the parent prepares before the clone: the child may not allocate after it. */
struct th_sealed {
  int exe_fd;     /* the sealed stage binary (cached per process, O_RDONLY, CLOEXEC) */
  int plan_fd;    /* the plan bytes, sealed (CLOEXEC; the child clears the flag) */
  int carry_caps; /* capabilities cross the exec as ambient ones (see above) */
  char *argv[TH_STAGE_ARGC + 1];
  char *envp[1];
  char args[TH_STAGE_ARGC][24];
};

/**
 * Open (once per process) the sealed copy of the stage binary, put the plan in a sealed memfd,
 * and build argv. 0, or -errno with a message in err.
 */
int th_stage_prepare(struct th_sealed *s, const struct th_child *c, const uint8_t *plan, uint32_t len, char *err,
                     size_t errlen);

/** In the parent after the clone: close the plan memfd (the child has its copy). */
void th_stage_release(struct th_sealed *s);

/**
 * In the cloned child, straight after the clone: keep exactly the fds the stage needs across
 * exec (stdio, the sync socket, the plan memfd, the fds the plan names, the preserved fds) and
 * execveat the sealed stage. Reports a failure as an ERROR record; never returns.
 */
_Noreturn void th_stage_exec(struct th_child *c, struct th_sealed *s);

#pragma GCC visibility pop

#endif
