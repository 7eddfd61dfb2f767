/*
 * linux.resources → the ordered cgroup file operations that apply them, one list per cgroup
 * version. Pure: no file is read here, so every mapping is a table-driven unit test. The
 * drivers (apply.ts) carry the operations out.
 *
 * Zero means "unset" (docs/engines.md §1.8): docker sends cpu.shares 0, blockIO.weight 0 and, in
 * `update`, memory.reservation/kernel 0 and cpu.quota/period 0. Like runc, every numeric field
 * whose Go type is a plain integer treats 0 as unset; fields that are pointers in the spec's Go
 * types (swappiness, cpu.burst, cpu.idle, throttle rates) are written even when 0. pids.limit 0
 * and -1 both mean "no limit" ("max").
 *
 * Operation kinds, beyond a plain write:
 *   fallback      the file a kernel may offer instead (blkio.weight → blkio.bfq.weight)
 *   optional      a companion file that may be absent (hugetlb .rsvd limits, memsw without swap accounting)
 *   retryOnEinval written again after the rest when the kernel refuses it at first
 *                 (a shorter cfs period with the old quota can exceed the parent's bandwidth)
 *   limit-pair    v1 memory and memory+swap, which must keep limit <= memsw at every moment:
 *                 the driver writes memsw first when the new limit is above the current memsw
 *   check-usage   memory.checkBeforeUpdate: refuse a limit below current usage
 *   write-field   replace one field of a multi-field file (a cpu.max period without a quota)
 */
import { TsrunError } from '../../spec/errors';
import type { LinuxResources } from '../../spec/schema-linux';
import { cpuMax, i64Text, ioRate, ioWeight, memoryMax, pidsMax, sharesToWeight, swapBelowLimit, swapMax, swappinessText, u64Text } from './convert';
import { deviceRules, v1DeviceLines } from './devices';

/** Write `value` to `<cgroup>/<file>` of `controller`'s hierarchy. */
export interface CgroupWrite {
  readonly kind: 'write';
  /** v1: the hierarchy's controller; v2: the file's prefix (for "controller missing" errors). */
  readonly controller: string;
  readonly file: string;
  readonly value: string;
  /** Written instead when `file` does not exist. */
  readonly fallback?: { readonly file: string; readonly value: string };
  /** An absent file is skipped instead of failing. */
  readonly optional?: true;
  /** On EINVAL, try once more after the other operations. */
  readonly retryOnEinval?: true;
}

/** Two limits that must keep limit <= ceiling; the driver picks the order from the current ceiling. */
export interface CgroupLimitPair {
  readonly kind: 'limit-pair';
  readonly controller: string;
  readonly limit: { readonly file: string; readonly value: string };
  readonly ceiling: { readonly file: string; readonly value: string; readonly optional: boolean };
}

/** Fail unless `limit` ("-1" = none) is at least the usage read from `file`. */
export interface CgroupUsageCheck {
  readonly kind: 'check-usage';
  readonly controller: string;
  readonly file: string;
  readonly limit: string;
}

/** Read `file`, replace its space-separated field `field` (0-based) with `value`, write it back. */
export interface CgroupFieldWrite {
  readonly kind: 'write-field';
  readonly controller: string;
  readonly file: string;
  readonly field: number;
  readonly value: string;
}

/** One step of applying resources. */
export type CgroupOp = CgroupWrite | CgroupLimitPair | CgroupUsageCheck | CgroupFieldWrite;

const write = (controller: string, file: string, value: string, extra: Partial<Omit<CgroupWrite, 'kind' | 'controller' | 'file' | 'value'>> = {}): CgroupWrite => ({
  kind: 'write',
  controller,
  file,
  value,
  ...extra,
});

/** Zero and absent both mean "not set" for these fields. */
const set = (n: number | undefined): n is number => n !== undefined && n !== 0;

function unsupported(field: string, version: string, why: string): TsrunError {
  return new TsrunError('InvalidArgument', `linux.resources.${field}: not supported on cgroup ${version}: ${why}`);
}

const HUGEPAGE_SIZE = /^[1-9][0-9]*[KMG]B$/;

function checkPageSize(size: string, i: number): void {
  if (!HUGEPAGE_SIZE.test(size)) {
    throw new TsrunError('InvalidArgument', `linux.resources.hugepageLimits[${i}].pageSize: want a size like "2MB" or "1GB", got ${JSON.stringify(size)}`);
  }
}

function rdmaLine(device: string, v: { hcaHandles?: number | undefined; hcaObjects?: number | undefined }): string | undefined {
  const parts: string[] = [];
  if (v.hcaHandles !== undefined) parts.push(`hca_handle=${v.hcaHandles}`);
  if (v.hcaObjects !== undefined) parts.push(`hca_object=${v.hcaObjects}`);
  return parts.length === 0 ? undefined : `${device} ${parts.join(' ')}`;
}

/** The cgroup v1 operations for `r`, in the order they are applied. */
export function v1Writes(r: LinuxResources): CgroupOp[] {
  const ops: CgroupOp[] = [];
  if (r.unified !== undefined && Object.keys(r.unified).length > 0) {
    throw unsupported('unified', 'v1', `keys ${Object.keys(r.unified).join(', ')} are cgroup v2 files`);
  }
  // cpuset first: a v1 cpuset cgroup with empty cpus or mems refuses every process.
  const cpu = r.cpu ?? {};
  if (cpu.cpus !== undefined) ops.push(write('cpuset', 'cpuset.cpus', cpu.cpus));
  if (cpu.mems !== undefined) ops.push(write('cpuset', 'cpuset.mems', cpu.mems));

  for (const l of v1DeviceLines(deviceRules(r.devices))) ops.push(write('devices', l.file, l.value));

  const m = r.memory ?? {};
  if (m.checkBeforeUpdate === true && set(m.limit) && m.limit > 0) {
    ops.push({ kind: 'check-usage', controller: 'memory', file: 'memory.usage_in_bytes', limit: i64Text(m.limit) });
  }
  if (set(m.limit) && set(m.swap) && m.limit > 0 && m.swap > 0 && m.swap < m.limit) throw swapBelowLimit(m.swap, m.limit);
  if (set(m.limit) && (set(m.swap) || m.limit < 0)) {
    // Unlimited memory with swap unset lifts memsw too, or the old memsw would cap the new limit.
    const swap = set(m.swap) ? m.swap : -1;
    ops.push({
      kind: 'limit-pair',
      controller: 'memory',
      limit: { file: 'memory.limit_in_bytes', value: i64Text(m.limit) },
      ceiling: { file: 'memory.memsw.limit_in_bytes', value: i64Text(swap), optional: !set(m.swap) },
    });
  } else if (set(m.limit)) ops.push(write('memory', 'memory.limit_in_bytes', i64Text(m.limit)));
  else if (set(m.swap)) ops.push(write('memory', 'memory.memsw.limit_in_bytes', i64Text(m.swap)));
  if (set(m.reservation)) ops.push(write('memory', 'memory.soft_limit_in_bytes', i64Text(m.reservation)));
  if (set(m.kernel)) ops.push(write('memory', 'memory.kmem.limit_in_bytes', i64Text(m.kernel)));
  if (set(m.kernelTCP)) ops.push(write('memory', 'memory.kmem.tcp.limit_in_bytes', i64Text(m.kernelTCP)));
  const swappiness = m.swappiness === undefined ? undefined : swappinessText(m.swappiness);
  if (swappiness !== undefined) ops.push(write('memory', 'memory.swappiness', swappiness));
  // oom_control takes only "1" to disable; false leaves the kernel default (runc does the same).
  if (m.disableOOMKiller === true) ops.push(write('memory', 'memory.oom_control', '1'));
  if (m.useHierarchy !== undefined) ops.push(write('memory', 'memory.use_hierarchy', m.useHierarchy ? '1' : '0'));

  if (set(cpu.shares)) ops.push(write('cpu', 'cpu.shares', u64Text(cpu.shares)));
  if (set(cpu.period)) ops.push(write('cpu', 'cpu.cfs_period_us', u64Text(cpu.period), { retryOnEinval: true }));
  if (set(cpu.quota)) ops.push(write('cpu', 'cpu.cfs_quota_us', i64Text(cpu.quota)));
  if (cpu.burst !== undefined) ops.push(write('cpu', 'cpu.cfs_burst_us', u64Text(cpu.burst)));
  if (set(cpu.realtimePeriod)) ops.push(write('cpu', 'cpu.rt_period_us', u64Text(cpu.realtimePeriod), { retryOnEinval: true }));
  if (set(cpu.realtimeRuntime)) ops.push(write('cpu', 'cpu.rt_runtime_us', i64Text(cpu.realtimeRuntime)));
  if (cpu.idle !== undefined) ops.push(write('cpu', 'cpu.idle', i64Text(cpu.idle)));

  if (r.pids !== undefined) ops.push(write('pids', 'pids.max', pidsMax(r.pids.limit)));

  const b = r.blockIO ?? {};
  // Kernels without CFQ (5.0+) have only the BFQ files.
  if (set(b.weight)) ops.push(write('blkio', 'blkio.weight', String(b.weight), { fallback: { file: 'blkio.bfq.weight', value: String(b.weight) } }));
  if (set(b.leafWeight)) ops.push(write('blkio', 'blkio.leaf_weight', String(b.leafWeight)));
  for (const d of b.weightDevice ?? []) {
    const dev = `${d.major}:${d.minor}`;
    if (set(d.weight)) ops.push(write('blkio', 'blkio.weight_device', `${dev} ${d.weight}`, { fallback: { file: 'blkio.bfq.weight_device', value: `${dev} ${d.weight}` } }));
    if (set(d.leafWeight)) ops.push(write('blkio', 'blkio.leaf_weight_device', `${dev} ${d.leafWeight}`));
  }
  const throttles = [
    ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
    ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
    ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
    ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
  ] as const;
  for (const [field, file] of throttles) {
    for (const d of b[field] ?? []) if (d.rate !== undefined) ops.push(write('blkio', file, `${d.major}:${d.minor} ${u64Text(d.rate)}`));
  }

  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    checkPageSize(h.pageSize, i);
    ops.push(write('hugetlb', `hugetlb.${h.pageSize}.limit_in_bytes`, u64Text(h.limit)));
    // Reservation limits (5.7+) keep a reserved-but-unfaulted mapping from escaping the limit.
    ops.push(write('hugetlb', `hugetlb.${h.pageSize}.rsvd.limit_in_bytes`, u64Text(h.limit), { optional: true }));
  }

  const net = r.network ?? {};
  if (set(net.classID)) ops.push(write('net_cls', 'net_cls.classid', String(net.classID)));
  for (const p of net.priorities ?? []) ops.push(write('net_prio', 'net_prio.ifpriomap', `${p.name} ${p.priority}`));

  for (const [dev, v] of Object.entries(r.rdma ?? {})) {
    const line = rdmaLine(dev, v);
    if (line !== undefined) ops.push(write('rdma', 'rdma.max', line));
  }
  return ops;
}

/** The controller a cgroup v2 file belongs to: its prefix ("memory.max" → "memory"). */
export function v2Controller(file: string): string {
  const dot = file.indexOf('.');
  return dot < 0 ? file : file.slice(0, dot);
}

const w2 = (file: string, value: string, extra: Parameters<typeof write>[3] = {}): CgroupWrite => write(v2Controller(file), file, value, extra);

/**
 * The cgroup v2 operations for `r`, in the order they are applied. Device rules are not
 * files on v2 (they are an eBPF program, see devices-bpf.ts) and are left to the driver.
 */
export function v2Writes(r: LinuxResources): CgroupOp[] {
  const ops: CgroupOp[] = [];
  const cpu = r.cpu ?? {};
  if (cpu.cpus !== undefined) ops.push(w2('cpuset.cpus', cpu.cpus));
  if (cpu.mems !== undefined) ops.push(w2('cpuset.mems', cpu.mems));

  const m = r.memory ?? {};
  if (set(m.kernel)) throw unsupported('memory.kernel', 'v2', 'kernel memory is always accounted with user memory');
  if (set(m.kernelTCP)) throw unsupported('memory.kernelTCP', 'v2', 'there is no separate TCP buffer limit');
  if (m.swappiness !== undefined && swappinessText(m.swappiness) !== undefined) throw unsupported('memory.swappiness', 'v2', 'there is no per-cgroup swappiness');
  if (m.disableOOMKiller === true) throw unsupported('memory.disableOOMKiller', 'v2', 'the OOM killer cannot be disabled per cgroup');
  if (m.useHierarchy === false) throw unsupported('memory.useHierarchy', 'v2', 'accounting is always hierarchical');
  const limit = set(m.limit) ? m.limit : undefined;
  const swap = swapMax(set(m.swap) ? m.swap : undefined, limit);
  if (m.checkBeforeUpdate === true && limit !== undefined && limit > 0) {
    ops.push({ kind: 'check-usage', controller: 'memory', file: 'memory.current', limit: i64Text(limit) });
  }
  // swap.max before max: lowering both never leaves a moment with more swap than asked for.
  if (swap !== undefined) ops.push(w2('memory.swap.max', swap, limit !== undefined && !set(m.swap) ? { optional: true } : {}));
  if (limit !== undefined) ops.push(w2('memory.max', memoryMax(limit)));
  if (set(m.reservation)) ops.push(w2('memory.low', memoryMax(m.reservation)));

  if (set(cpu.shares)) ops.push(w2('cpu.weight', String(sharesToWeight(cpu.shares))));
  const quota = set(cpu.quota) ? cpu.quota : undefined;
  const period = set(cpu.period) ? cpu.period : undefined;
  const max = cpuMax(quota, period);
  if (max !== undefined) ops.push(w2('cpu.max', max));
  else if (period !== undefined) ops.push({ kind: 'write-field', controller: 'cpu', file: 'cpu.max', field: 1, value: u64Text(period) });
  if (cpu.burst !== undefined) ops.push(w2('cpu.max.burst', u64Text(cpu.burst)));
  if (set(cpu.realtimePeriod) || set(cpu.realtimeRuntime)) throw unsupported('cpu.realtimeRuntime', 'v2', 'real-time group scheduling has no v2 interface');
  if (cpu.idle !== undefined) ops.push(w2('cpu.idle', i64Text(cpu.idle)));

  if (r.pids !== undefined) ops.push(w2('pids.max', pidsMax(r.pids.limit)));

  const b = r.blockIO ?? {};
  if (set(b.leafWeight) || (b.weightDevice ?? []).some((d) => set(d.leafWeight))) throw unsupported('blockIO.leafWeight', 'v2', 'leaf weights were a CFQ feature');
  // io.weight (iocost) takes 1..10000; BFQ's io.bfq.weight keeps blkio's 1..1000 scale unconverted.
  if (set(b.weight)) ops.push(w2('io.weight', String(ioWeight(b.weight)), { fallback: { file: 'io.bfq.weight', value: String(b.weight) } }));
  for (const d of b.weightDevice ?? []) {
    if (!set(d.weight)) continue;
    const dev = `${d.major}:${d.minor}`;
    ops.push(w2('io.weight', `${dev} ${ioWeight(d.weight)}`, { fallback: { file: 'io.bfq.weight', value: `${dev} ${d.weight}` } }));
  }
  const throttles = [
    ['throttleReadBpsDevice', 'rbps'],
    ['throttleWriteBpsDevice', 'wbps'],
    ['throttleReadIOPSDevice', 'riops'],
    ['throttleWriteIOPSDevice', 'wiops'],
  ] as const;
  for (const [field, key] of throttles) {
    for (const d of b[field] ?? []) if (d.rate !== undefined) ops.push(w2('io.max', `${d.major}:${d.minor} ${key}=${ioRate(d.rate)}`));
  }

  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    checkPageSize(h.pageSize, i);
    ops.push(w2(`hugetlb.${h.pageSize}.max`, u64Text(h.limit)));
    ops.push(w2(`hugetlb.${h.pageSize}.rsvd.max`, u64Text(h.limit), { optional: true }));
  }

  const net = r.network ?? {};
  if (set(net.classID) || (net.priorities ?? []).length > 0) {
    throw unsupported('network', 'v2', 'there are no net_cls and net_prio controllers (use an eBPF program on the cgroup)');
  }

  for (const [dev, v] of Object.entries(r.rdma ?? {})) {
    const line = rdmaLine(dev, v);
    if (line !== undefined) ops.push(w2('rdma.max', line));
  }

  // Last, so an explicit unified value overrides the mapped fields (runc and crun do the same).
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    if (key.includes('/') || key.startsWith('.') || !key.includes('.')) {
      throw new TsrunError('InvalidArgument', `linux.resources.unified: ${JSON.stringify(key)} is not a cgroup file name`);
    }
    ops.push(w2(key, value));
  }
  return ops;
}

/** One operation as a line of text, for debug logs and test tables. */
export function opText(op: CgroupOp): string {
  switch (op.kind) {
    case 'write': {
      let s = `${op.file}=${op.value}`;
      if (op.fallback) s += ` (else ${op.fallback.file}=${op.fallback.value})`;
      if (op.optional === true) s += ' (optional)';
      if (op.retryOnEinval === true) s += ' (retry on EINVAL)';
      return s;
    }
    case 'limit-pair':
      return `${op.limit.file}=${op.limit.value} with ${op.ceiling.file}=${op.ceiling.value}${op.ceiling.optional ? ' (optional)' : ''}`;
    case 'check-usage':
      return `check ${op.file} <= ${op.limit}`;
    case 'write-field':
      return `${op.file}[${op.field}]=${op.value}`;
    default: {
      const never: never = op;
      return String(never);
    }
  }
}
