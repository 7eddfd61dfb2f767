/*
 * Resource usage read from a container's cgroup, in the shape of runc's `events --stats` data
 * (docs/engines.md §4 and §6; runc's types/events.go field names):
 *
 *   { cpu:    { usage: { total, percpu, percpu_kernel, percpu_user, kernel, user }, throttling: { periods, throttledPeriods, throttledTime } },
 *     memory: { cache, usage: { limit, usage, max, failcnt }, swap, kernel, kernelTCP, raw: { <memory.stat> } },
 *     pids:   { current, limit },
 *     blkio:  { ioServiceBytesRecursive: [{ major, minor, op, value }], ioServicedRecursive, … },
 *     hugetlb: { "2MB": { usage, max, failcnt } },
 *     cpuset: { cpus: [0, 1], mems: [0] } }
 *
 * Times are nanoseconds, sizes bytes. Counters are bigints (a v1 "unlimited" memory limit is
 * 9223372036854771712, beyond a double's integers); `statsJson` prints them as JSON numbers.
 * A file that does not exist leaves its field out; a file that exists but cannot be read fails.
 */
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { readIfExists, type CgroupFs } from './fs';

/** cpu.usage: nanoseconds of CPU time. */
export interface CpuUsage {
  total?: bigint;
  percpu?: bigint[];
  percpu_kernel?: bigint[];
  percpu_user?: bigint[];
  kernel?: bigint;
  user?: bigint;
}

/** cpu.throttling: CFS bandwidth periods and the time spent throttled. */
export interface CpuThrottling {
  periods?: bigint;
  throttledPeriods?: bigint;
  throttledTime?: bigint;
}

/** One memory counter group: bytes, and how often the limit was hit. */
export interface MemoryEntry {
  limit?: bigint;
  usage?: bigint;
  max?: bigint;
  failcnt?: bigint;
}

/** One line of a blkio/io statistics file. */
export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: bigint;
}

/** Per page size hugetlb usage. */
export interface HugetlbStats {
  usage?: bigint;
  max?: bigint;
  failcnt?: bigint;
}

/** cpu: usage and CFS throttling. */
export interface CpuStats {
  usage?: CpuUsage;
  throttling?: CpuThrottling;
}

/** memory: v1's four counter groups (v2 fills usage and swap) plus memory.stat as `raw`. */
export interface MemoryStats {
  cache?: bigint;
  usage?: MemoryEntry;
  swap?: MemoryEntry;
  kernel?: MemoryEntry;
  kernelTCP?: MemoryEntry;
  raw?: Record<string, bigint>;
}

/** pids: current count and limit (left out when unlimited). */
export interface PidsStats {
  current?: bigint;
  limit?: bigint;
}

/** cpuset: the CPUs and memory nodes the cgroup may use. */
export interface CpusetStats {
  cpus?: number[];
  mems?: number[];
}

/** Everything `stats()` returns. */
export interface CgroupStats {
  cpu?: CpuStats;
  memory?: MemoryStats;
  pids?: PidsStats;
  blkio?: Record<string, BlkioEntry[]>;
  hugetlb?: Record<string, HugetlbStats>;
  cpuset?: CpusetStats;
}

/** T with each field allowed to be undefined, as `compact` takes it. */
type Loose<T> = { [K in keyof T]?: T[K] | undefined };

const U64_MAX = (1n << 64n) - 1n;

/** The stats as JSON, bigints printed as exact numbers (JSON.stringify cannot). */
export function statsJson(stats: CgroupStats): string {
  const marker = '\u0000bigint:';
  const text = JSON.stringify(stats, (_k, v: unknown) => (typeof v === 'bigint' ? `${marker}${v.toString()}` : v));
  return text.replace(/"\\u0000bigint:(\d+)"/g, '$1');
}

/** Reads of one cgroup's files, answering undefined for files that do not exist. */
interface Reader {
  text(file: string): string | undefined;
  /** A decimal; "max" becomes 2^64-1 (runc's MaxUint64), or is left out with `maxAs` 'omit'. */
  num(file: string, maxAs?: 'u64max' | 'omit'): bigint | undefined;
  list(file: string): bigint[] | undefined;
  /** A "key value" per line file (cpu.stat, memory.stat, memory.events). */
  keyed(file: string): Record<string, bigint> | undefined;
  files(): string[];
}

function reader(cfs: CgroupFs, dir: string | undefined): Reader {
  const text = (file: string): string | undefined => (dir === undefined ? undefined : readIfExists(cfs, dir, file));
  const big = (file: string, t: string): bigint => {
    if (!/^\d+$/.test(t)) throw new TsrunError('Internal', `read ${path.join(dir ?? '', file)}: ${JSON.stringify(t)} is not a number`);
    return BigInt(t);
  };
  return {
    text,
    num(file, maxAs = 'u64max') {
      const t = text(file);
      if (t === undefined || t === '') return undefined;
      if (t === 'max') return maxAs === 'omit' ? undefined : U64_MAX;
      return big(file, t);
    },
    list(file) {
      const t = text(file);
      return t === undefined ? undefined : t.split(/\s+/).filter((x) => x !== '').map((x) => big(file, x));
    },
    keyed(file) {
      const t = text(file);
      if (t === undefined) return undefined;
      const out: Record<string, bigint> = {};
      for (const line of t.split('\n')) {
        const [k, v] = line.trim().split(/\s+/);
        if (k !== undefined && v !== undefined && /^\d+$/.test(v)) out[k] = BigInt(v);
      }
      return out;
    },
    files() {
      if (dir === undefined) return [];
      try {
        return cfs
          .list(dir)
          .filter((e) => !e.isDir)
          .map((e) => e.name);
      } catch {
        return [];
      }
    },
  };
}

/** Remove undefined fields, and the object itself when nothing is left. */
function compact<T extends object>(o: Loose<T>): T | undefined {
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return Object.keys(out).length === 0 ? undefined : out;
}

function put<K extends keyof CgroupStats>(stats: CgroupStats, key: K, value: CgroupStats[K] | undefined): void {
  if (value !== undefined) stats[key] = value;
}

/** "0-3,5" → [0, 1, 2, 3, 5]. */
export function parseCpuList(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

/** v1 blkio lines "8:0 Read 4096" (the "Total" line is dropped). */
export function parseBlkioV1(text: string | undefined): BlkioEntry[] | undefined {
  if (text === undefined) return undefined;
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: BigInt(m[4]!) });
  }
  return out;
}

/** v2 io.stat "8:0 rbytes=1 wbytes=2 rios=3 wios=4 …" → bytes and ios entries per device. */
export function parseIoStat(text: string | undefined): Record<string, BlkioEntry[]> | undefined {
  if (text === undefined) return undefined;
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  const map: Record<string, [BlkioEntry[], string]> = { rbytes: [bytes, 'Read'], wbytes: [bytes, 'Write'], rios: [ios, 'Read'], wios: [ios, 'Write'] };
  for (const line of text.split('\n')) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    for (const kv of kvs) {
      const [k, v] = kv.split('=');
      const into = map[k ?? ''];
      if (into && v !== undefined && /^\d+$/.test(v)) into[0].push({ major: Number(m[1]), minor: Number(m[2]), op: into[1], value: BigInt(v) });
    }
  }
  return { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
}

// v1 blkio statistics files by runc's field name; CFQ's set first, then BFQ's, then throttling's.
const BLKIO_V1_FIELDS: readonly (readonly [string, string])[] = [
  ['ioServiceBytesRecursive', 'io_service_bytes_recursive'],
  ['ioServicedRecursive', 'io_serviced_recursive'],
  ['ioQueueRecursive', 'io_queued_recursive'],
  ['ioServiceTimeRecursive', 'io_service_time_recursive'],
  ['ioWaitTimeRecursive', 'io_wait_time_recursive'],
  ['ioMergedRecursive', 'io_merged_recursive'],
  ['ioTimeRecursive', 'time_recursive'],
  ['sectorsRecursive', 'sectors_recursive'],
];

function blkioV1(r: Reader): Record<string, BlkioEntry[]> | undefined {
  for (const prefix of ['blkio.', 'blkio.bfq.', 'blkio.throttle.']) {
    if (r.text(`${prefix}io_service_bytes_recursive`) === undefined) continue;
    const out: Record<string, BlkioEntry[]> = {};
    for (const [field, file] of BLKIO_V1_FIELDS) {
      const entries = parseBlkioV1(r.text(`${prefix}${file}`));
      if (entries !== undefined) out[field] = entries;
    }
    return out;
  }
  return undefined;
}

function memoryEntryV1(r: Reader, prefix: string): MemoryEntry | undefined {
  return compact<MemoryEntry>({
    limit: r.num(`${prefix}limit_in_bytes`),
    usage: r.num(`${prefix}usage_in_bytes`),
    max: r.num(`${prefix}max_usage_in_bytes`),
    failcnt: r.num(`${prefix}failcnt`),
  });
}

/** Stats from v1 hierarchies; `dirFor` answers undefined for controllers that are not mounted. */
export function v1Stats(cfs: CgroupFs, dirFor: (controller: string) => string | undefined): CgroupStats {
  const stats: CgroupStats = {};
  const acct = reader(cfs, dirFor('cpuacct'));
  const cpu = reader(cfs, dirFor('cpu'));
  const cpuStat = cpu.keyed('cpu.stat');
  const ticks = acct.keyed('cpuacct.stat');
  // cpuacct.stat counts USER_HZ ticks (100 a second on Linux); the *_sys/_user files are ns.
  const fromTicks = (n: bigint | undefined): bigint | undefined => (n === undefined ? undefined : n * 10_000_000n);
  put(
    stats,
    'cpu',
    compact<CpuStats>({
      usage: compact<CpuUsage>({
        total: acct.num('cpuacct.usage'),
        percpu: acct.list('cpuacct.usage_percpu'),
        percpu_kernel: acct.list('cpuacct.usage_percpu_sys'),
        percpu_user: acct.list('cpuacct.usage_percpu_user'),
        kernel: acct.num('cpuacct.usage_sys') ?? fromTicks(ticks?.['system']),
        user: acct.num('cpuacct.usage_user') ?? fromTicks(ticks?.['user']),
      }),
      throttling: compact<CpuThrottling>({
        periods: cpuStat?.['nr_periods'],
        throttledPeriods: cpuStat?.['nr_throttled'],
        throttledTime: cpuStat?.['throttled_time'],
      }),
    }),
  );
  const mem = reader(cfs, dirFor('memory'));
  const raw = mem.keyed('memory.stat');
  put(
    stats,
    'memory',
    compact<MemoryStats>({
      cache: raw?.['cache'],
      usage: memoryEntryV1(mem, 'memory.'),
      swap: memoryEntryV1(mem, 'memory.memsw.'),
      kernel: memoryEntryV1(mem, 'memory.kmem.'),
      kernelTCP: memoryEntryV1(mem, 'memory.kmem.tcp.'),
      raw,
    }),
  );
  const pids = reader(cfs, dirFor('pids'));
  put(stats, 'pids', compact<PidsStats>({ current: pids.num('pids.current'), limit: pids.num('pids.max', 'omit') }));
  put(stats, 'blkio', blkioV1(reader(cfs, dirFor('blkio'))));
  const huge = reader(cfs, dirFor('hugetlb'));
  const sizes = huge.files().flatMap((f) => /^hugetlb\.([^.]+)\.limit_in_bytes$/.exec(f)?.[1] ?? []);
  if (sizes.length > 0) {
    const out: Record<string, HugetlbStats> = {};
    for (const s of sizes.sort()) {
      out[s] = compact<HugetlbStats>({
        usage: huge.num(`hugetlb.${s}.usage_in_bytes`),
        max: huge.num(`hugetlb.${s}.max_usage_in_bytes`),
        failcnt: huge.num(`hugetlb.${s}.failcnt`),
      }) ?? {};
    }
    stats.hugetlb = out;
  }
  const cpuset = reader(cfs, dirFor('cpuset'));
  put(stats, 'cpuset', compact<CpusetStats>({ cpus: parseCpuList(cpuset.text('cpuset.cpus')), mems: parseCpuList(cpuset.text('cpuset.mems')) }));
  return stats;
}

const usec = (n: bigint | undefined): bigint | undefined => (n === undefined ? undefined : n * 1000n);
const sum = (a: bigint | undefined, b: bigint | undefined): bigint | undefined => (a === undefined || b === undefined ? undefined : a + b > U64_MAX ? U64_MAX : a + b);

/**
 * Stats from one cgroup v2 directory. memory.swap is reported as v1 reports memsw (memory plus
 * swap, usage and limit), so consumers see one meaning whatever the host.
 */
export function v2Stats(cfs: CgroupFs, dir: string): CgroupStats {
  const r = reader(cfs, dir);
  const stats: CgroupStats = {};
  const cpuStat = r.keyed('cpu.stat');
  put(
    stats,
    'cpu',
    compact<CpuStats>({
      usage: compact<CpuUsage>({ total: usec(cpuStat?.['usage_usec']), kernel: usec(cpuStat?.['system_usec']), user: usec(cpuStat?.['user_usec']) }),
      throttling: compact<CpuThrottling>({
        periods: cpuStat?.['nr_periods'],
        throttledPeriods: cpuStat?.['nr_throttled'],
        throttledTime: usec(cpuStat?.['throttled_usec']),
      }),
    }),
  );
  const raw = r.keyed('memory.stat');
  const usage = compact<MemoryEntry>({
    limit: r.num('memory.max'),
    usage: r.num('memory.current'),
    max: r.num('memory.peak'),
    // memory.events "max": how many times usage hit memory.max, v1's failcnt.
    failcnt: r.keyed('memory.events')?.['max'],
  });
  const swapCurrent = r.num('memory.swap.current');
  const swap =
    swapCurrent === undefined
      ? undefined
      : compact<MemoryEntry>({
          limit: sum(usage?.limit, r.num('memory.swap.max')),
          usage: sum(usage?.usage, swapCurrent),
          max: sum(usage?.max, r.num('memory.swap.peak')),
          failcnt: r.keyed('memory.swap.events')?.['max'],
        });
  put(stats, 'memory', compact<MemoryStats>({ cache: raw?.['file'], usage, swap, raw }));
  put(stats, 'pids', compact<PidsStats>({ current: r.num('pids.current'), limit: r.num('pids.max', 'omit') }));
  put(stats, 'blkio', parseIoStat(r.text('io.stat')));
  const sizes = r.files().flatMap((f) => /^hugetlb\.([^.]+)\.current$/.exec(f)?.[1] ?? []);
  if (sizes.length > 0) {
    const out: Record<string, HugetlbStats> = {};
    for (const s of sizes.sort()) {
      out[s] = compact<HugetlbStats>({ usage: r.num(`hugetlb.${s}.current`), failcnt: r.keyed(`hugetlb.${s}.events`)?.['max'] }) ?? {};
    }
    stats.hugetlb = out;
  }
  put(stats, 'cpuset', compact<CpusetStats>({ cpus: parseCpuList(r.text('cpuset.cpus.effective')), mems: parseCpuList(r.text('cpuset.mems.effective')) }));
  return stats;
}
