/*
 * The shim's cgroup statistics (runtime/cgroups/stats.ts shape, counters as decimal strings or
 * numbers) as the Any ctr decodes: io.containerd.cgroups.v1.Metrics on a v1 or hybrid host,
 * io.containerd.cgroups.v2.Metrics on a unified one. memory.usage and cpu.usage are always
 * present: ctr dereferences them without a nil check (docs/containerd-api.md §2).
 */
import * as fs from 'node:fs';
import { packAny, u64, type AnyValue } from '../proto/index';

type Counter = string | number | bigint | undefined;
type Rec = Record<string, unknown>;

function rec(v: unknown): Rec {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : {};
}

function c(v: unknown): Counter {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' ? v : undefined;
}

function entry(v: unknown): Rec {
  const e = rec(v);
  return { limit: u64(c(e['limit'])), usage: u64(c(e['usage'])), max: u64(c(e['max'])), failcnt: u64(c(e['failcnt'])) };
}

/** memory.stat keys → MemoryStat fields (cgroups v1). */
const MEMORY_STAT: Record<string, string> = {
  cache: 'cache',
  rss: 'rss',
  rss_huge: 'rssHuge',
  mapped_file: 'mappedFile',
  dirty: 'dirty',
  writeback: 'writeback',
  pgpgin: 'pgPgIn',
  pgpgout: 'pgPgOut',
  pgfault: 'pgFault',
  pgmajfault: 'pgMajFault',
  inactive_anon: 'inactiveAnon',
  active_anon: 'activeAnon',
  inactive_file: 'inactiveFile',
  active_file: 'activeFile',
  unevictable: 'unevictable',
  hierarchical_memory_limit: 'hierarchicalMemoryLimit',
  hierarchical_memsw_limit: 'hierarchicalSwapLimit',
  total_cache: 'totalCache',
  total_rss: 'totalRss',
  total_rss_huge: 'totalRssHuge',
  total_mapped_file: 'totalMappedFile',
  total_dirty: 'totalDirty',
  total_writeback: 'totalWriteback',
  total_pgpgin: 'totalPgPgIn',
  total_pgpgout: 'totalPgPgOut',
  total_pgfault: 'totalPgFault',
  total_pgmajfault: 'totalPgMajFault',
  total_inactive_anon: 'totalInactiveAnon',
  total_active_anon: 'totalActiveAnon',
  total_inactive_file: 'totalInactiveFile',
  total_active_file: 'totalActiveFile',
  total_unevictable: 'totalUnevictable',
};

/** cgroups v1 Metrics fields from the shim's stats JSON. */
export function v1Metrics(stats: unknown): Rec {
  const s = rec(stats);
  const cpu = rec(s['cpu']);
  const usage = rec(cpu['usage']);
  const thr = rec(cpu['throttling']);
  const mem = rec(s['memory']);
  const raw = rec(mem['raw']);
  const memory: Rec = { usage: entry(mem['usage']), swap: entry(mem['swap']), kernel: entry(mem['kernel']), kernelTcp: entry(mem['kernelTCP']) };
  for (const [k, field] of Object.entries(MEMORY_STAT)) {
    const v = c(raw[k]);
    if (v !== undefined) memory[field] = u64(v);
  }
  if (memory['cache'] === undefined && c(mem['cache']) !== undefined) memory['cache'] = u64(c(mem['cache']));
  const pids = rec(s['pids']);
  const out: Rec = {
    cpu: {
      usage: {
        total: u64(c(usage['total'])),
        kernel: u64(c(usage['kernel'])),
        user: u64(c(usage['user'])),
        perCpu: Array.isArray(usage['percpu']) ? (usage['percpu'] as unknown[]).map((x) => u64(c(x))) : [],
      },
      throttling: { periods: u64(c(thr['periods'])), throttledPeriods: u64(c(thr['throttledPeriods'])), throttledTime: u64(c(thr['throttledTime'])) },
    },
    memory,
  };
  if (s['pids'] !== undefined) out['pids'] = { current: u64(c(pids['current'])), limit: u64(c(pids['limit'])) };
  const hugetlb = rec(s['hugetlb']);
  out['hugetlb'] = Object.entries(hugetlb).map(([pagesize, h]) => {
    const e = rec(h);
    return { pagesize, usage: u64(c(e['usage'])), max: u64(c(e['max'])), failcnt: u64(c(e['failcnt'])) };
  });
  const blkio = rec(s['blkio']);
  const b: Rec = {};
  for (const [k, list] of Object.entries(blkio)) {
    if (!Array.isArray(list)) continue;
    b[k] = list.map((x) => {
      const e = rec(x);
      return { op: String(e['op'] ?? ''), major: u64(c(e['major'])), minor: u64(c(e['minor'])), value: u64(c(e['value'])) };
    });
  }
  out['blkio'] = b;
  return out;
}

/** cgroups v2 Metrics fields from the shim's stats JSON (times in µs). */
export function v2Metrics(stats: unknown): Rec {
  const s = rec(stats);
  const usage = rec(rec(s['cpu'])['usage']);
  const thr = rec(rec(s['cpu'])['throttling']);
  const mem = rec(s['memory']);
  const us = (v: unknown): ReturnType<typeof u64> => {
    const n = c(v);
    return n === undefined ? 0 : u64(BigInt(n) / 1000n);
  };
  return {
    pids: { current: u64(c(rec(s['pids'])['current'])), limit: u64(c(rec(s['pids'])['limit'])) },
    cpu: {
      usageUsec: us(usage['total']),
      userUsec: us(usage['user']),
      systemUsec: us(usage['kernel']),
      nrPeriods: u64(c(thr['periods'])),
      nrThrottled: u64(c(thr['throttledPeriods'])),
      throttledUsec: us(thr['throttledTime']),
    },
    memory: {
      usage: u64(c(rec(mem['usage'])['usage'])),
      usageLimit: u64(c(rec(mem['usage'])['limit'])),
      swapUsage: u64(c(rec(mem['swap'])['usage'])),
      swapLimit: u64(c(rec(mem['swap'])['limit'])),
    },
  };
}

let unified: boolean | undefined;

/** True when /sys/fs/cgroup is a cgroup v2 unified hierarchy (checked once). */
export function isUnifiedHost(): boolean {
  unified ??= fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  return unified;
}

/** The stats as the Metric.data Any for this host's cgroup mode. */
export function metricsAny(stats: unknown, v2 = isUnifiedHost()): AnyValue {
  return v2 ? packAny('io.containerd.cgroups.v2.Metrics', v2Metrics(stats)) : packAny('io.containerd.cgroups.v1.Metrics', v1Metrics(stats));
}
