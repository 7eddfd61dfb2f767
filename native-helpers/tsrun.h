/* Generated from runtime/native/exports.ts by scripts/gen-native.ts. Do not edit; run `make gen`. */
/*
 * The C helper's exported API: what build/tsrun.node (native-helpers/addon.c) calls. Every
 * function returns -errno on failure; none of them print.
 */
#ifndef TSRUN_H
#define TSRUN_H

#include <stdint.h>

#define TSRUN_ABI_VERSION 0x1621c73e
#define TSRUN_EXPORT __attribute__((visibility("default")))

/*
 * TSRUN_ABI_VERSION: a hash of these signatures, which the loader compares with its own.
 */
TSRUN_EXPORT int tsrun_abi_version(void);
/*
 * Decode and check plan, create the sync socket pair and clone the container's init. out[0] =
 * init's host pid, out[1] = the runtime's end of the sync socket (CLOEXEC). 0 or -errno, with a
 * message in err.
 */
TSRUN_EXPORT int tsrun_spawn(const uint8_t *plan, uint32_t len, int32_t *out, char *err, uint32_t errlen);
/*
 * Send one sync message: header {type, stage, errno, value} + payload. 0 or -errno. A payload too
 * big for one datagram (GO's hook states with large annotations) travels in a sealed memfd passed
 * with SCM_RIGHTS, when stage, errno and value are 0; otherwise it is -EMSGSIZE.
 */
TSRUN_EXPORT int tsrun_sync_send(int fd, uint32_t type, uint32_t stage, int32_t err, int32_t value, const uint8_t *payload, uint32_t len);
/*
 * Receive one sync message into buf (timeout_ms < 0: wait forever), and the fd passed with it:
 * *rfd is that fd (CLOEXEC) or -1. Bytes received (>= 16), 0 on EOF, -ETIMEDOUT, -EMSGSIZE if
 * truncated, -EPROTO if shorter than a header, or -errno.
 */
TSRUN_EXPORT int tsrun_sync_recv_fd(int fd, int32_t timeout_ms, uint8_t *buf, uint32_t buflen, int32_t *rfd);
/*
 * A connected SOCK_STREAM unix socket (CLOEXEC) to path, or -errno.
 */
TSRUN_EXPORT int tsrun_unix_connect(const char *path);
/*
 * flock(2), retrying EINTR. 0 or -errno.
 */
TSRUN_EXPORT int tsrun_flock(int fd, int op);
/*
 * waitpid(2), retrying EINTR. pid, 0 (WNOHANG, none ready) or -errno.
 */
TSRUN_EXPORT int tsrun_waitpid(int pid, int32_t *status, int options);
/*
 * posix_spawn (vfork: the caller's page tables are not copied) of path with argv [argv0, arg], in
 * a new session, signals at their defaults and unblocked, 0-2 on /dev/null and fd 3 the write end
 * of a fresh pipe; out[0] = pid, out[1] = the read end (CLOEXEC). The caller reaps the pid. 0 or
 * -errno.
 */
TSRUN_EXPORT int tsrun_spawn_detached(const char *path, const char *argv0, const char *arg, int32_t *out);
/*
 * pidfd_open(2). fd or -errno.
 */
TSRUN_EXPORT int tsrun_pidfd_open(int pid, uint32_t flags);
/*
 * pidfd_send_signal(2) with no siginfo. 0 or -errno.
 */
TSRUN_EXPORT int tsrun_pidfd_send_signal(int pidfd, int sig);
/*
 * prctl(2). Its result or -errno.
 */
TSRUN_EXPORT int tsrun_prctl(int option, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);
/*
 * mkfifo(3). 0 or -errno.
 */
TSRUN_EXPORT int tsrun_mkfifo(const char *path, uint32_t mode);
/*
 * TIOCSWINSZ on a terminal fd. 0 or -errno.
 */
TSRUN_EXPORT int tsrun_set_winsize(int fd, uint32_t rows, uint32_t cols);
/*
 * Send fd over a unix socket with name as the data (one sendmsg, one SCM_RIGHTS fd). 0 or -errno.
 */
TSRUN_EXPORT int tsrun_send_fd(int sock, int fd, const char *name);
/*
 * Receive one fd (made CLOEXEC) and its name (NUL-terminated, truncated to namelen). fd or -errno.
 */
TSRUN_EXPORT int tsrun_recv_fd(int sock, char *name, uint32_t namelen);
/*
 * Send data (at least one byte) and nfds fds (fds: nfds int32 values, at most 16) in one sendmsg
 * with SCM_RIGHTS (the native shim's SPAWN_PLAN). Bytes sent (a stream socket may take fewer) or
 * -errno.
 */
TSRUN_EXPORT int tsrun_send_fds(int sock, const uint8_t *data, uint32_t len, const uint8_t *fds, uint32_t fdbytes);
/*
 * A detached clone of the mount tree at source (recursive: with submounts), idmapped with a user
 * namespace made from the uid_map/gid_map texts ("inside outside count" lines) and given the
 * mount_setattr(2) attributes attr_set/attr_clr. The tree fd (CLOEXEC) or -errno, with err filled
 * on failure.
 */
TSRUN_EXPORT int tsrun_idmapped_tree(const char *source, const char *uid_map, const char *gid_map, uint32_t recursive, uint64_t attr_set, uint64_t attr_clr, char *err, uint32_t errlen);
/*
 * Load insns (len bytes, 8 per instruction) as a BPF_PROG_TYPE_CGROUP_DEVICE program and make it
 * cgroup_fd's only one (bpf.c). 0 or -errno; on a verifier rejection, the verifier's text in log.
 */
TSRUN_EXPORT int tsrun_bpf_prog_load_attach(int cgroup_fd, const uint8_t *insns, uint32_t len, char *log, uint32_t loglen);

#endif
