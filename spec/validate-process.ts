/*
 * Semantic checks on `process`, shared by `validateSpec` (init) and `validateProcess`
 * (`exec --process`). Each returns the problem as "<field path>: <what is wrong>", or undefined.
 */
import { quote } from './describe';
import { idProblem } from './ids';
import { CAPABILITY_NUMBERS, RLIMIT_NUMBERS } from './names';
import type { Process } from './schema';

/** A check on one process; `at` is the field path of the process ("process" in config.json). */
export type ProcessCheck = (process: Process, at: string) => string | undefined;

const CAPABILITY_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'] as const;

/** The process checks by name, in the order they run. */
export const PROCESS_CHECKS = {
  // runc: "args must not be empty"; an empty args[0] would make execve fail with a worse message.
  'process-args': (process, at) => {
    const args = process.args ?? [];
    if (args.length === 0) return `${at}.args: must not be empty`;
    if (args[0] === '') return `${at}.args[0]: must not be empty`;
    return undefined;
  },
  // config.md: cwd MUST be an absolute path; runc refuses a relative one.
  'process-cwd': (process, at) =>
    process.cwd.startsWith('/') ? undefined : `${at}.cwd: must be an absolute path, got ${quote(process.cwd)}`,
  // runc refuses entries without "=", with an empty name, or with a NUL byte (execve cannot carry it).
  'process-env': (process, at) => {
    for (const [i, entry] of (process.env ?? []).entries()) {
      const eq = entry.indexOf('=');
      if (entry.includes('\0')) return `${at}.env[${i}]: contains a NUL byte`;
      if (eq < 0) return `${at}.env[${i}]: missing "=" in ${quote(entry)}`;
      if (eq === 0) return `${at}.env[${i}]: empty variable name in ${quote(entry)}`;
    }
    return undefined;
  },
  // An id of 4294967295 means "leave unchanged" to setresuid(2): the process would stay root (ids.ts).
  'process-user-ids': (process, at) => {
    const { uid, gid, additionalGids } = process.user;
    const u = idProblem(uid, 'uid');
    if (u !== undefined) return `${at}.user.uid: ${u}`;
    const g = idProblem(gid, 'gid');
    if (g !== undefined) return `${at}.user.gid: ${g}`;
    for (const [i, extra] of (additionalGids ?? []).entries()) {
      const problem = idProblem(extra, 'gid');
      if (problem !== undefined) return `${at}.user.additionalGids[${i}]: ${problem}`;
    }
    return undefined;
  },
  'rlimit-type': (process, at) => {
    for (const [i, r] of (process.rlimits ?? []).entries()) {
      if (!Object.hasOwn(RLIMIT_NUMBERS, r.type)) return `${at}.rlimits[${i}].type: unknown rlimit ${quote(r.type)}`;
    }
    return undefined;
  },
  // config.md: "If rlimits contains duplicated entries with same type, the runtime MUST generate an error."
  'rlimit-duplicate': (process, at) => {
    const seen = new Set<string>();
    for (const [i, r] of (process.rlimits ?? []).entries()) {
      if (seen.has(r.type)) return `${at}.rlimits[${i}].type: duplicate rlimit ${quote(r.type)}`;
      seen.add(r.type);
    }
    return undefined;
  },
  // setrlimit(2) fails with EINVAL when soft > hard; say so before the container is half built.
  'rlimit-range': (process, at) => {
    for (const [i, r] of (process.rlimits ?? []).entries()) {
      if (r.soft > r.hard) return `${at}.rlimits[${i}]: soft limit ${r.soft} is above hard limit ${r.hard}`;
    }
    return undefined;
  },
  // config.md: "Any value which cannot be mapped to a relevant kernel interface ... MUST cause an error."
  'capability-name': (process, at) => {
    const caps = process.capabilities;
    if (caps === undefined) return undefined;
    for (const set of CAPABILITY_SETS) {
      for (const [i, name] of (caps[set] ?? []).entries()) {
        if (!Object.hasOwn(CAPABILITY_NUMBERS, name)) return `${at}.capabilities.${set}[${i}]: unknown capability ${quote(name)}`;
      }
    }
    return undefined;
  },
  // config.md: the priority is a level from 0 (highest) to 7 (lowest); ioprio_set(2) takes no other.
  'io-priority': (process, at) => {
    const priority = process.ioPriority?.priority;
    if (priority === undefined || (priority >= 0 && priority <= 7)) return undefined;
    return `${at}.ioPriority.priority: must be 0 to 7, got ${priority}`;
  },
} satisfies Record<string, ProcessCheck>;

/** The name of a process check. */
export type ProcessCheckName = keyof typeof PROCESS_CHECKS;
