// Generated from runtime/native/exports.ts by scripts/gen-native.ts. Do not edit; run `make gen`.

/** The addon's functions (native-helpers/tsrun.h with JS arguments); index.ts wraps them. */
export interface NativeLib {
  /** tsrun_abi_version: TSRUN_ABI_VERSION: a hash of these signatures, which the loader compares with its own. */
  abiVersion(): number;
  /** tsrun_spawn: Decode and check plan, create the sync socket pair and clone the container's init. out[0] = init's host pid, out[1] = the runtime's end of the sync socket (CLOEXEC). 0 or -errno, with a message in err. */
  spawn(plan: Uint8Array, len: number, out: Int32Array, err: Uint8Array, errlen: number): number;
  /** tsrun_sync_send: Send one sync message: header {type, stage, errno, value} + payload. 0 or -errno. A payload too big for one datagram (GO's hook states with large annotations) travels in a sealed memfd passed with SCM_RIGHTS, when stage, errno and value are 0; otherwise it is -EMSGSIZE. */
  syncSend(fd: number, type: number, stage: number, err: number, value: number, payload: Uint8Array, len: number): number;
  /** tsrun_sync_recv_fd: Receive one sync message into buf (timeout_ms < 0: wait forever), and the fd passed with it: *rfd is that fd (CLOEXEC) or -1. Bytes received (>= 16), 0 on EOF, -ETIMEDOUT, -EMSGSIZE if truncated, -EPROTO if shorter than a header, or -errno. */
  syncRecv(fd: number, timeoutMs: number, buf: Uint8Array, buflen: number, rfd: Int32Array): number;
  /** tsrun_sync_recv_fd on a libuv pool thread; done(null, rc) on the main thread, after the out buffers are filled. */
  syncRecvAsync(fd: number, timeoutMs: number, buf: Uint8Array, buflen: number, rfd: Int32Array, done: (err: Error | null, rc: number) => void): void;
  /** tsrun_unix_connect: A connected SOCK_STREAM unix socket (CLOEXEC) to path, or -errno. */
  unixConnect(path: string): number;
  /** tsrun_flock: flock(2), retrying EINTR. 0 or -errno. */
  flock(fd: number, op: number): number;
  /** tsrun_waitpid: waitpid(2), retrying EINTR. pid, 0 (WNOHANG, none ready) or -errno. */
  waitpid(pid: number, status: Int32Array, options: number): number;
  /** tsrun_waitpid on a libuv pool thread; done(null, rc) on the main thread, after the out buffers are filled. */
  waitpidAsync(pid: number, status: Int32Array, options: number, done: (err: Error | null, rc: number) => void): void;
  /** tsrun_spawn_detached: posix_spawn (vfork: the caller's page tables are not copied) of path with argv [argv0, arg], in a new session, signals at their defaults and unblocked, 0-2 on /dev/null and fd 3 the write end of a fresh pipe; out[0] = pid, out[1] = the read end (CLOEXEC). The caller reaps the pid. 0 or -errno. */
  spawnDetached(path: string, argv0: string, arg: string, out: Int32Array): number;
  /** tsrun_spawn_detached on a libuv pool thread; done(null, rc) on the main thread, after the out buffers are filled. */
  spawnDetachedAsync(path: string, argv0: string, arg: string, out: Int32Array, done: (err: Error | null, rc: number) => void): void;
  /** tsrun_pidfd_open: pidfd_open(2). fd or -errno. */
  pidfdOpen(pid: number, flags: number): number;
  /** tsrun_pidfd_send_signal: pidfd_send_signal(2) with no siginfo. 0 or -errno. */
  pidfdSendSignal(pidfd: number, sig: number): number;
  /** tsrun_prctl: prctl(2). Its result or -errno. */
  prctl(option: number, a2: bigint, a3: bigint, a4: bigint, a5: bigint): number;
  /** tsrun_mkfifo: mkfifo(3). 0 or -errno. */
  mkfifo(path: string, mode: number): number;
  /** tsrun_set_winsize: TIOCSWINSZ on a terminal fd. 0 or -errno. */
  setWinsize(fd: number, rows: number, cols: number): number;
  /** tsrun_send_fd: Send fd over a unix socket with name as the data (one sendmsg, one SCM_RIGHTS fd). 0 or -errno. */
  sendFd(sock: number, fd: number, name: string): number;
  /** tsrun_recv_fd: Receive one fd (made CLOEXEC) and its name (NUL-terminated, truncated to namelen). fd or -errno. */
  recvFd(sock: number, name: Uint8Array, namelen: number): number;
  /** tsrun_send_fds: Send data (at least one byte) and nfds fds (fds: nfds int32 values, at most 16) in one sendmsg with SCM_RIGHTS (the native shim's SPAWN_PLAN). Bytes sent (a stream socket may take fewer) or -errno. */
  sendFds(sock: number, data: Uint8Array, len: number, fds: Uint8Array, fdbytes: number): number;
  /** tsrun_idmapped_tree: A detached clone of the mount tree at source (recursive: with submounts), idmapped with a user namespace made from the uid_map/gid_map texts ("inside outside count" lines) and given the mount_setattr(2) attributes attr_set/attr_clr. The tree fd (CLOEXEC) or -errno, with err filled on failure. */
  idmappedTree(source: string, uidMap: string, gidMap: string, recursive: number, attrSet: bigint, attrClr: bigint, err: Uint8Array, errlen: number): number;
  /** tsrun_bpf_prog_load_attach: Load insns (len bytes, 8 per instruction) as a BPF_PROG_TYPE_CGROUP_DEVICE program and make it cgroup_fd's only one (bpf.c). 0 or -errno; on a verifier rejection, the verifier's text in log. */
  bpfProgLoadAttach(cgroupFd: number, insns: Uint8Array, len: number, log: Uint8Array, loglen: number): number;
}

/** Every function name NativeLib has, for the loader's check. */
export const NATIVE_LIB_FUNCTIONS: readonly (keyof NativeLib)[] = ['abiVersion', 'spawn', 'syncSend', 'syncRecv', 'syncRecvAsync', 'unixConnect', 'flock', 'waitpid', 'waitpidAsync', 'spawnDetached', 'spawnDetachedAsync', 'pidfdOpen', 'pidfdSendSignal', 'prctl', 'mkfifo', 'setWinsize', 'sendFd', 'recvFd', 'sendFds', 'idmappedTree', 'bpfProgLoadAttach'];
