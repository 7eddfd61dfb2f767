/*
 * zod schemas for the `linux` section of config.json, runtime-spec 1.2 (config-linux.md,
 * schema/config-linux.json, schema/defs-linux.json).
 *
 * Rules shared with schema.ts:
 * - Objects are loose: engines send keys from newer spec versions and their own extras, and
 *   those pass through untouched. Only the keys defined here are type-checked.
 * - A key is required here only when the JSON schema requires it inside an array item or a
 *   sub-object (a namespace's `type`, an rlimit's `soft`). Top-level MUSTs such as `root.path`
 *   are left to the named checks in validate.ts, which give a better message.
 * - Closed sets whose members the kernel defines (namespace types, device types, propagation)
 *   are plain strings here and checked in validate.ts; closed sets owned by libseccomp or the
 *   spec itself (seccomp actions and operators, scheduler policies) are enums here.
 * - 64-bit integers: see numbers.ts for the precision limit.
 */
import { z } from 'zod';
import type { Known } from './known';
import { i64, u16, u32, u64 } from './numbers';

const strings = () => z.array(z.string());
const stringMap = () => z.record(z.string(), z.string());

/** A uid or gid range mapping (user namespaces and id-mapped mounts). */
export const IDMappingSchema = z.looseObject({
  containerID: u32(),
  hostID: u32(),
  size: u32(),
});

const NamespaceSchema = z.looseObject({
  type: z.string(),
  path: z.string().optional(),
});

const TimeOffsetSchema = z.looseObject({
  secs: i64().optional(),
  nanosecs: u32().optional(),
});

const DeviceSchema = z.looseObject({
  type: z.string(),
  path: z.string(),
  major: i64().optional(),
  minor: i64().optional(),
  fileMode: u32().optional(),
  uid: u32().optional(),
  gid: u32().optional(),
});

const DeviceCgroupSchema = z.looseObject({
  allow: z.boolean(),
  type: z.string().optional(),
  major: i64().optional(),
  minor: i64().optional(),
  access: z.string().optional(),
});

const MemorySchema = z.looseObject({
  limit: i64().optional(),
  reservation: i64().optional(),
  swap: i64().optional(),
  kernel: i64().optional(),
  kernelTCP: i64().optional(),
  swappiness: u64().optional(),
  disableOOMKiller: z.boolean().optional(),
  useHierarchy: z.boolean().optional(),
  checkBeforeUpdate: z.boolean().optional(),
});

const CPUSchema = z.looseObject({
  shares: u64().optional(),
  quota: i64().optional(),
  burst: u64().optional(),
  period: u64().optional(),
  realtimeRuntime: i64().optional(),
  realtimePeriod: u64().optional(),
  cpus: z.string().optional(),
  mems: z.string().optional(),
  idle: i64().optional(),
});

const PidsSchema = z.looseObject({ limit: i64() });

const WeightDeviceSchema = z.looseObject({
  major: i64(),
  minor: i64(),
  weight: u16().optional(),
  leafWeight: u16().optional(),
});

const ThrottleDeviceSchema = z.looseObject({
  major: i64(),
  minor: i64(),
  rate: u64().optional(),
});

const BlockIOSchema = z.looseObject({
  weight: u16().optional(),
  leafWeight: u16().optional(),
  weightDevice: z.array(WeightDeviceSchema).optional(),
  throttleReadBpsDevice: z.array(ThrottleDeviceSchema).optional(),
  throttleWriteBpsDevice: z.array(ThrottleDeviceSchema).optional(),
  throttleReadIOPSDevice: z.array(ThrottleDeviceSchema).optional(),
  throttleWriteIOPSDevice: z.array(ThrottleDeviceSchema).optional(),
});

const HugepageLimitSchema = z.looseObject({
  pageSize: z.string(),
  limit: u64(),
});

const NetworkSchema = z.looseObject({
  classID: u32().optional(),
  priorities: z.array(z.looseObject({ name: z.string(), priority: u32() })).optional(),
});

const RdmaSchema = z.looseObject({
  hcaHandles: u32().optional(),
  hcaObjects: u32().optional(),
});

/** `linux.resources`, also the document `update --resources` reads. */
export const LinuxResourcesSchema = z.looseObject({
  devices: z.array(DeviceCgroupSchema).optional(),
  memory: MemorySchema.optional(),
  cpu: CPUSchema.optional(),
  pids: PidsSchema.optional(),
  blockIO: BlockIOSchema.optional(),
  hugepageLimits: z.array(HugepageLimitSchema).optional(),
  network: NetworkSchema.optional(),
  rdma: z.record(z.string(), RdmaSchema).optional(),
  unified: stringMap().optional(),
});

const IntelRdtSchema = z.looseObject({
  closID: z.string().optional(),
  l3CacheSchema: z.string().optional(),
  memBwSchema: z.string().optional(),
  enableCMT: z.boolean().optional(),
  enableMBM: z.boolean().optional(),
});

const SeccompActionSchema = z.enum([
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
]);

const SeccompOperatorSchema = z.enum([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);

const SeccompArgSchema = z.looseObject({
  index: u32(),
  value: u64(),
  valueTwo: u64().optional(),
  op: SeccompOperatorSchema,
});

const SeccompSyscallSchema = z.looseObject({
  names: strings(),
  action: SeccompActionSchema,
  errnoRet: u32().optional(),
  args: z.array(SeccompArgSchema).optional(),
});

// Architectures and flags stay strings: the set grows with libseccomp (SCMP_ARCH_LOONGARCH64 is
// newer than the spec's list), and the filter compiler reports the ones it cannot use.
const SeccompSchema = z.looseObject({
  defaultAction: SeccompActionSchema,
  defaultErrnoRet: u32().optional(),
  architectures: strings().optional(),
  flags: strings().optional(),
  listenerPath: z.string().optional(),
  listenerMetadata: z.string().optional(),
  syscalls: z.array(SeccompSyscallSchema).optional(),
});

const PersonalitySchema = z.looseObject({
  domain: z.enum(['LINUX', 'LINUX32']).optional(),
  flags: strings().optional(),
});

/** The `linux` section of config.json. */
export const LinuxSchema = z.looseObject({
  namespaces: z.array(NamespaceSchema).optional(),
  uidMappings: z.array(IDMappingSchema).optional(),
  gidMappings: z.array(IDMappingSchema).optional(),
  timeOffsets: z.record(z.string(), TimeOffsetSchema).optional(),
  devices: z.array(DeviceSchema).optional(),
  cgroupsPath: z.string().optional(),
  resources: LinuxResourcesSchema.optional(),
  intelRdt: IntelRdtSchema.optional(),
  sysctl: stringMap().optional(),
  seccomp: SeccompSchema.optional(),
  rootfsPropagation: z.string().optional(),
  maskedPaths: strings().optional(),
  readonlyPaths: strings().optional(),
  mountLabel: z.string().optional(),
  personality: PersonalitySchema.optional(),
});

/** A uid or gid mapping: `containerID`..+`size` inside maps to `hostID`..+`size` outside. */
export type IDMapping = Known<z.output<typeof IDMappingSchema>>;
/** One `linux.namespaces` entry: a new namespace, or the one at `path` joined with setns. */
export type Namespace = Known<z.output<typeof NamespaceSchema>>;
/** One clock's offset in a new time namespace. */
export type TimeOffset = Known<z.output<typeof TimeOffsetSchema>>;
/** One `linux.devices` entry: a node to create in the container's /dev. */
export type LinuxDevice = Known<z.output<typeof DeviceSchema>>;
/** One device cgroup rule of `linux.resources.devices`. */
export type LinuxDeviceCgroup = Known<z.output<typeof DeviceCgroupSchema>>;
/** `linux.resources.memory`; byte counts are int64 with -1 for unlimited. */
export type LinuxMemory = Known<z.output<typeof MemorySchema>>;
/** `linux.resources.cpu`. */
export type LinuxCPU = Known<z.output<typeof CPUSchema>>;
/** `linux.resources.pids`. */
export type LinuxPids = Known<z.output<typeof PidsSchema>>;
/** `linux.resources.blockIO`. */
export type LinuxBlockIO = Known<z.output<typeof BlockIOSchema>>;
/** A per-device blkio weight. */
export type LinuxWeightDevice = Known<z.output<typeof WeightDeviceSchema>>;
/** A per-device blkio bps or iops limit. */
export type LinuxThrottleDevice = Known<z.output<typeof ThrottleDeviceSchema>>;
/** One hugetlb limit. */
export type LinuxHugepageLimit = Known<z.output<typeof HugepageLimitSchema>>;
/** `linux.resources.network` (net_cls / net_prio). */
export type LinuxNetwork = Known<z.output<typeof NetworkSchema>>;
/** One rdma cgroup limit. */
export type LinuxRdma = Known<z.output<typeof RdmaSchema>>;
/** `linux.resources`: what the cgroup driver applies. */
export type LinuxResources = Known<z.output<typeof LinuxResourcesSchema>>;
/** `linux.intelRdt`. */
export type LinuxIntelRdt = Known<z.output<typeof IntelRdtSchema>>;
/** A seccomp action name (libseccomp's SCMP_ACT_*). */
export type SeccompAction = z.output<typeof SeccompActionSchema>;
/** A seccomp argument comparison (libseccomp's SCMP_CMP_*). */
export type SeccompOperator = z.output<typeof SeccompOperatorSchema>;
/** One argument condition of a seccomp rule. */
export type SeccompArg = Known<z.output<typeof SeccompArgSchema>>;
/** One seccomp rule: an action for a list of syscall names. */
export type SeccompSyscall = Known<z.output<typeof SeccompSyscallSchema>>;
/** `linux.seccomp`: the filter the runtime compiles and the child installs last. */
export type Seccomp = Known<z.output<typeof SeccompSchema>>;
/** `linux.personality`. */
export type LinuxPersonality = Known<z.output<typeof PersonalitySchema>>;
/** The `linux` section of config.json. */
export type Linux = Known<z.output<typeof LinuxSchema>>;
