/*
 * ROOTFS, MOUNT, PIVOT, MASK_PATH, READONLY_PATH and ROOT_READONLY.
 *
 * Every mount inside the container lands on an fd resolved inside the root (fs_resolve.c),
 * named to mount(2) as /proc/self/fd/N. After mounting, the target is resolved again: the old
 * fd still names the directory underneath the new mount, and a remount or mount_setattr must
 * reach the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs_resolve.h"

#define TH_PROPAGATION (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE)
#define TH_ATIME (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

/*
 * Flags a bind remount must keep. In a user namespace the kernel locks nosuid, nodev, noexec
 * and the atime flags of mounts inherited from a more privileged namespace, and a remount that
 * drops one fails with EPERM (mount_namespaces(7), "locked mounts"). Keeping what the mount
 * already has is the simple safe rule; atime is only kept when the caller asks for none.
 * statfs f_flags reports the per-mount flags (ST_*, statvfs(3)); fstatfs works on O_PATH fds.
 */
static unsigned long th_kept_flags(int fd, unsigned long wanted) {
  struct statfs s;
  unsigned long f = 0;
  if (fstatfs(fd, &s) < 0) return 0;
  if (s.f_flags & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flags & ST_NODEV) f |= MS_NODEV;
  if (s.f_flags & ST_NOEXEC) f |= MS_NOEXEC;
  if (!(wanted & TH_ATIME)) {
    if (s.f_flags & ST_NOATIME) f |= MS_NOATIME;
    if (s.f_flags & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (s.f_flags & ST_RELATIME) f |= MS_RELATIME;
  }
  return f;
}

/*
 * Make the mount holding path (path itself when it is a mount point, as with an overlay mounted
 * at the rootfs) private, walking up until statx reports a mount root (STATX_ATTR_MOUNT_ROOT).
 */
static int th_parent_private(struct th_child *c, const char *path) {
  char *a = c->path_a;
  size_t n = th_strlen(path);
  if (n >= PATH_MAX) return th_fail(c, ENAMETOOLONG, "rootfs ", path, NULL);
  for (size_t i = 0; i <= n; i++) a[i] = path[i];
  for (;;) {
    struct statx st;
    if (statx(AT_FDCWD, a, 0, 0, &st) < 0)
      return th_fail(c, errno, "find the mount holding the rootfs: stat ", a, NULL);
    if ((st.stx_attributes & STATX_ATTR_MOUNT_ROOT) || (a[0] == '/' && a[1] == '\0')) {
      if (mount(NULL, a, NULL, MS_PRIVATE, NULL) < 0)
        return th_fail(c, errno, "make ", a, " (the mount holding the rootfs) private", NULL);
      return 0;
    }
    char *slash = NULL;
    for (char *p = a; *p; p++)
      if (*p == '/' && p[1] != '\0') slash = p;
    if (slash == NULL || slash == a)
      a[1] = '\0', a[0] = '/';
    else
      *slash = '\0';
  }
}

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* Files under /proc that lxcfs-style tools emulate by bind-mounting over them; runc accepts
   exactly these (libcontainer/rootfs_linux.go, checkProcMount) and so do we. */
static const char *const th_proc_safe[] = {
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
};

static int th_streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/*
 * Refuse a mount whose destination, as it really resolved inside the root (fd), lies inside
 * /proc: a mount over /proc/sys or /proc/self/attr would undo the masks and read-only paths
 * that keep the container away from the host's kernel knobs. The check is on the resolved path,
 * so an image symlink (/x -> /proc/sys/kernel) cannot get around it. /proc itself takes only a
 * procfs (is_proc: a new proc mount or a bind of one).
 */
static int th_check_proc_dest(struct th_child *c, int fd, const char *dst, int is_proc) {
  char *root = c->path_a, *at = c->path_b, l[32];
  ssize_t rn = readlink(th_fd_path(l, c->root_fd), root, PATH_MAX - 1);
  if (rn < 0) return th_fail(c, errno, "check proc-safety of ", dst, " mount: read the rootfs path", NULL);
  ssize_t n = readlink(th_fd_path(l, fd), at, PATH_MAX - 1);
  if (n < 0) return th_fail(c, errno, "check proc-safety of ", dst, " mount: read the resolved path", NULL);
  if (rn == PATH_MAX - 1 || n == PATH_MAX - 1)
    return th_fail(c, ENAMETOOLONG, "check proc-safety of ", dst, " mount", NULL);
  root[rn] = '\0';
  at[n] = '\0';
  if (rn == 1) rn = 0; /* a rootfs of "/": every path is already container-relative */
  for (ssize_t i = 0; i < rn; i++)
    if (root[i] != at[i])
      return th_fail_complete(c, EXDEV, "check proc-safety of ", dst, " mount: it resolved to ", at,
                              ", outside the rootfs", NULL);
  const char *rel = at + rn;
  if (*rel != '\0' && *rel != '/')
    return th_fail_complete(c, EXDEV, "check proc-safety of ", dst, " mount: it resolved to ", at,
                            ", outside the rootfs", NULL);
  const char *p = "/proc";
  const char *r = rel;
  while (*p && *p == *r) p++, r++;
  if (*p != '\0' || (*r != '\0' && *r != '/')) return 0;
  if (*r == '\0') {
    if (is_proc) return 0;
    return th_fail_complete(c, EPERM, "check proc-safety of ", dst, " mount: ", rel,
                            " cannot be mounted because it is not of type proc", NULL);
  }
  for (unsigned i = 0; i < sizeof th_proc_safe / sizeof th_proc_safe[0]; i++)
    if (th_streq(rel, th_proc_safe[i])) return 0;
  return th_fail_complete(c, EPERM, "check proc-safety of ", dst, " mount: ", rel,
                          " cannot be mounted because it is inside /proc", NULL);
}

/* A bind source that is a procfs, for a bind onto /proc (runc accepts that too). */
static int th_is_procfs(const char *path, int fd) {
  struct statfs s;
  int rc = fd >= 0 ? fstatfs(fd, &s) : statfs(path, &s);
  return rc == 0 && s.f_type == PROC_SUPER_MAGIC;
}

/* The plan's PIVOT only chroots: the container shares the runtime's mount namespace (plan.c). */
static int th_chroot_only(const struct th_child *c) {
  for (uint32_t i = 0; i < c->plan->n; i++)
    if (c->plan->ops[i].code == TH_OP_PIVOT) return c->plan->ops[i].f[TH_PIVOT_MODE].u32 == TH_PIVOT_CHROOT;
  return 0;
}

int th_op_rootfs(struct th_child *c, const struct th_op *op) {
  const char *path = op->f[TH_ROOTFS_PATH].s;
  uint64_t prop = op->f[TH_ROOTFS_PROPAGATION].u64;
  char h[TH_NUM_BYTES];
  if (th_chroot_only(c)) {
    /* In the runtime's mount namespace: no propagation change and no bind of the rootfs, which
       would stay in the runtime's mount table; the mounts go under the rootfs as they are. */
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return th_fail(c, errno, "open the rootfs ", path, NULL);
    c->root_fd = fd;
    c->rootfs_path = path;
    return 0;
  }
  if (prop != 0 && mount(NULL, "/", NULL, prop, NULL) < 0)
    return th_fail(c, errno, "set the propagation of / to ", th_hexs(h, prop), NULL);
  /*
   * pivot_root(2) fails with EINVAL when the new root, or the mount under it, is shared, and a
   * bind of a shared mount is shared. So when "/" may be shared (we made it so, or left the
   * host's propagation alone), make the mount holding the rootfs private before binding, as
   * runc does (rootfsParentMountPrivate). This changes our mount namespace only.
   */
  if ((prop == 0 || (prop & MS_SHARED)) && th_parent_private(c, path) < 0) return -1;
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return th_fail(c, errno, "bind the rootfs ", path, " onto itself", NULL);
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return th_fail(c, errno, "open the rootfs ", path, NULL);
  c->root_fd = fd;
  c->rootfs_path = path;
  return 0;
}

int th_op_mount(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  const char *src = f[TH_MOUNT_SOURCE].s, *dst = f[TH_MOUNT_DESTINATION].s, *type = f[TH_MOUNT_FSTYPE].s;
  unsigned long flags = f[TH_MOUNT_FLAGS].u64 & ~(uint64_t)TH_PROPAGATION;
  uint64_t prop = f[TH_MOUNT_PROPAGATION].u64, set = f[TH_MOUNT_REC_ATTR_SET].u64, clr = f[TH_MOUNT_REC_ATTR_CLR].u64;
  int bind = (flags & MS_BIND) != 0;
  const char *how = bind ? " (bind)" : " (type ";
  const char *how_end = bind ? "" : ")";
  const char *shown_type = bind ? "" : type;
  char h[TH_NUM_BYTES], h2[TH_NUM_BYTES], tgt[32];

  enum th_create_kind kind = f[TH_MOUNT_KIND].u32 == TH_MOUNT_KIND_FILE ? TH_CREATE_FILE : TH_CREATE_DIR;
  if (f[TH_MOUNT_KIND].u32 == TH_MOUNT_KIND_AUTO) {
    struct stat st;
    if (stat(src, &st) < 0) return th_fail(c, errno, "mount ", src, " to ", dst, how, shown_type, how_end, NULL);
    kind = S_ISDIR(st.st_mode) ? TH_CREATE_DIR : TH_CREATE_FILE;
  }
  int fd = th_resolve_create(c, dst, kind);
  if (fd < 0) return th_fail(c, -fd, "create mount point ", dst, " in rootfs", NULL);
  int is_proc = bind ? th_is_procfs(src, -1) : th_streq(type, "proc");
  int bad = th_check_proc_dest(c, fd, dst, is_proc);
  if (bad < 0) {
    close(fd);
    return bad;
  }
  int rc;
  if (bind)
    rc = mount(src, th_fd_path(tgt, fd), NULL, MS_BIND | (flags & MS_REC), NULL);
  else
    rc = mount(src[0] ? src : NULL, th_fd_path(tgt, fd), type[0] ? type : NULL, flags,
               f[TH_MOUNT_DATA].len ? f[TH_MOUNT_DATA].s : NULL);
  int e = errno;
  close(fd);
  if (rc < 0) return th_fail(c, e, "mount ", src, " to ", dst, how, shown_type, how_end, NULL);

  fd = th_resolve(c, dst, O_PATH, 0);
  if (fd < 0) return th_fail(c, -fd, "open ", dst, " after mounting it", NULL);
  th_fd_path(tgt, fd);
  unsigned long rest = flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
  if (bind && rest != 0 && mount(NULL, tgt, NULL, MS_BIND | MS_REMOUNT | rest | th_kept_flags(fd, rest), NULL) < 0) {
    rc = th_fail(c, errno, "remount ", dst, " (bind, flags ", th_hexs(h, rest), ")", NULL);
    goto out;
  }
  static const unsigned long kinds[] = {MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE};
  for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (!(prop & kinds[i])) continue;
    if (mount(NULL, tgt, NULL, kinds[i] | (prop & MS_REC), NULL) < 0) {
      rc = th_fail(c, errno, "set the propagation of ", dst, " to ", th_hexs(h, kinds[i] | (prop & MS_REC)), NULL);
      goto out;
    }
  }
  if ((set | clr) != 0) {
    struct mount_attr attr = {.attr_set = set, .attr_clr = clr};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
      rc = th_fail(c, errno, "set mount attributes of ", dst, " (set ", th_hexs(h, set), ", clear ", th_hexs(h2, clr),
                   ")", NULL);
      goto out;
    }
  }
  rc = 0;
out:
  close(fd);
  return rc;
}

/*
 * pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching it leaves
 * the new root alone, with no directory to hold the old one (pivot_root(2), NOTES). The old
 * root is made a slave first so the detach cannot propagate back to the host.
 */
static int th_pivot_root(struct th_child *c) {
  const char *path = c->rootfs_path;
  int old = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (old < 0) return th_fail(c, errno, "open the old root", NULL);
  int rc = 0;
  if (fchdir(c->root_fd) < 0)
    rc = th_fail(c, errno, "chdir to the rootfs ", path, NULL);
  else if (syscall(SYS_pivot_root, ".", ".") < 0)
    rc = th_fail(c, errno, "pivot_root to ", path, NULL);
  else if (fchdir(old) < 0)
    rc = th_fail(c, errno, "chdir to the old root", NULL);
  else if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    rc = th_fail(c, errno, "make the old root a slave", NULL);
  else if (umount2(".", MNT_DETACH) < 0)
    rc = th_fail(c, errno, "detach the old root", NULL);
  close(old);
  return rc;
}

/* --no-pivot: for roots pivot_root cannot take (e.g. a ramfs root); chroot is escapable, hence opt-in. */
static int th_move_chroot(struct th_child *c) {
  const char *path = c->rootfs_path;
  if (chdir(path) < 0) return th_fail(c, errno, "chdir to the rootfs ", path, NULL);
  if (mount(path, "/", NULL, MS_MOVE, NULL) < 0) return th_fail(c, errno, "move the rootfs ", path, " to /", NULL);
  if (chroot(".") < 0) return th_fail(c, errno, "chroot to ", path, NULL);
  return 0;
}

/* No mount namespace of our own: change the root of this process only (runc's chroot case). */
static int th_chroot(struct th_child *c) {
  const char *path = c->rootfs_path;
  if (fchdir(c->root_fd) < 0) return th_fail(c, errno, "chdir to the rootfs ", path, NULL);
  if (chroot(".") < 0) return th_fail(c, errno, "chroot to ", path, NULL);
  return 0;
}

int th_op_pivot(struct th_child *c, const struct th_op *op) {
  uint32_t mode = op->f[TH_PIVOT_MODE].u32;
  int rc = mode == TH_PIVOT_CHROOT ? th_chroot(c) : mode == TH_PIVOT_MOVE_CHROOT ? th_move_chroot(c) : th_pivot_root(c);
  if (rc < 0) return rc;
  if (chdir("/") < 0) return th_fail(c, errno, "chdir to / in the new root", NULL);
  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return th_fail(c, errno, "open the new root", NULL);
  close(c->root_fd);
  c->root_fd = fd;
  return 0;
}

int th_op_mask_path(struct th_child *c, const struct th_op *op) {
  const char *path = op->f[TH_MASK_PATH_PATH].s;
  char tgt[32], src[32];
  int fd = th_resolve(c, path, O_PATH, 0);
  if (fd == -ENOENT) return 0;
  if (fd < 0) return th_fail(c, -fd, "mask ", path, NULL);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = th_fail(c, errno, "mask ", path, ": stat", NULL);
  } else if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", th_fd_path(tgt, fd), "tmpfs", MS_RDONLY, NULL) < 0)
      rc = th_fail(c, errno, "mask ", path, " (read-only tmpfs)", NULL);
  } else {
    /* The container's /dev/null must really be the null device, or the mask would expose
       whatever the image put there (the runc CVE-2025-52565 class). */
    int null = th_resolve(c, "/dev/null", O_PATH, 0);
    struct stat ns;
    if (null < 0)
      rc = th_fail(c, -null, "mask ", path, ": open /dev/null", NULL);
    else if (fstat(null, &ns) < 0 || !S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))
      rc = th_fail_complete(c, EPERM, "mask ", path, ": /dev/null in the container is not the null device", NULL);
    else if (mount(th_fd_path(src, null), th_fd_path(tgt, fd), NULL, MS_BIND, NULL) < 0)
      rc = th_fail(c, errno, "mask ", path, " (bind /dev/null)", NULL);
    if (null >= 0) close(null);
  }
  close(fd);
  return rc;
}

int th_op_readonly_path(struct th_child *c, const struct th_op *op) {
  const char *path = op->f[TH_READONLY_PATH_PATH].s;
  char tgt[32];
  int fd = th_resolve(c, path, O_PATH, 0);
  if (fd == -ENOENT) return 0;
  if (fd < 0) return th_fail(c, -fd, "make ", path, " read-only", NULL);
  int rc = mount(th_fd_path(tgt, fd), tgt, NULL, MS_BIND | MS_REC, NULL), e = errno;
  close(fd);
  if (rc < 0) return th_fail(c, e, "make ", path, " read-only (bind)", NULL);
  fd = th_resolve(c, path, O_PATH, 0);
  if (fd < 0) return th_fail(c, -fd, "make ", path, " read-only: reopen", NULL);
  rc = mount(NULL, th_fd_path(tgt, fd), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | th_kept_flags(fd, MS_RDONLY),
             NULL);
  e = errno;
  close(fd);
  if (rc < 0) return th_fail(c, e, "make ", path, " read-only (remount)", NULL);
  return 0;
}

int th_op_root_readonly(struct th_child *c, const struct th_op *op) {
  (void)op;
  if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | th_kept_flags(c->root_fd, MS_RDONLY), NULL) < 0)
    return th_fail(c, errno, "remount / read-only", NULL);
  return 0;
}

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

/*
 * An idmapped bind mount: the runtime made the detached tree (tsrun_idmapped_tree), we move it
 * straight onto the O_PATH fd of the mount point resolved inside the rootfs.
 */
int th_op_idmap_mount(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  const char *src = f[TH_IDMAP_MOUNT_SOURCE].s, *dst = f[TH_IDMAP_MOUNT_DESTINATION].s;
  int tree = (int)f[TH_IDMAP_MOUNT_TREE_FD].u32;
  enum th_create_kind kind = f[TH_IDMAP_MOUNT_KIND].u32 == TH_MOUNT_KIND_FILE ? TH_CREATE_FILE : TH_CREATE_DIR;
  if (f[TH_IDMAP_MOUNT_KIND].u32 == TH_MOUNT_KIND_AUTO) {
    struct stat st;
    if (fstat(tree, &st) < 0) return th_fail(c, errno, "mount ", src, " to ", dst, " (idmapped bind)", NULL);
    kind = S_ISDIR(st.st_mode) ? TH_CREATE_DIR : TH_CREATE_FILE;
  }
  int fd = th_resolve_create(c, dst, kind);
  if (fd < 0) return th_fail(c, -fd, "create mount point ", dst, " in rootfs", NULL);
  int bad = th_check_proc_dest(c, fd, dst, th_is_procfs(src, tree));
  if (bad < 0) {
    close(fd);
    close(tree);
    return bad;
  }
  int rc = 0;
  if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    rc = th_fail(c, errno, "mount ", src, " to ", dst, " (idmapped bind, move_mount)", NULL);
  close(fd);
  close(tree);
  return rc;
}
