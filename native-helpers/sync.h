/*
 * Sync messages on the SOCK_SEQPACKET socket between the runtime and the child (protocol drawn in
 * runtime/plan/ops.ts): one datagram each, header {u32 type, u32 stage, i32 errno, i32 value}
 * little-endian, then the payload. Used by both the exported API and the child, so everything
 * here is async-signal-safe (sendmsg, recvmsg, poll, clock_gettime).
 */
#ifndef TSRUN_SYNC_H
#define TSRUN_SYNC_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/** Send one message; 0 or -errno. Never raises SIGPIPE (MSG_NOSIGNAL). */
int th_sync_send(int fd, uint32_t type, uint32_t stage, int32_t err, int32_t value, const void *payload, size_t len);

/**
 * Receive one message into buf; timeout_ms < 0 waits forever. Returns the bytes received (>= 16),
 * 0 when the peer is gone, -ETIMEDOUT, -EMSGSIZE when buf was too small, -EPROTO for a datagram
 * shorter than the header, or -errno.
 */
int th_sync_recv(int fd, int timeout_ms, uint8_t *buf, size_t buflen);

/* One message with header only, carrying `passfd` as SCM_RIGHTS. 0 or -errno. */
int th_sync_send_fd(int fd, uint32_t type, int passfd);

/* th_sync_recv that also takes an SCM_RIGHTS fd: *rfd is it (CLOEXEC) or -1. */
int th_sync_recv_fd(int fd, int timeout_ms, uint8_t *buf, size_t buflen, int *rfd);

/**
 * A sealed memfd (MFD_CLOEXEC; F_SEAL_SEAL, SHRINK, GROW and WRITE) holding len bytes of data,
 * or, when data is NULL, the whole regular file src_fd. exec says whether it must be executable
 * (the stage binary); otherwise it is made non-executable where the kernel can (MFD_NOEXEC_SEAL).
 * The fd, or -errno.
 */
int th_memfd_sealed(const char *name, const void *data, size_t len, int src_fd, int exec);

/**
 * Send a message whose payload may be larger than a datagram: up to TH_SYNC_MAX_BYTES it goes
 * inline (th_sync_send); beyond, it goes in a sealed memfd passed with SCM_RIGHTS and the
 * datagram has no payload (th_sync_recv_fd's caller reads it from the fd). 0 or -errno.
 */
int th_sync_send_big(int fd, uint32_t type, const void *payload, size_t len);

/** Read the header fields of a received message. */
uint32_t th_sync_u32(const uint8_t *buf, size_t at);

#pragma GCC visibility pop

#endif
