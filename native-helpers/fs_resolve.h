/*
 * Paths inside the container root, resolved so that nothing in the image can redirect them to
 * the host: openat2(2) with RESOLVE_IN_ROOT treats the root fd as "/" for absolute symlinks and
 * "..", and RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd-style links (the CVE-2019-5736 and
 * CVE-2024-21626 classes). Missing components are created one at a time, each under a parent
 * fd that was itself resolved this way.
 */
#ifndef TSRUN_FS_RESOLVE_H
#define TSRUN_FS_RESOLVE_H

#include "child.h"

#pragma GCC visibility push(hidden)

/** What th_resolve_create makes of a missing last component. */
enum th_create_kind { TH_CREATE_DIR, TH_CREATE_FILE };

/** Open path inside the root (flags: O_PATH, O_WRONLY, ...; O_CLOEXEC added); fd or -errno. */
int th_resolve(struct th_child *c, const char *path, int flags, uint64_t extra_resolve);

/**
 * Open path inside the root as O_PATH, creating missing directories (0755) and, if the last
 * component is missing, a directory or an empty file (0644). A dangling symlink on the way is
 * followed and its target created, as runc's SecureJoin does. fd or -errno.
 */
int th_resolve_create(struct th_child *c, const char *path, enum th_create_kind kind);

/**
 * Open the parent directory of path inside the root (O_PATH, created if missing) and point *name
 * at the last component (in c->name_buf). fd or -errno.
 */
int th_resolve_parent(struct th_child *c, const char *path, const char **name);

#pragma GCC visibility pop

#endif
