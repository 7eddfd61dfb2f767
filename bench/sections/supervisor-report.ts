/* Markdown of the supervisor section (bench/sections/supervisor.ts): tables, ratios, targets. Pure. */
import { SHIM_NODE_ARGS } from '../../supervisor/shims/client';
import type { Engine } from '../lib/engines';
import { mib, type Memory } from '../lib/memory';
import { ms, ratio, table } from '../lib/report';
import { median, quantile } from '../lib/stats';

/** Something `ctr run` is measured against: an engine, with extra `ctr run` flags. */
export interface Subject {
  readonly name: string;
  readonly engine: Engine;
  readonly runFlags: readonly string[];
}

/** One (subject, N) of the scale and density measurements. */
export interface ScaleResult {
  readonly subject: string;
  readonly n: number;
  readonly sequential: { times: number[]; totalMs: number };
  readonly parallel: { times: number[]; totalMs: number };
  /** shims: every shim and helper process */
  readonly density: { shims: Memory & { count: number }; daemon: Memory | undefined };
}

const BASE = 'containerd + runc';

function pcts(times: readonly number[]): string {
  const s = [...times].sort((a, b) => a - b);
  return `${ms(median(s))} / ${ms(quantile(s, 0.95))} / ${ms(quantile(s, 0.99))}`;
}

function med(times: readonly number[] | undefined): number {
  return median([...(times ?? [])].sort((a, b) => a - b));
}

/** The `ctr run --rm` rounds. */
export interface Lifecycle {
  /** ctr run --rm … /bin/true, ms, by subject */
  readonly runTimes: ReadonlyMap<string, number[]>;
  /** ctr version (ctr's start and one call: the floor under any ctr command), ms, by subject */
  readonly floorTimes: ReadonlyMap<string, number[]>;
  /** tsrund's own time per call during the rounds, by method */
  readonly rpcs: ReadonlyMap<string, number[]>;
  readonly rounds: number;
}

/** n idle node processes with the shims' flags and no shim code (bench/sections/supervisor.ts nodeFloor). */
export interface NodeFloor {
  readonly n: number;
  readonly memory: Memory & { count: number };
}

/** The section's markdown. */
export function supervisorReport(l: Lifecycle, scale: readonly ScaleResult[], floor?: NodeFloor): string {
  const out: string[] = [];
  const { runTimes, floorTimes, rpcs } = l;
  const names = [...runTimes.keys()];
  const base = med(runTimes.get(BASE));
  const tsr = med(runTimes.get('tsrund'));
  out.push('## Supervisor lifecycle\n');
  out.push(
    `The same \`ctr\` against tsrund and against containerd 1.6 with runc, both started by the benchmark on their own config, root, state and socket. Wall time in ms, median / p95 / p99 over ${l.rounds} rounds (every subject once per round, in rotating order); \`ctr version\` (ctr's own start and one call) is the floor under every ctr command.\n`,
  );
  out.push(
    table([
      ['', ...names],
      ['ctr run --rm … /bin/true', ...names.map((n) => pcts(runTimes.get(n) ?? []))],
      ['÷ containerd + runc', ...names.map((n) => ratio(med(runTimes.get(n)) / base))],
      ['ctr version (floor)', ...names.map((n) => pcts(floorTimes.get(n) ?? []))],
      ['run − floor', ...names.map((n) => ms(med(runTimes.get(n)) - med(floorTimes.get(n))))],
    ]),
  );
  if (rpcs.size > 0) {
    const calls = [...rpcs.entries()].sort((a, b) => med(b[1]) * b[1].length - med(a[1]) * a[1].length);
    const total = calls.reduce((sum, [, v]) => sum + (med(v) * v.length) / l.rounds, 0);
    out.push(`\nWhere tsrund's part of \`ctr run --rm\` goes: its own time per call (from its trace log, request in to response out), median ms, and calls per run. Together ≈ ${ms(total)} ms of the ${ms(tsr)} ms; the rest is ctr (start, fifos, waits between calls) and the transport.\n`);
    out.push(table([['call', 'median ms', 'calls per run'], ...calls.map(([m, v]) => [m, ms(med(v)), (v.length / l.rounds).toFixed(1)])]));
  }

  const subjects = [...new Set(scale.map((r) => r.subject))];
  const ns = [...new Set(scale.map((r) => r.n))];
  const get = (s: string, n: number): ScaleResult | undefined => scale.find((r) => r.subject === s && r.n === n);
  if (scale.length > 0) {
    out.push('\nStarting N `sleep` containers with `ctr run -d`: per container ms p50 / p95 / p99, and the wall time of all N (s).\n');
    const rows: string[][] = [['N', 'how', ...subjects]];
    for (const n of ns) {
      for (const how of ['sequential', 'parallel'] as const) {
        rows.push([String(n), how, ...subjects.map((s) => {
          const r = get(s, n)?.[how];
          return r === undefined ? '–' : `${pcts(r.times)} (${(r.totalMs / 1000).toFixed(1)} s)`;
        })]);
      }
    }
    out.push(table(rows));

    out.push('\n## Density\n');
    out.push(
      'While N `sleep` containers run (after the sequential start): Pss and Rss from /proc/<pid>/smaps_rollup of every shim and helper process of the engine, divided by N, in MiB; the containers\' own processes are the same busybox `sleep` for every engine and are not counted. The daemon\'s own memory beside it.\n',
    );
    const drows: string[][] = [['N', 'subject', 'shim processes', 'Pss / container', 'Rss / container', 'Pss ÷ containerd-shim-runc-v2', 'daemon Pss', 'daemon Rss']];
    for (const n of ns) {
      const b = get(BASE, n);
      for (const s of subjects) {
        const r = get(s, n);
        if (r === undefined) continue;
        const d = r.density;
        drows.push([
          String(n),
          s,
          String(d.shims.count),
          mib(d.shims.pssKb / n),
          mib(d.shims.rssKb / n),
          b === undefined ? '–' : ratio(d.shims.pssKb / b.density.shims.pssKb),
          mib(d.daemon?.pssKb ?? Number.NaN),
          mib(d.daemon?.rssKb ?? Number.NaN),
        ]);
      }
    }
    out.push(table(drows));
    const fb = floor === undefined ? undefined : get(BASE, floor.n);
    if (floor !== undefined && fb !== undefined) {
      const per = floor.memory.pssKb / floor.n;
      out.push(
        `\nNode's floor: ${floor.n} idle \`node\` processes with the shims' flags (\`${SHIM_NODE_ARGS.join(' ')}\`), each only listening on a unix socket, no shim code: Pss ${mib(per)} MiB each = ${ratio(floor.memory.pssKb / fb.density.shims.pssKb)} containerd-shim-runc-v2 at N = ${floor.n} (Rss ${mib(floor.memory.rssKb / floor.n)} MiB; ${floor.memory.count} measured). Any shim that is a node process starts from there.\n`,
      );
    }
  }

  out.push('\n### Supervisor targets\n');
  const trows: string[][] = [['what', 'target', 'tsrun', 'limit', 'met']];
  trows.push(['ctr run --rm … /bin/true (median ms)', '≤ 0.5 × containerd + runc', ms(tsr), ms(0.5 * base), tsr <= 0.5 * base ? 'yes' : 'no']);
  const pssRow = (subject: string, n: number, factor: number, label: string): void => {
    const r = get(subject, n);
    const b = get(BASE, n);
    if (r === undefined || b === undefined) return;
    const v = r.density.shims.pssKb / n;
    const limit = (factor * b.density.shims.pssKb) / n;
    trows.push([`Pss per container, N = ${n}, ${label} (MiB)`, `≤ ${factor} × containerd-shim-runc-v2`, mib(v), mib(limit), v <= limit ? 'yes' : 'no']);
  };
  pssRow('tsrund', 20, 3, 'one shim per container');
  out.push(table(trows));
  return out.join('\n');
}
