/* Namespace names for decoder messages; included by plan.c only (field names come from plan_ops.h). */
#ifndef TSRUN_PLAN_NAMES_H
#define TSRUN_PLAN_NAMES_H

#include <sched.h>
#include <stdint.h>

#include "plan_ops.h"

/* Namespace types a NAMESPACE op may name, with the names /proc/<pid>/ns uses. */
static const struct {
  uint32_t flag;
  const char *name;
} th_ns_types[] = {
    {CLONE_NEWUSER, "user"}, {CLONE_NEWNS, "mnt"},  {CLONE_NEWUTS, "uts"},       {CLONE_NEWIPC, "ipc"},
    {CLONE_NEWPID, "pid"},   {CLONE_NEWNET, "net"}, {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWTIME, "time"},
};

#endif
