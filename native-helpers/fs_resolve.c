/*
 * Safe resolution inside the container root (see fs_resolve.h).
 */
#include "fs_resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Symlinks followed while creating one path, like the kernel's MAXSYMLINKS. */
#define TH_MAX_LINKS 40
/* openat2 returns EAGAIN with RESOLVE_IN_ROOT when a rename raced with the lookup. */
#define TH_MAX_RETRIES 16

static int th_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
  for (int i = 0;; i++) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return (int)fd;
    if (errno != EAGAIN || i >= TH_MAX_RETRIES) return -errno;
  }
}

int th_resolve(struct th_child *c, const char *path, int flags, uint64_t extra_resolve) {
  /* Without a ROOTFS op the process's own root is the container's root. */
  if (c->root_fd < 0)
    return th_openat2(AT_FDCWD, path, (uint64_t)flags | O_CLOEXEC, RESOLVE_NO_MAGICLINKS | extra_resolve);
  return th_openat2(c->root_fd, path, (uint64_t)flags | O_CLOEXEC,
                    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve);
}

static int th_copy(char *dst, const char *src) {
  size_t n = strlen(src);
  if (n >= PATH_MAX) return -ENAMETOOLONG;
  memcpy(dst, src, n + 1);
  return 0;
}

/*
 * a holds the path; the symlink is the component a[start..end). Rewrite a to the link's target
 * followed by the rest of the path; a relative target stays relative to the link's directory.
 */
static int th_splice_link(char *a, char *b, int dirfd, size_t start, size_t end) {
  char keep = a[end];
  a[end] = '\0';
  ssize_t n = readlinkat(dirfd, a + start, b, PATH_MAX);
  a[end] = keep;
  if (n < 0) return errno == EINVAL ? -EEXIST : -errno; /* EINVAL: there, but not a symlink */
  if (n >= PATH_MAX) return -ENAMETOOLONG;
  size_t prefix = b[0] == '/' ? 0 : start, rest = strlen(a + end);
  if (prefix + (size_t)n + 1 + rest >= PATH_MAX) return -ENAMETOOLONG;
  memmove(a + prefix + n + 1, a + end, rest + 1);
  memcpy(a + prefix, b, (size_t)n);
  a[prefix + n] = '/';
  return 0;
}

int th_resolve_create(struct th_child *c, const char *path, enum th_create_kind kind) {
  char *a = c->path_a;
  int rc = th_copy(a, path), parent = -1, links = 0, steps = 0;
  if (rc < 0) return rc;
  size_t pos = 0;
  for (;;) {
    while (a[pos] == '/') pos++;
    if (a[pos] == '\0') { /* every component exists: the root itself, or a path ending in '/' */
      if (parent >= 0) close(parent);
      return th_resolve(c, a, O_PATH, 0);
    }
    if (++steps > 4 * PATH_MAX) {
      rc = -ELOOP;
      break;
    }
    size_t start = pos, end = pos;
    while (a[end] != '\0' && a[end] != '/') end++;
    size_t after = end;
    while (a[after] == '/') after++;
    int last = a[after] == '\0';
    char keep = a[end];
    a[end] = '\0';
    int fd = th_resolve(c, a, O_PATH, 0);
    if (fd >= 0) {
      a[end] = keep;
      if (parent >= 0) close(parent);
      if (last) return fd;
      parent = fd;
      pos = end;
      continue;
    }
    if (fd != -ENOENT) {
      rc = fd;
      break;
    }
    int dirfd = parent >= 0 ? parent : c->root_fd >= 0 ? c->root_fd : AT_FDCWD;
    int made;
    if (!last || kind == TH_CREATE_DIR) {
      made = mkdirat(dirfd, a + start, 0755);
    } else {
      made = openat(dirfd, a + start, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
      if (made >= 0) made = close(made);
    }
    a[end] = keep;
    if (made == 0 || errno != EEXIST) {
      if (made < 0) {
        rc = -errno;
        break;
      }
      continue; /* created: resolve the same component again */
    }
    /* EEXIST after ENOENT: a dangling symlink. Follow it by rewriting the path, then start over. */
    if (++links > TH_MAX_LINKS) {
      rc = -ELOOP;
      break;
    }
    rc = th_splice_link(a, c->path_b, dirfd, start, end);
    if (rc < 0) break;
    if (parent >= 0) close(parent);
    parent = -1;
    pos = 0;
  }
  if (parent >= 0) close(parent);
  return rc;
}

int th_resolve_parent(struct th_child *c, const char *path, const char **name) {
  char *b = c->path_b;
  int rc = th_copy(b, path);
  if (rc < 0) return rc;
  size_t n = strlen(b);
  while (n > 1 && b[n - 1] == '/') b[--n] = '\0';
  char *slash = strrchr(b, '/');
  const char *base = slash ? slash + 1 : b;
  size_t bl = strlen(base);
  if (bl == 0 || bl > NAME_MAX || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) return -EINVAL;
  memcpy(c->name_buf, base, bl + 1);
  *name = c->name_buf;
  if (slash == NULL)
    b[0] = '\0';
  else if (slash == b)
    b[1] = '\0';
  else
    *slash = '\0';
  /* b is copied into path_a before th_resolve_create uses path_b again. */
  return th_resolve_create(c, b[0] ? b : "/", TH_CREATE_DIR);
}
