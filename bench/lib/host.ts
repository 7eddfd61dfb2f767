/* The machine a run measured, for the head of RESULTS.md. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { outputOf } from './exec';

/** Host facts worth printing next to timings. */
export interface HostFacts {
  readonly kernel: string;
  readonly cpu: string;
  readonly cpus: number;
  readonly memory: string;
  readonly cgroups: string;
  readonly node: string;
  readonly tsrunCommit: string;
  /** Transparent huge pages: the mode in brackets of /sys/kernel/mm/transparent_hugepage/enabled. */
  readonly thp: string;
}

/** cgroup v1, v2 or hybrid, from the mount table of this process's mount namespace. */
export function cgroupMode(mountinfo: string): string {
  const types = mountinfo.split('\n').map((l) => l.split(' - ')[1]?.split(' ')[0]).filter((t) => t === 'cgroup' || t === 'cgroup2');
  const v1 = types.includes('cgroup');
  const v2 = types.includes('cgroup2');
  return v1 && v2 ? 'hybrid (v1 controllers + cgroup2)' : v2 ? 'v2 (unified)' : v1 ? 'v1' : 'none';
}

/** Facts about this host; `repo` is the tsrun checkout, `cgroups` its cgroup mode seen before any unmounting. */
export function hostFacts(repo: string, cgroups: string): HostFacts {
  const cpuModel = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const commit = outputOf(['git', '-C', repo, 'rev-parse', '--short=12', 'HEAD']) ?? 'unknown';
  const dirty = outputOf(['git', '-C', repo, 'status', '--porcelain', '--untracked-files=no']);
  return {
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpuModel,
    cpus: os.cpus().length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    cgroups,
    node: process.version,
    tsrunCommit: dirty ? `${commit} (with uncommitted changes)` : commit,
    thp: /\[(\w+)\]/.exec(readOr('/sys/kernel/mm/transparent_hugepage/enabled'))?.[1] ?? 'unknown',
  };
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * What one fault of a fresh 4 KiB anonymous page costs here, in µs: the first write of every page
 * of a fresh 64 MiB buffer minus a second write of the same pages, per page (median of 3). Every
 * process start pays it for each page it touches; on a VM that hands freed memory back to its host
 * it is many times a bare-metal fault, which moves every start-up time in these tables.
 */
export function pageFaultMicros(): number {
  const pages = 16384;
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const buf = Buffer.allocUnsafeSlow(pages * 4096);
    const t0 = process.hrtime.bigint();
    buf.fill(1);
    const t1 = process.hrtime.bigint();
    buf.fill(2);
    const t2 = process.hrtime.bigint();
    runs.push(Number(t1 - t0 - (t2 - t1)) / 1e3 / pages);
  }
  return runs.sort((a, b) => a - b)[1]!;
}

/** The 1-minute load average, as text. */
export function load(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}
