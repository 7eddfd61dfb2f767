/*
 * DEVICE and SYMLINK: nodes created inside the rootfs, under a parent directory resolved with
 * fs_resolve.c so a symlink in the image cannot put them on the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs_resolve.h"

/* An empty file at name, with the host's device node path bound onto it. */
static int th_bind_device(struct th_child *c, int dir, const char *name, const char *path) {
  char tgt[32];
  int fd = openat(dir, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return th_fail(c, errno, "create the bind target for device ", path, NULL);
  close(fd);
  fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return th_fail(c, errno, "open the bind target for device ", path, NULL);
  int rc = mount(path, th_fd_path(tgt, fd), NULL, MS_BIND, NULL), e = errno;
  close(fd);
  if (rc < 0) return th_fail(c, e, "bind device ", path, " from the host", NULL);
  return 0;
}

static int th_make_device(struct th_child *c, const struct th_op *op, int dir, const char *name) {
  const struct th_field *f = op->f;
  const char *path = f[TH_DEVICE_PATH].s;
  uint32_t t = f[TH_DEVICE_TYPE].u32, mode = f[TH_DEVICE_MODE].u32 & 07777;
  mode_t fmt = t == 'b' ? S_IFBLK : t == 'p' ? S_IFIFO : S_IFCHR; /* 'u' (unbuffered) is a char device */
  char what[2] = {t == 'u' ? 'c' : (char)t, '\0'}, a[TH_NUM_BYTES], b[TH_NUM_BYTES];
  /* The node's mode is the plan's, not the plan's minus whatever umask is in force. */
  mode_t old = umask(0);
  int rc = mknodat(dir, name, fmt | mode, makedev(f[TH_DEVICE_MAJOR].u32, f[TH_DEVICE_MINOR].u32)), e = errno;
  umask(old);
  if (rc < 0 && e == EPERM) return th_bind_device(c, dir, name, path); /* no CAP_MKNOD (user ns) */
  if (rc < 0)
    return th_fail(c, e, "create device ", path, " (", what, " ", th_u64s(a, f[TH_DEVICE_MAJOR].u32), ":",
                   th_u64s(b, f[TH_DEVICE_MINOR].u32), ")", NULL);
  if (fchownat(dir, name, f[TH_DEVICE_UID].u32, f[TH_DEVICE_GID].u32, AT_SYMLINK_NOFOLLOW) < 0)
    return th_fail(c, errno, "chown device ", path, " to ", th_u64s(a, f[TH_DEVICE_UID].u32), ":",
                   th_u64s(b, f[TH_DEVICE_GID].u32), NULL);
  /* mknod ignores some mode bits on some filesystems; chmod states them outright. The node was
     just made by us, so following a symlink here is not a concern. */
  if (fchmodat(dir, name, mode, 0) < 0) return th_fail(c, errno, "chmod device ", path, NULL);
  return 0;
}

int th_op_device(struct th_child *c, const struct th_op *op) {
  const char *path = op->f[TH_DEVICE_PATH].s, *name;
  int dir = th_resolve_parent(c, path, &name);
  if (dir < 0) return th_fail(c, -dir, "create the directory for device ", path, " in rootfs", NULL);
  int rc = 0;
  /* Replace whatever the image has there: a stale node or file must not stand in for the device. */
  if (unlinkat(dir, name, 0) < 0 && errno != ENOENT && (errno != EISDIR || unlinkat(dir, name, AT_REMOVEDIR) < 0))
    rc = th_fail(c, errno, "remove ", path, " before creating the device", NULL);
  else if (op->f[TH_DEVICE_BIND].u32 != 0)
    rc = th_bind_device(c, dir, name, path);
  else
    rc = th_make_device(c, op, dir, name);
  close(dir);
  return rc;
}

int th_op_symlink(struct th_child *c, const struct th_op *op) {
  const char *target = op->f[TH_SYMLINK_TARGET].s, *link = op->f[TH_SYMLINK_LINKPATH].s, *name;
  int dir = th_resolve_parent(c, link, &name);
  if (dir < 0) return th_fail(c, -dir, "create the directory for symlink ", link, " in rootfs", NULL);
  int rc = symlinkat(target, dir, name), e = errno;
  close(dir);
  /* Anything already at linkpath wins: the image may provide its own /dev/fd and friends. */
  if (rc < 0 && e != EEXIST) return th_fail(c, e, "create symlink ", link, " -> ", target, NULL);
  return 0;
}
