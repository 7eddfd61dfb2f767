/*
 * zod schemas for config.json, runtime-spec 1.2 (config.md, schema/config-schema.json,
 * schema/defs.json), and the TypeScript types inferred from them. The `linux` section lives in
 * schema-linux.ts; the rules both files follow are written at the top of that file.
 *
 * Defaults: `process.user` and its `uid`/`gid` default to 0, as Go's encoding/json leaves them
 * in runc when they are absent, so code can read `spec.process.user.uid` without a guard.
 */
import { z } from 'zod';
import type { Known } from './known';
import { i32, u32, u64 } from './numbers';
import { IDMappingSchema, LinuxSchema } from './schema-linux';

const strings = () => z.array(z.string());

const ConsoleSizeSchema = z.looseObject({
  height: u64(),
  width: u64(),
});

const UserSchema = z.looseObject({
  uid: u32().default(0),
  gid: u32().default(0),
  umask: u32().optional(),
  additionalGids: z.array(u32()).optional(),
  username: z.string().optional(),
});

const CapabilitiesSchema = z.looseObject({
  bounding: strings().optional(),
  effective: strings().optional(),
  inheritable: strings().optional(),
  permitted: strings().optional(),
  ambient: strings().optional(),
});

const RlimitSchema = z.looseObject({
  type: z.string(),
  soft: u64(),
  hard: u64(),
});

const SchedulerSchema = z.looseObject({
  policy: z.enum(['SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE']),
  nice: i32().optional(),
  priority: i32().optional(),
  flags: z
    .array(
      z.enum([
        'SCHED_FLAG_RESET_ON_FORK',
        'SCHED_FLAG_RECLAIM',
        'SCHED_FLAG_DL_OVERRUN',
        'SCHED_FLAG_KEEP_POLICY',
        'SCHED_FLAG_KEEP_PARAMS',
        'SCHED_FLAG_UTIL_CLAMP_MIN',
        'SCHED_FLAG_UTIL_CLAMP_MAX',
      ]),
    )
    .optional(),
  runtime: u64().optional(),
  deadline: u64().optional(),
  period: u64().optional(),
});

const IOPrioritySchema = z.looseObject({
  class: z.enum(['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE']),
  priority: i32().optional(),
});

const CPUAffinitySchema = z.looseObject({
  initial: z.string().optional(),
  final: z.string().optional(),
});

/** `process`: the container's init; also the document `exec --process` reads. */
export const ProcessSchema = z.looseObject({
  terminal: z.boolean().optional(),
  consoleSize: ConsoleSizeSchema.optional(),
  user: UserSchema.default(() => ({ uid: 0, gid: 0 })),
  args: strings().optional(),
  commandLine: z.string().optional(),
  env: strings().optional(),
  cwd: z.string(),
  capabilities: CapabilitiesSchema.optional(),
  rlimits: z.array(RlimitSchema).optional(),
  noNewPrivileges: z.boolean().optional(),
  apparmorProfile: z.string().optional(),
  oomScoreAdj: i32().optional(),
  scheduler: SchedulerSchema.optional(),
  selinuxLabel: z.string().optional(),
  ioPriority: IOPrioritySchema.optional(),
  execCPUAffinity: CPUAffinitySchema.optional(),
});

/** One `mounts` entry. */
export const MountSchema = z.looseObject({
  destination: z.string(),
  type: z.string().optional(),
  source: z.string().optional(),
  options: strings().optional(),
  uidMappings: z.array(IDMappingSchema).optional(),
  gidMappings: z.array(IDMappingSchema).optional(),
});

const HookSchema = z.looseObject({
  path: z.string(),
  args: strings().optional(),
  env: strings().optional(),
  timeout: i32().optional(),
});

const HooksSchema = z.looseObject({
  prestart: z.array(HookSchema).optional(),
  createRuntime: z.array(HookSchema).optional(),
  createContainer: z.array(HookSchema).optional(),
  startContainer: z.array(HookSchema).optional(),
  poststart: z.array(HookSchema).optional(),
  poststop: z.array(HookSchema).optional(),
});

const RootSchema = z.looseObject({
  path: z.string().optional(),
  readonly: z.boolean().optional(),
});

/** The whole config.json. */
export const SpecSchema = z.looseObject({
  ociVersion: z.string(),
  process: ProcessSchema.optional(),
  root: RootSchema.optional(),
  hostname: z.string().optional(),
  domainname: z.string().optional(),
  mounts: z.array(MountSchema).optional(),
  hooks: HooksSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  linux: LinuxSchema.optional(),
});

/** The terminal size given to `process.consoleSize`. */
export type ConsoleSize = Known<z.output<typeof ConsoleSizeSchema>>;
/** `process.user`: who the process runs as. */
export type User = Known<z.output<typeof UserSchema>>;
/** `process.capabilities`: capability names per set. */
export type Capabilities = Known<z.output<typeof CapabilitiesSchema>>;
/** One `process.rlimits` entry; soft and hard are uint64. */
export type Rlimit = Known<z.output<typeof RlimitSchema>>;
/** `process.scheduler`: sched_setattr(2) attributes. */
export type Scheduler = Known<z.output<typeof SchedulerSchema>>;
/** `process.ioPriority`: ioprio_set(2) class and level. */
export type IOPriority = Known<z.output<typeof IOPrioritySchema>>;
/** `process.execCPUAffinity`: CPU lists for processes started by `exec`. */
export type CPUAffinity = Known<z.output<typeof CPUAffinitySchema>>;
/** `process`: what runs in the container. */
export type Process = Known<z.output<typeof ProcessSchema>>;
/** One `mounts` entry. */
export type Mount = Known<z.output<typeof MountSchema>>;
/** One hook: a program the runtime runs at a lifecycle point. */
export type Hook = Known<z.output<typeof HookSchema>>;
/** `hooks`: the six lifecycle hook lists. */
export type Hooks = Known<z.output<typeof HooksSchema>>;
/** `root`: the container's root filesystem. */
export type Root = Known<z.output<typeof RootSchema>>;
/** A parsed config.json. */
export type Spec = Known<z.output<typeof SpecSchema>>;
