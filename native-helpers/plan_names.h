/*
 * Name tables for decoder messages; included by plan.c only. Not generated: plan_ops.h has no
 * field names, so they are keyed here by the generated TH_<OP>_<FIELD> constants.
 */
#ifndef TSRUN_PLAN_NAMES_H
#define TSRUN_PLAN_NAMES_H

#include <sched.h>
#include <stdint.h>

#include "plan_ops.h"

/*
 * Field names for messages, indexed by the generated TH_<OP>_<FIELD> constants so a renamed or
 * removed field breaks the build. decode_test checks that every op has exactly as many names
 * as th_op_fields has kinds, so an added field cannot go unnamed unnoticed.
 */
static const char *const th_field_names[TH_OP_MAX + 1][TH_OP_MAX_FIELDS] = {
    [TH_OP_CLOSE_FDS] = {[TH_CLOSE_FDS_PRESERVE] = "preserve"},
    [TH_OP_NAMESPACE] = {[TH_NAMESPACE_NSTYPE] = "nstype", [TH_NAMESPACE_PATH] = "path"},
    [TH_OP_SYNC] = {[TH_SYNC_STAGE] = "stage"},
    [TH_OP_ROOTFS] = {[TH_ROOTFS_PATH] = "path", [TH_ROOTFS_PROPAGATION] = "propagation"},
    [TH_OP_MOUNT] = {[TH_MOUNT_SOURCE] = "source",
                     [TH_MOUNT_DESTINATION] = "destination",
                     [TH_MOUNT_FSTYPE] = "fstype",
                     [TH_MOUNT_FLAGS] = "flags",
                     [TH_MOUNT_PROPAGATION] = "propagation",
                     [TH_MOUNT_DATA] = "data",
                     [TH_MOUNT_KIND] = "kind",
                     [TH_MOUNT_REC_ATTR_SET] = "rec_attr_set",
                     [TH_MOUNT_REC_ATTR_CLR] = "rec_attr_clr"},
    [TH_OP_DEVICE] = {[TH_DEVICE_PATH] = "path",
                      [TH_DEVICE_TYPE] = "type",
                      [TH_DEVICE_MAJOR] = "major",
                      [TH_DEVICE_MINOR] = "minor",
                      [TH_DEVICE_MODE] = "mode",
                      [TH_DEVICE_UID] = "uid",
                      [TH_DEVICE_GID] = "gid",
                      [TH_DEVICE_BIND] = "bind"},
    [TH_OP_SYMLINK] = {[TH_SYMLINK_TARGET] = "target", [TH_SYMLINK_LINKPATH] = "linkpath"},
    [TH_OP_HOOK] = {[TH_HOOK_PHASE] = "phase",
                    [TH_HOOK_PATH] = "path",
                    [TH_HOOK_ARGS] = "args",
                    [TH_HOOK_ENV] = "env",
                    [TH_HOOK_TIMEOUT] = "timeout"},
    [TH_OP_PIVOT] = {[TH_PIVOT_MODE] = "mode"},
    [TH_OP_MASK_PATH] = {[TH_MASK_PATH_PATH] = "path"},
    [TH_OP_READONLY_PATH] = {[TH_READONLY_PATH_PATH] = "path"},
    [TH_OP_HOSTNAME] = {[TH_HOSTNAME_NAME] = "name"},
    [TH_OP_DOMAINNAME] = {[TH_DOMAINNAME_NAME] = "name"},
    [TH_OP_SYSCTL] = {[TH_SYSCTL_KEY] = "key", [TH_SYSCTL_VALUE] = "value"},
    [TH_OP_OOM_SCORE_ADJ] = {[TH_OOM_SCORE_ADJ_VALUE] = "value"},
    [TH_OP_RLIMIT] = {[TH_RLIMIT_RESOURCE] = "resource", [TH_RLIMIT_SOFT] = "soft", [TH_RLIMIT_HARD] = "hard"},
    [TH_OP_USER] =
        {[TH_USER_UID] = "uid", [TH_USER_GID] = "gid", [TH_USER_GROUPS] = "groups", [TH_USER_SETGROUPS] = "setgroups"},
    [TH_OP_UMASK] = {[TH_UMASK_MASK] = "mask"},
    [TH_OP_CWD] = {[TH_CWD_PATH] = "path"},
    [TH_OP_EXEC_FIFO] = {[TH_EXEC_FIFO_PATH] = "path"},
    [TH_OP_PROCESS] =
        {[TH_PROCESS_ARGS] = "args", [TH_PROCESS_ENV] = "env", [TH_PROCESS_DEFAULT_PATH] = "default_path"},
    [TH_OP_CAPS] = {[TH_CAPS_EFFECTIVE] = "effective",
                    [TH_CAPS_PERMITTED] = "permitted",
                    [TH_CAPS_INHERITABLE] = "inheritable",
                    [TH_CAPS_AMBIENT] = "ambient"},
    [TH_OP_SECCOMP] = {[TH_SECCOMP_FLAGS] = "flags", [TH_SECCOMP_FILTER] = "filter"},
    [TH_OP_SET_NAME] = {[TH_SET_NAME_NAME] = "name"},
    [TH_OP_CAPS_BOUNDING] = {[TH_CAPS_BOUNDING_BOUNDING] = "bounding"},
};

/* Namespace types a NAMESPACE op may name, with the names /proc/<pid>/ns uses. */
static const struct {
  uint32_t flag;
  const char *name;
} th_ns_types[] = {
    {CLONE_NEWUSER, "user"}, {CLONE_NEWNS, "mnt"},  {CLONE_NEWUTS, "uts"},       {CLONE_NEWIPC, "ipc"},
    {CLONE_NEWPID, "pid"},   {CLONE_NEWNET, "net"}, {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWTIME, "time"},
};

#endif
