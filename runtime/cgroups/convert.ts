/*
 * Every value conversion between runtime-spec resources and cgroup files, in one place.
 * The spec speaks cgroup v1 units; v2 renamed files and changed ranges, so each v2 value
 * here says where its formula comes from.
 *
 *   spec field            v1 file value                v2 file value
 *   cpu.shares 2..262144  cpu.shares as is             cpu.weight 1..10000   sharesToWeight
 *   cpu.quota/period      cfs_quota_us, cfs_period_us  cpu.max "Q P"         cpuMax
 *   memory.limit -1       -1                           memory.max "max"      memoryMax
 *   memory.swap           memsw = memory+swap          memory.swap.max = swap only   swapMax
 *   blockIO.weight        blkio.weight 10..1000        io.weight 1..10000    ioWeight
 *   throttle rate 0       0 removes the limit          io.max "max"          ioRate
 *   pids.limit 0 or -1    "max"                        "max"                 pidsMax
 *
 * Numbers arrive as JS doubles; 64-bit values go through toU64/toI64 (spec/numbers.ts) so
 * the parsed maxima 2^64 and 2^63 are written as the real maxima.
 */
import { TsrunError } from '../../spec/errors';
import { toI64, toU64 } from '../../spec/numbers';

/** An int64 spec value as the decimal text a cgroup file takes. */
export function i64Text(n: number): string {
  return toI64(n).toString();
}

/** A uint64 spec value as the decimal text a cgroup file takes. */
export function u64Text(n: number): string {
  return toU64(n).toString();
}

/**
 * cpu.shares → cpu.weight. The kernel maps the v1 range [2, 262144] linearly onto v2's
 * [1, 10000] with integer division (runc libcontainer/cgroups/utils.go ConvertCPUSharesToCgroupV2Value,
 * crun's and systemd's formula): 2 → 1, 1024 → 39, 262144 → 10000. Out-of-range shares are
 * clamped first, as the v1 kernel clamps them.
 */
export function sharesToWeight(shares: number): number {
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/**
 * blkio weight [10, 1000] → io.weight [1, 10000], linear with integer division
 * (runc ConvertBlkIOToIOWeightValue): 10 → 1, 500 → 4950, 1000 → 10000.
 */
export function ioWeight(weight: number): number {
  const w = Math.min(Math.max(weight, 10), 1000);
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/**
 * The cpu.max line (cgroup-v2.rst "cpu.max": "$MAX $PERIOD"). quota -1 is "max"; a line with
 * only $MAX leaves the period as it is, so a quota without a period does not reset a custom
 * period (the kernel default is 100000, and an unlimited cgroup reads "max 100000"). Undefined
 * when neither is set; a period alone needs the current quota, see `cpuMaxPeriodOnly`.
 */
export function cpuMax(quota: number | undefined, period: number | undefined): string | undefined {
  if (quota === undefined) return undefined;
  const q = quota < 0 ? 'max' : i64Text(quota);
  return period === undefined ? q : `${q} ${u64Text(period)}`;
}

/** memory.limit / memory.reservation / hugetlb limits on v2: -1 (or any negative) is "max". */
export function memoryMax(limit: number): string {
  return limit < 0 ? 'max' : i64Text(limit);
}

/**
 * memory.swap → memory.swap.max. The spec (like v1's memory.memsw.limit_in_bytes) counts
 * memory plus swap; v2's file counts swap alone, so the value is swap - limit
 * (runc ConvertMemorySwapToCgroupV2Value, crun's cgroup-resources.c):
 * - limit -1 with swap unset: both unlimited, "max" (what v1 does when memory is unlimited);
 * - swap -1: "max"; swap unset: nothing;
 * - swap below limit, or swap without a finite limit: refused.
 */
export function swapMax(swap: number | undefined, limit: number | undefined): string | undefined {
  if (swap === undefined) return limit !== undefined && limit < 0 ? 'max' : undefined;
  if (swap < 0) return 'max';
  if (limit === undefined || limit < 0) {
    throw new TsrunError('InvalidArgument', `linux.resources.memory.swap (${swap}): cgroup v2 needs a memory limit to derive memory.swap.max (swap - limit)`);
  }
  const s = toI64(swap);
  const l = toI64(limit);
  if (s < l) throw swapBelowLimit(swap, limit);
  return (s - l).toString();
}

/** The error for a memory+swap limit below the memory limit (the kernel refuses it on v1 too). */
export function swapBelowLimit(swap: number, limit: number): TsrunError {
  return new TsrunError('InvalidArgument', `linux.resources.memory.swap (${swap}) is below memory.limit (${limit}): swap counts memory plus swap`);
}

/** pids.limit → pids.max: a positive number is the limit; 0 and -1 mean no limit, "max". */
export function pidsMax(limit: number): string {
  return limit > 0 ? i64Text(limit) : 'max';
}

/** A blkio throttle rate → its io.max value: v1 writes 0 to remove a limit, v2 writes "max". */
export function ioRate(rate: number): string {
  return rate === 0 ? 'max' : u64Text(rate);
}

/** swappiness 2^64-1 (a Go -1 sent as uint64) means "unset"; anything else must be 0..100. */
export function swappinessText(swappiness: number): string | undefined {
  if (toU64(swappiness) === (1n << 64n) - 1n) return undefined;
  if (swappiness > 100) {
    throw new TsrunError('InvalidArgument', `linux.resources.memory.swappiness (${swappiness}): must be between 0 and 100`);
  }
  return String(swappiness);
}

/** Parse a cgroup limit value ("max", "-1", or a decimal) for comparisons; unlimited is null. */
export function parseLimit(text: string): bigint | null {
  const t = text.trim();
  if (t === 'max' || t === '-1' || t === '') return null;
  const v = BigInt(t);
  // v1 reports "unlimited" as PAGE_COUNTER_MAX in bytes (9223372036854771712), near 2^63.
  return v >= (1n << 62n) ? null : v;
}
