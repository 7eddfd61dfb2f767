/*
 * noclone3 COMMAND [ARG...]: run COMMAND with clone3(2) answering ENOSYS, as it does under
 * docker's default seccomp profile or on a kernel before 5.3. A test tool (make build/noclone3):
 * it lets the integration tests take the helper's fallback from clone3(CLONE_INTO_CGROUP) to
 * clone + a write to cgroup.procs (child.c th_clone_init, ns.c th_op_cgroup_join).
 *
 * The filter is a raw BPF program (no libseccomp). It is installed without no_new_privs, which
 * needs CAP_SYS_ADMIN (root), so the command and the containers it starts keep their own
 * no_new_privs setting. The filter is inherited by everything COMMAND starts.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NOCLONE3_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NOCLONE3_ARCH AUDIT_ARCH_AARCH64
#else
#error "noclone3: add this architecture's AUDIT_ARCH"
#endif

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: noclone3 COMMAND [ARG...]\n");
    return 2;
  }
  struct sock_filter insns[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NOCLONE3_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof insns / sizeof insns[0], .filter = insns};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
    fprintf(stderr, "noclone3: install the seccomp filter: %s (needs root)\n", strerror(errno));
    return 125;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "noclone3: exec %s: %s\n", argv[1], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
