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

/* What a failing MOUNT's messages say about it: " (bind)" or " (type <fstype>)". */
struct th_mount_desc {
  const char *src, *dst, *how, *type, *how_end;
  int bind;
};

static struct th_mount_desc th_mount_describe(const struct th_op *op) {
  const struct th_field *f = op->f;
  struct th_mount_desc d = {f[TH_MOUNT_SOURCE].s,
                            f[TH_MOUNT_DESTINATION].s,
                            " (type ",
                            f[TH_MOUNT_FSTYPE].s,
                            ")",
                            (f[TH_MOUNT_FLAGS].u64 & MS_BIND) != 0};
  if (d.bind) d.how = " (bind)", d.type = "", d.how_end = "";
  return d;
}

/* Resolve (creating it) and check a MOUNT's mount point; the O_PATH fd, or negative after th_fail. */
static int th_mount_point(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  struct th_mount_desc d = th_mount_describe(op);
  enum th_create_kind kind = f[TH_MOUNT_KIND].u32 == TH_MOUNT_KIND_FILE ? TH_CREATE_FILE : TH_CREATE_DIR;
  if (f[TH_MOUNT_KIND].u32 == TH_MOUNT_KIND_AUTO) {
    struct stat st;
    if (stat(d.src, &st) < 0) return th_fail(c, errno, "mount ", d.src, " to ", d.dst, d.how, d.type, d.how_end, NULL);
    kind = S_ISDIR(st.st_mode) ? TH_CREATE_DIR : TH_CREATE_FILE;
  }
  int fd = th_resolve_create(c, d.dst, kind);
  if (fd < 0) return th_fail(c, -fd, "create mount point ", d.dst, " in rootfs", NULL);
  int is_proc = d.bind ? th_is_procfs(d.src, -1) : th_streq(d.type, "proc");
  int bad = th_check_proc_dest(c, fd, d.dst, is_proc);
  if (bad < 0) {
    close(fd);
    return bad;
  }
  return fd;
}

/*
 * What follows the mount itself: the flags of a bind (a bind remount), the propagation, and the
 * recursive attributes, on the mount point resolved again (the old fd names the directory
 * underneath the new mount). Through /proc/self/fd before pivot_root; by fd alone after it
 * (by_fd: a deferred mount, when the container's /proc may not be mounted yet), with
 * mount_setattr, which changes only the attributes it is given, so locked flags stay as they are.
 */
static int th_mount_finish(struct th_child *c, const struct th_op *op, int by_fd) {
  const struct th_field *f = op->f;
  struct th_mount_desc d = th_mount_describe(op);
  unsigned long flags = f[TH_MOUNT_FLAGS].u64 & ~(uint64_t)TH_PROPAGATION;
  uint64_t prop = f[TH_MOUNT_PROPAGATION].u64, set = f[TH_MOUNT_REC_ATTR_SET].u64, clr = f[TH_MOUNT_REC_ATTR_CLR].u64;
  char h[TH_NUM_BYTES], h2[TH_NUM_BYTES], tgt[32];
  int rc;
  int fd = th_resolve(c, d.dst, O_PATH, 0);
  if (fd < 0) return th_fail(c, -fd, "open ", d.dst, " after mounting it", NULL);
  th_fd_path(tgt, fd);
  unsigned long rest = flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
  if (d.bind && rest != 0) {
    if (by_fd) {
      static const unsigned long ms[] = {MS_RDONLY,  MS_NOSUID,     MS_NODEV,    MS_NOEXEC,
                                         MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME};
      static const uint64_t at[] = {MOUNT_ATTR_RDONLY,   MOUNT_ATTR_NOSUID,     MOUNT_ATTR_NODEV,
                                    MOUNT_ATTR_NOEXEC,   MOUNT_ATTR_NOATIME,    MOUNT_ATTR_NODIRATIME,
                                    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME};
      struct mount_attr attr = {0};
      for (unsigned i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (rest & ms[i]) attr.attr_set |= at[i];
      if (attr.attr_set & MOUNT_ATTR__ATIME) attr.attr_clr |= MOUNT_ATTR__ATIME;
      rc = attr.attr_set == 0 ? 0 : (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
    } else {
      rc = mount(NULL, tgt, NULL, MS_BIND | MS_REMOUNT | rest | th_kept_flags(fd, rest), NULL);
    }
    if (rc < 0) {
      rc = th_fail(c, errno, "remount ", d.dst, " (bind, flags ", th_hexs(h, rest), ")", NULL);
      goto out;
    }
  }
  static const unsigned long kinds[] = {MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE};
  for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (!(prop & kinds[i])) continue;
    struct mount_attr attr = {.propagation = kinds[i]};
    rc = by_fd ? (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | ((prop & MS_REC) ? AT_RECURSIVE : 0), &attr,
                              sizeof attr)
               : mount(NULL, tgt, NULL, kinds[i] | (prop & MS_REC), NULL);
    if (rc < 0) {
      rc = th_fail(c, errno, "set the propagation of ", d.dst, " to ", th_hexs(h, kinds[i] | (prop & MS_REC)), NULL);
      goto out;
    }
  }
  if ((set | clr) != 0) {
    struct mount_attr attr = {.attr_set = set, .attr_clr = clr};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
      rc = th_fail(c, errno, "set mount attributes of ", d.dst, " (set ", th_hexs(h, set), ", clear ", th_hexs(h2, clr),
                   ")", NULL);
      goto out;
    }
  }
  rc = 0;
out:
  close(fd);
  return rc;
}

int th_op_mount(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  struct th_mount_desc d = th_mount_describe(op);
  unsigned long flags = f[TH_MOUNT_FLAGS].u64 & ~(uint64_t)TH_PROPAGATION;
  char tgt[32];
  int fd = th_mount_point(c, op);
  if (fd < 0) return fd;
  int rc;
  if (d.bind)
    rc = mount(d.src, th_fd_path(tgt, fd), NULL, MS_BIND | (flags & MS_REC), NULL);
  else
    rc = mount(d.src[0] ? d.src : NULL, th_fd_path(tgt, fd), d.type[0] ? d.type : NULL, flags,
               f[TH_MOUNT_DATA].len ? f[TH_MOUNT_DATA].s : NULL);
  int e = errno;
  close(fd);
  if (rc < 0) return th_fail(c, e, "mount ", d.src, " to ", d.dst, d.how, d.type, d.how_end, NULL);
  return th_mount_finish(c, op, 0);
}

/*
 * Pivot-first (th_birth_init): the intermediate does the mounts, but it is not in the container's
 * pid namespace, and a procfs shows the pid namespace of the task that mounts it. So proc mounts,
 * and cgroup filesystems (their root is the mounting task's cgroup namespace, which init creates
 * after joining its cgroup), wait for init; so does every mount on or under one of them, to keep
 * the plan's order there. Destinations are normalized by the runtime (containerPath).
 */
static const char *th_mount_dest(const struct th_op *op) {
  return op->code == TH_OP_MOUNT ? op->f[TH_MOUNT_DESTINATION].s : op->f[TH_IDMAP_MOUNT_DESTINATION].s;
}

static int th_path_under(const char *p, const char *dir) {
  if (dir[0] == '/' && dir[1] == '\0') return 1;
  while (*dir && *dir == *p) dir++, p++;
  return *dir == '\0' && (*p == '\0' || *p == '/');
}

/* A mount on or under an earlier deferred one: its mount point exists only once that is mounted. */
static int th_under_deferred(const struct th_child *c, const struct th_op *op) {
  for (unsigned k = 0; k < c->n_deferred; k++)
    if (th_path_under(th_mount_dest(op), th_mount_dest(c->deferred[k].op))) return 1;
  return 0;
}

int th_mount_must_defer(const struct th_child *c, const struct th_op *op) {
  if (op->code == TH_OP_MOUNT && !(op->f[TH_MOUNT_FLAGS].u64 & MS_BIND)) {
    const char *t = op->f[TH_MOUNT_FSTYPE].s;
    if (th_streq(t, "proc") || th_streq(t, "cgroup") || th_streq(t, "cgroup2")) return 1;
  }
  return th_under_deferred(c, op);
}

static int th_idmap_point(struct th_child *c, const struct th_op *op);

/*
 * In the intermediate, before pivot_root: everything of the mount that needs the host's view.
 * A bind's source, a host path, is cloned into a detached tree (open_tree), since after
 * pivot_root it cannot be named. A mount point that exists now (not under another deferred
 * mount) is resolved, created and checked now, while /proc/self/fd, which the check reads, is
 * there; the others are resolved by init once the mount they lie in is there. Init gets the fds
 * by the clone and closes them as it mounts.
 */
int th_mount_defer(struct th_child *c, const struct th_op *op) {
  char n[TH_NUM_BYTES];
  if (c->n_deferred >= TH_DEFER_MAX)
    return th_fail_complete(c, E2BIG, "more than ", th_u64s(n, TH_DEFER_MAX),
                            " mounts on or under proc and cgroup mounts in a shared pid namespace", NULL);
  int tree = -1, fd = -1, later = th_under_deferred(c, op);
  if (op->code == TH_OP_IDMAP_MOUNT) {
    tree = (int)op->f[TH_IDMAP_MOUNT_TREE_FD].u32;
    if (!later && (fd = th_idmap_point(c, op)) < 0) return fd;
  } else {
    struct th_mount_desc d = th_mount_describe(op);
    if (!later && (fd = th_mount_point(c, op)) < 0) return fd;
    if (d.bind) {
      unsigned rec = (op->f[TH_MOUNT_FLAGS].u64 & MS_REC) ? AT_RECURSIVE : 0;
      tree = (int)syscall(SYS_open_tree, AT_FDCWD, d.src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
      if (tree < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return th_fail(c, e, "mount ", d.src, " to ", d.dst, " (bind): clone the source (open_tree)", NULL);
      }
    }
  }
  c->deferred[c->n_deferred].op = op;
  c->deferred[c->n_deferred].dst_fd = fd;
  c->deferred[c->n_deferred].tree_fd = tree;
  c->n_deferred++;
  return 0;
}

/* In init: the mount point of a mount under another deferred one, resolved and checked now. */
static int th_deferred_point(struct th_child *c, const struct th_op *op, int tree) {
  const struct th_field *f = op->f;
  int idmap = op->code == TH_OP_IDMAP_MOUNT;
  uint32_t k = idmap ? f[TH_IDMAP_MOUNT_KIND].u32 : f[TH_MOUNT_KIND].u32;
  const char *src = idmap ? f[TH_IDMAP_MOUNT_SOURCE].s : f[TH_MOUNT_SOURCE].s, *dst = th_mount_dest(op);
  enum th_create_kind kind = k == TH_MOUNT_KIND_FILE ? TH_CREATE_FILE : TH_CREATE_DIR;
  struct stat st;
  if (k == TH_MOUNT_KIND_AUTO && tree >= 0) {
    if (fstat(tree, &st) < 0) return th_fail(c, errno, "mount ", src, " to ", dst, ": stat the source", NULL);
    kind = S_ISDIR(st.st_mode) ? TH_CREATE_DIR : TH_CREATE_FILE;
  }
  int fd = th_resolve_create(c, dst, kind);
  if (fd < 0) return th_fail(c, -fd, "create mount point ", dst, " in rootfs", NULL);
  int is_proc = tree >= 0 ? th_is_procfs("", tree) : th_streq(f[TH_MOUNT_FSTYPE].s, "proc");
  int bad = th_check_proc_dest(c, fd, dst, is_proc);
  if (bad < 0) {
    close(fd);
    return bad;
  }
  return fd;
}

/*
 * In init, after pivot_root: attach a deferred mount. A tree (a bind's clone, an idmapped tree)
 * is moved onto the mount point's fd; a new filesystem is mounted through the working directory,
 * since /proc/self/fd does not exist before the container's /proc is mounted.
 */
int th_mount_deferred(struct th_child *c, unsigned k) {
  const struct th_op *op = c->deferred[k].op;
  int fd = c->deferred[k].dst_fd, tree = c->deferred[k].tree_fd, rc, e;
  c->deferred[k].dst_fd = c->deferred[k].tree_fd = -1;
  if (fd < 0 && (fd = th_deferred_point(c, op, tree)) < 0) {
    if (tree >= 0) close(tree);
    return fd;
  }
  if (tree >= 0) {
    rc = (int)syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    e = errno;
    close(tree);
  } else {
    const struct th_field *f = op->f;
    const char *src = f[TH_MOUNT_SOURCE].s, *type = f[TH_MOUNT_FSTYPE].s;
    rc = fchdir(fd);
    if (rc == 0)
      rc = mount(src[0] ? src : NULL, ".", type[0] ? type : NULL, f[TH_MOUNT_FLAGS].u64 & ~(uint64_t)TH_PROPAGATION,
                 f[TH_MOUNT_DATA].len ? f[TH_MOUNT_DATA].s : NULL);
    e = errno;
    if (chdir("/") < 0 && rc == 0) rc = -1, e = errno;
  }
  close(fd);
  if (op->code == TH_OP_IDMAP_MOUNT) {
    if (rc < 0)
      return th_fail(c, e, "mount ", op->f[TH_IDMAP_MOUNT_SOURCE].s, " to ", th_mount_dest(op),
                     " (idmapped bind, move_mount)", NULL);
    return 0;
  }
  struct th_mount_desc d = th_mount_describe(op);
  if (rc < 0) return th_fail(c, e, "mount ", d.src, " to ", d.dst, d.how, d.type, d.how_end, NULL);
  return th_mount_finish(c, op, 1);
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

/* Resolve (creating it) and check an IDMAP_MOUNT's mount point; closes the tree on failure. */
static int th_idmap_point(struct th_child *c, const struct th_op *op) {
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
  return fd;
}

/*
 * An idmapped bind mount: the runtime made the detached tree (tsrun_idmapped_tree), we move it
 * straight onto the O_PATH fd of the mount point resolved inside the rootfs.
 */
int th_op_idmap_mount(struct th_child *c, const struct th_op *op) {
  const struct th_field *f = op->f;
  int tree = (int)f[TH_IDMAP_MOUNT_TREE_FD].u32;
  int fd = th_idmap_point(c, op);
  if (fd < 0) return fd;
  int rc = 0;
  if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    rc = th_fail(c, errno, "mount ", f[TH_IDMAP_MOUNT_SOURCE].s, " to ", f[TH_IDMAP_MOUNT_DESTINATION].s,
                 " (idmapped bind, move_mount)", NULL);
  close(fd);
  close(tree);
  return rc;
}
