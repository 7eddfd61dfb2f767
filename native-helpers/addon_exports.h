/* Generated from runtime/native/exports.ts by scripts/gen-native.ts. Do not edit; run `make gen`. */
/* Included by addon.c only: th_val, th_arg and th_export are defined there. */

static int th_call_abiVersion(const th_val *v) {
  (void)v;
  return tsrun_abi_version();
}

static int th_call_spawn(const th_val *v) {
  return tsrun_spawn(v[0].p, v[1].u32, v[2].p, v[3].p, v[4].u32);
}
static const th_arg th_args_spawn[] = {{"plan", TH_A_IN, 1, 0}, {"len", TH_A_U32, -1, 0}, {"out", TH_A_OUT, -1, 8}, {"err", TH_A_OUT, 4, 0}, {"errlen", TH_A_U32, -1, 0}};

static int th_call_syncSend(const th_val *v) {
  return tsrun_sync_send(v[0].i32, v[1].u32, v[2].u32, v[3].i32, v[4].i32, v[5].p, v[6].u32);
}
static const th_arg th_args_syncSend[] = {{"fd", TH_A_I32, -1, 0}, {"type", TH_A_U32, -1, 0}, {"stage", TH_A_U32, -1, 0}, {"err", TH_A_I32, -1, 0}, {"value", TH_A_I32, -1, 0}, {"payload", TH_A_IN, 6, 0}, {"len", TH_A_U32, -1, 0}};

static int th_call_syncRecv(const th_val *v) {
  return tsrun_sync_recv_fd(v[0].i32, v[1].i32, v[2].p, v[3].u32, v[4].p);
}
static const th_arg th_args_syncRecv[] = {{"fd", TH_A_I32, -1, 0}, {"timeout_ms", TH_A_I32, -1, 0}, {"buf", TH_A_OUT, 3, 0}, {"buflen", TH_A_U32, -1, 0}, {"rfd", TH_A_OUT, -1, 4}};

static int th_call_unixConnect(const th_val *v) {
  return tsrun_unix_connect(v[0].s);
}
static const th_arg th_args_unixConnect[] = {{"path", TH_A_STR, -1, 0}};

static int th_call_flock(const th_val *v) {
  return tsrun_flock(v[0].i32, v[1].i32);
}
static const th_arg th_args_flock[] = {{"fd", TH_A_I32, -1, 0}, {"op", TH_A_I32, -1, 0}};

static int th_call_waitpid(const th_val *v) {
  return tsrun_waitpid(v[0].i32, v[1].p, v[2].i32);
}
static const th_arg th_args_waitpid[] = {{"pid", TH_A_I32, -1, 0}, {"status", TH_A_OUT, -1, 4}, {"options", TH_A_I32, -1, 0}};

static int th_call_spawnDetached(const th_val *v) {
  return tsrun_spawn_detached(v[0].s, v[1].s, v[2].s, v[3].p);
}
static const th_arg th_args_spawnDetached[] = {{"path", TH_A_STR, -1, 0}, {"argv0", TH_A_STR, -1, 0}, {"arg", TH_A_STR, -1, 0}, {"out", TH_A_OUT, -1, 8}};

static int th_call_pidfdOpen(const th_val *v) {
  return tsrun_pidfd_open(v[0].i32, v[1].u32);
}
static const th_arg th_args_pidfdOpen[] = {{"pid", TH_A_I32, -1, 0}, {"flags", TH_A_U32, -1, 0}};

static int th_call_pidfdSendSignal(const th_val *v) {
  return tsrun_pidfd_send_signal(v[0].i32, v[1].i32);
}
static const th_arg th_args_pidfdSendSignal[] = {{"pidfd", TH_A_I32, -1, 0}, {"sig", TH_A_I32, -1, 0}};

static int th_call_prctl(const th_val *v) {
  return tsrun_prctl(v[0].i32, v[1].u64, v[2].u64, v[3].u64, v[4].u64);
}
static const th_arg th_args_prctl[] = {{"option", TH_A_I32, -1, 0}, {"a2", TH_A_U64, -1, 0}, {"a3", TH_A_U64, -1, 0}, {"a4", TH_A_U64, -1, 0}, {"a5", TH_A_U64, -1, 0}};

static int th_call_mkfifo(const th_val *v) {
  return tsrun_mkfifo(v[0].s, v[1].u32);
}
static const th_arg th_args_mkfifo[] = {{"path", TH_A_STR, -1, 0}, {"mode", TH_A_U32, -1, 0}};

static int th_call_setWinsize(const th_val *v) {
  return tsrun_set_winsize(v[0].i32, v[1].u32, v[2].u32);
}
static const th_arg th_args_setWinsize[] = {{"fd", TH_A_I32, -1, 0}, {"rows", TH_A_U32, -1, 0}, {"cols", TH_A_U32, -1, 0}};

static int th_call_sendFd(const th_val *v) {
  return tsrun_send_fd(v[0].i32, v[1].i32, v[2].s);
}
static const th_arg th_args_sendFd[] = {{"sock", TH_A_I32, -1, 0}, {"fd", TH_A_I32, -1, 0}, {"name", TH_A_STR, -1, 0}};

static int th_call_recvFd(const th_val *v) {
  return tsrun_recv_fd(v[0].i32, v[1].p, v[2].u32);
}
static const th_arg th_args_recvFd[] = {{"sock", TH_A_I32, -1, 0}, {"name", TH_A_OUT, 2, 0}, {"namelen", TH_A_U32, -1, 0}};

static int th_call_sendFds(const th_val *v) {
  return tsrun_send_fds(v[0].i32, v[1].p, v[2].u32, v[3].p, v[4].u32);
}
static const th_arg th_args_sendFds[] = {{"sock", TH_A_I32, -1, 0}, {"data", TH_A_IN, 2, 0}, {"len", TH_A_U32, -1, 0}, {"fds", TH_A_IN, 4, 0}, {"fdbytes", TH_A_U32, -1, 0}};

static int th_call_idmappedTree(const th_val *v) {
  return tsrun_idmapped_tree(v[0].s, v[1].s, v[2].s, v[3].u32, v[4].u64, v[5].u64, v[6].p, v[7].u32);
}
static const th_arg th_args_idmappedTree[] = {{"source", TH_A_STR, -1, 0}, {"uid_map", TH_A_STR, -1, 0}, {"gid_map", TH_A_STR, -1, 0}, {"recursive", TH_A_U32, -1, 0}, {"attr_set", TH_A_U64, -1, 0}, {"attr_clr", TH_A_U64, -1, 0}, {"err", TH_A_OUT, 7, 0}, {"errlen", TH_A_U32, -1, 0}};

static int th_call_bpfProgLoadAttach(const th_val *v) {
  return tsrun_bpf_prog_load_attach(v[0].i32, v[1].p, v[2].u32, v[3].p, v[4].u32);
}
static const th_arg th_args_bpfProgLoadAttach[] = {{"cgroup_fd", TH_A_I32, -1, 0}, {"insns", TH_A_IN, 2, 0}, {"len", TH_A_U32, -1, 0}, {"log", TH_A_OUT, 4, 0}, {"loglen", TH_A_U32, -1, 0}};

#define TH_N_EXPORTS 18
static const th_export th_exports[TH_N_EXPORTS] = {
    {"abiVersion", th_call_abiVersion, 0, NULL, 0},
    {"spawn", th_call_spawn, 5, th_args_spawn, 0},
    {"syncSend", th_call_syncSend, 7, th_args_syncSend, 0},
    {"syncRecv", th_call_syncRecv, 5, th_args_syncRecv, 1},
    {"unixConnect", th_call_unixConnect, 1, th_args_unixConnect, 0},
    {"flock", th_call_flock, 2, th_args_flock, 0},
    {"waitpid", th_call_waitpid, 3, th_args_waitpid, 1},
    {"spawnDetached", th_call_spawnDetached, 4, th_args_spawnDetached, 1},
    {"pidfdOpen", th_call_pidfdOpen, 2, th_args_pidfdOpen, 0},
    {"pidfdSendSignal", th_call_pidfdSendSignal, 2, th_args_pidfdSendSignal, 0},
    {"prctl", th_call_prctl, 5, th_args_prctl, 0},
    {"mkfifo", th_call_mkfifo, 2, th_args_mkfifo, 0},
    {"setWinsize", th_call_setWinsize, 3, th_args_setWinsize, 0},
    {"sendFd", th_call_sendFd, 3, th_args_sendFd, 0},
    {"recvFd", th_call_recvFd, 3, th_args_recvFd, 0},
    {"sendFds", th_call_sendFds, 5, th_args_sendFds, 0},
    {"idmappedTree", th_call_idmappedTree, 8, th_args_idmappedTree, 0},
    {"bpfProgLoadAttach", th_call_bpfProgLoadAttach, 5, th_args_bpfProgLoadAttach, 0},
};
