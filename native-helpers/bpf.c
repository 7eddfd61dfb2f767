/*
 * Load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to a cgroup v2 directory: the
 * cgroup v2 device controller. The instructions come from runtime/cgroups/devices-bpf.ts.
 *
 *   BPF_PROG_LOAD     the program (on a verifier failure, loaded again with log_level 1 so the
 *                     caller gets the verifier's text in `log`)
 *   BPF_PROG_ATTACH   to the cgroup fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI
 *   BPF_PROG_QUERY    the programs attached directly to this cgroup; every one that is not the
 *                     new program is detached, so `update` replaces the rules instead of adding
 *                     to them, and there is no moment with no program at all
 *
 * Returns 0 or -errno; with ALLOW_MULTI every attached program must allow an access, so a
 * failure to detach an old program is reported (the old, stricter rules would still apply).
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tsrun.h"

#define TH_BPF_MAX_ATTACHED 64

static long th_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int th_bpf_load(const uint8_t *insns, uint32_t len, char *log, uint32_t loglen) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = len / 8;
  attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
  long fd = th_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return (int)fd;
  int err = errno;
  if (log != NULL && loglen > 1 && (err == EACCES || err == EINVAL)) {
    // Only now ask for the verifier log: with a log a too-small buffer is an error of its own.
    memset(log, 0, loglen);
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = loglen;
    attr.log_level = 1;
    fd = th_bpf(BPF_PROG_LOAD, &attr);
    if (fd >= 0) return (int)fd;
    log[loglen - 1] = '\0';
  }
  return -err;
}

static int th_bpf_prog_id(int prog_fd, uint32_t *id) {
  struct bpf_prog_info info;
  union bpf_attr attr;
  memset(&info, 0, sizeof(info));
  memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = (uint32_t)prog_fd;
  attr.info.info_len = sizeof(info);
  attr.info.info = (uint64_t)(uintptr_t)&info;
  if (th_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) return -errno;
  *id = info.id;
  return 0;
}

static int th_bpf_detach_others(int cgroup_fd, uint32_t keep) {
  uint32_t ids[TH_BPF_MAX_ATTACHED];
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.query.target_fd = (uint32_t)cgroup_fd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = TH_BPF_MAX_ATTACHED;
  if (th_bpf(BPF_PROG_QUERY, &attr) < 0) return -errno;
  uint32_t n = attr.query.prog_cnt < TH_BPF_MAX_ATTACHED ? attr.query.prog_cnt : TH_BPF_MAX_ATTACHED;
  for (uint32_t i = 0; i < n; i++) {
    if (ids[i] == keep) continue;
    union bpf_attr get;
    memset(&get, 0, sizeof(get));
    get.prog_id = ids[i];
    long old = th_bpf(BPF_PROG_GET_FD_BY_ID, &get);
    if (old < 0) {
      if (errno == ENOENT) continue; // detached meanwhile
      return -errno;
    }
    union bpf_attr det;
    memset(&det, 0, sizeof(det));
    det.target_fd = (uint32_t)cgroup_fd;
    det.attach_bpf_fd = (uint32_t)old;
    det.attach_type = BPF_CGROUP_DEVICE;
    long r = th_bpf(BPF_PROG_DETACH, &det);
    int err = errno;
    close((int)old);
    if (r < 0 && err != ENOENT) return -err;
  }
  return 0;
}

int tsrun_bpf_prog_load_attach(int cgroup_fd, const uint8_t *insns, uint32_t len, char *log, uint32_t loglen) {
  if (insns == NULL || len == 0 || len % 8 != 0 || cgroup_fd < 0) return -EINVAL;
  if (log != NULL && loglen > 0) log[0] = '\0';
  int prog = th_bpf_load(insns, len, log, loglen);
  if (prog < 0) return prog;
  uint32_t id = 0;
  int rc = th_bpf_prog_id(prog, &id);
  if (rc == 0) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    rc = th_bpf(BPF_PROG_ATTACH, &attr) < 0 ? -errno : 0;
  }
  // The attachment holds its own reference to the program.
  close(prog);
  if (rc < 0) return rc;
  return th_bpf_detach_others(cgroup_fd, id);
}
