/*
 * The native tsrun-shim (shim/native/, docs/native-shim.md) against containerd 1.6 +
 * containerd-shim-runc-v2, with the same `ctr`, measured against the targets of issue 15:
 *
 *   run --rm    ctr run --rm --rootfs R ID /bin/true: every subject once per round, rotating,
 *               for at least BENCH_NATIVE_ROUNDS (20) rounds (interleaved), then each subject
 *               BENCH_NATIVE_ROW (20) times in a row (back to back); no warm shim kept in
 *               reserve (tsrund has none)
 *   sequential  BENCH_NATIVE_N (100) `sleep` containers started one after another with
 *               `ctr run -d`: p50 of the first 20 starts (N = 20) and of the last 20 (N = 100),
 *               Pss per container (the shims' Pss plus the daemon's Pss growth, over N) once 20
 *               and once N run
 *   parallel    BENCH_NATIVE_PAR (100) `ctr run -d` at once: wall time until the last returns
 *   curve       tsrund alone: its Rss growth per running container while BENCH_NATIVE_CURVE
 *               (500) containers are started, at a few points on the way (bounded to
 *               BENCH_NATIVE_CURVE_S (240) seconds; the table says how far it got)
 *
 * Subjects: containerd + runc; tsrund --shim native with the default runtime (the runtime
 * library in tsrund, init spawned by the shim from the plan: SPAWN_PLAN), the one the targets
 * are for; in run --rm also tsrund --shim native with runc (--runc-binary runc). Every task,
 * container, shim, cgroup and directory is removed before the section returns.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRootfs } from '../lib/bundle';
import { ctrAsync, ctrSync, pool, startContainerd, startTsrund, type Engine } from '../lib/engines';
import { memoryOf, memoryOfAll, mib } from '../lib/memory';
import { medianP95, ms, ratio, table } from '../lib/report';
import type { BenchContext, SectionReport, Section } from '../lib/section';
import { median, rotation } from '../lib/stats';

interface Subject {
  readonly name: string;
  readonly engine: Engine;
  readonly runFlags: readonly string[];
}

function envInt(name: string, dflt: number): number {
  const v = Number(process.env[name] ?? dflt);
  return Number.isInteger(v) && v > 0 ? v : dflt;
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

const sortedMedian = (xs: readonly number[]): number => median([...xs].sort((a, b) => a - b));

/** Pss (kB) per running container: the shims' Pss plus the daemon's Pss growth since `daemonBefore`, over `n`. */
function pssPerContainer(e: Engine, daemonBefore: number, n: number): { perContainer: number; shims: number; shimPss: number; daemonGrowth: number } {
  const shims = memoryOfAll(e.shimPids());
  const daemonGrowth = ((memoryOf(e.pid)?.pssKb ?? NaN) - daemonBefore) / n;
  return { perContainer: shims.pssKb / n + Math.max(0, daemonGrowth), shims: shims.count, shimPss: shims.pssKb / n, daemonGrowth };
}

/** What one engine's sequential and parallel `ctr run -d` gave. */
interface Density {
  readonly name: string;
  /** each start's wall time, in order */
  readonly starts: number[];
  readonly at20: ReturnType<typeof pssPerContainer> | undefined;
  readonly atN: ReturnType<typeof pssPerContainer> | undefined;
  readonly parallelMs: number;
  readonly parallelFailed: number;
  /** the first failed start's error, when any failed */
  readonly parallelError: string;
}

/** A target: its value, limit and whether it holds (lower is better). */
interface Target {
  readonly what: string;
  readonly value: number;
  readonly limit: number;
  readonly show: (v: number) => string;
}

const RUN_D = ['/bin/sleep', '100000'];

/** The native-shim section. */
export const nativeShimSection: Section = {
  name: 'native-shim',
  unavailable(ctx) {
    if (process.geteuid?.() !== 0) return 'needs root (containers with cgroups and namespaces)';
    for (const b of ['bin/tsrund', 'bin/tsrun-shim', 'bin/tsrun', 'build/tsrun-shim', 'build/tsrun-stage']) if (!fs.existsSync(path.join(ctx.repo, b))) return `${b} is not built (make build)`;
    for (const p of ['/usr/bin/ctr', 'containerd', 'containerd-shim-runc-v2', 'runc']) {
      if (p.startsWith('/') ? !fs.existsSync(p) : !process.env['PATH']?.split(':').some((d) => fs.existsSync(path.join(d, p)))) return `${p} is not installed`;
    }
    return undefined;
  },
  async run(ctx: BenchContext): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'native');
    fs.mkdirSync(dir, { recursive: true });
    const rootfs = makeRootfs(ctx.repo, dir);
    const ns = `tsrun-bench-native-${process.pid}`;
    const engines: Engine[] = [];
    try {
      const containerd = await startContainerd(path.join(dir, 'cd'), ns);
      engines.push(containerd);
      const native = await startTsrund(ctx.repo, path.join(dir, 'tn'), ns, ['--shim', 'native']);
      engines.push(native);
      const cd: Subject = { name: 'containerd + runc', engine: containerd, runFlags: [] };
      const lib: Subject = { name: 'tsrund native shim + library (plan spawned by the shim)', engine: native, runFlags: [] };
      const subjects: Subject[] = [cd, { name: 'tsrund native shim + runc', engine: native, runFlags: ['--runc-binary', 'runc'] }, lib];
      for (const s of subjects) for (let i = 0; i < 2; i++) ctrSync(s.engine.run(['--rm', ...s.runFlags], rootfs, `warm-${i}`, ['/bin/true']));

      const once = async (s: Subject, id: string): Promise<number> => {
        const r = await ctrAsync(s.engine.run(['--rm', ...s.runFlags], rootfs, id, ['/bin/true']), 60_000);
        if (r.status !== 0) throw new Error(`${s.name}: ctr run --rm: ${r.stderr.trim()}`);
        return r.ms;
      };
      const interleaved = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
      // A median of --runs (6) rounds moved by more than the distance to the target between runs of
      // the bench: at least BENCH_NATIVE_ROUNDS, as many as are done back to back.
      const rounds = Math.max(ctx.runs, envInt('BENCH_NATIVE_ROUNDS', 20));
      for (let round = 0; round < rounds && !ctx.stopping(); round++) {
        for (const s of rotation(subjects, round)) interleaved.get(s.name)!.push(await once(s, `i-${round}`));
      }
      const row = envInt('BENCH_NATIVE_ROW', 20);
      const inRow = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
      for (const s of subjects) {
        for (let i = 0; i < row && !ctx.stopping(); i++) inRow.get(s.name)!.push(await once(s, `b-${i}`));
      }
      ctx.progress('native-shim: ctr run --rm done');

      // Sequential starts up to N, then N at once, per engine (the targets' two subjects).
      const n = Math.max(20, envInt('BENCH_NATIVE_N', 100));
      const par = envInt('BENCH_NATIVE_PAR', 100);
      const runD = async (s: Subject, id: string): Promise<number> => {
        const r = await ctrAsync(s.engine.run(['-d', ...s.runFlags], rootfs, id, RUN_D), 60_000);
        if (r.status !== 0) throw new Error(`${s.name}: ctr run -d ${id}: ${r.stderr.trim()}`);
        return r.ms;
      };
      const density: Density[] = [];
      for (const s of [cd, lib]) {
        if (ctx.stopping()) break;
        await settle(500);
        const daemonBefore = memoryOf(s.engine.pid)?.pssKb ?? NaN;
        const starts: number[] = [];
        let at20: ReturnType<typeof pssPerContainer> | undefined;
        for (let i = 0; i < n && !ctx.stopping(); i++) {
          starts.push(await runD(s, `d-${i}`));
          if (i + 1 === 20) {
            await settle(500);
            at20 = pssPerContainer(s.engine, daemonBefore, 20);
          }
        }
        await settle(500);
        const atN = starts.length === n ? pssPerContainer(s.engine, daemonBefore, n) : undefined;
        await s.engine.clear();
        ctx.progress(`native-shim: ${s.name}: ${starts.length} sequential starts done`);
        if (ctx.stopping()) break;
        await settle(500);
        const t0 = process.hrtime.bigint();
        const results = await pool(
          Array.from({ length: par }, (_, i) => () => ctrAsync(s.engine.run(['-d', ...s.runFlags], rootfs, `p-${i}`, RUN_D), 120_000)),
          par,
        );
        const parallelMs = Number(process.hrtime.bigint() - t0) / 1e6;
        await s.engine.clear();
        density.push({ name: s.name, starts, at20, atN, parallelMs, parallelFailed: results.filter((r) => r.status !== 0).length, parallelError: results.find((r) => r.status !== 0)?.stderr.trim().split('\n')[0] ?? '' });
        ctx.progress(`native-shim: ${s.name}: ${par} parallel starts done`);
      }

      // tsrund's Rss curve: containers started one by one up to BENCH_NATIVE_CURVE, bounded in time.
      const curveN = envInt('BENCH_NATIVE_CURVE', 500);
      const curveDeadline = Date.now() + envInt('BENCH_NATIVE_CURVE_S', 240) * 1000;
      const points = [20, 50, 100, 200, 300, 400, 500, curveN].filter((x, i, a) => x <= curveN && a.indexOf(x) === i).sort((a, b) => a - b);
      const curve: Array<{ n: number; rssKb: number; growthKb: number; startMs: number }> = [];
      if (!ctx.stopping()) {
        await settle(1000);
        const rssBefore = memoryOf(native.pid)?.rssKb ?? NaN;
        const recent: number[] = [];
        try {
          for (let i = 0; i < curveN && !ctx.stopping() && Date.now() < curveDeadline; i++) {
            recent.push(await runD(lib, `c-${i}`));
            if (points.includes(i + 1)) {
              await settle(500);
              const rss = memoryOf(native.pid)?.rssKb ?? NaN;
              curve.push({ n: i + 1, rssKb: rss, growthKb: (rss - rssBefore) / (i + 1), startMs: sortedMedian(recent) });
              recent.length = 0;
            }
          }
        } finally {
          await native.clear();
        }
        ctx.progress(`native-shim: Rss curve done (${curve.at(-1)?.n ?? 0} containers)`);
      }

      const base = (m: Map<string, number[]>): number => sortedMedian(m.get(cd.name) ?? []);
      const runRows = subjects.map((s) => [
        s.name,
        medianP95(interleaved.get(s.name) ?? []),
        ratio(sortedMedian(interleaved.get(s.name) ?? []) / base(interleaved)),
        medianP95(inRow.get(s.name) ?? []),
        ratio(sortedMedian(inRow.get(s.name) ?? []) / base(inRow)),
      ]);
      const p50 = (d: Density | undefined, from: number, to: number): number => (d && d.starts.length >= to ? sortedMedian(d.starts.slice(from, to)) : NaN);
      const [dcd, dlib] = [density.find((d) => d.name === cd.name), density.find((d) => d.name === lib.name)];
      const seqRows = density.map((d) => [d.name, ms(p50(d, 0, 20)), ms(p50(d, n - 20, n)), `${ms(d.parallelMs)}${d.parallelFailed > 0 ? ` (${d.parallelFailed} failed)` : ''}`]);
      const memRows = density.flatMap((d) =>
        [
          [20, d.at20],
          [n, d.atN],
        ].map(([k, m]) => {
          const x = m as ReturnType<typeof pssPerContainer> | undefined;
          return [d.name, String(k), String(x?.shims ?? '–'), mib(x?.shimPss ?? NaN), mib(x?.daemonGrowth ?? NaN), mib(x?.perContainer ?? NaN)];
        }),
      );
      const parallelErrors = density.filter((d) => d.parallelFailed > 0).map((d) => `${d.name}: ${d.parallelFailed} of ${par} parallel starts failed, the first with: ${d.parallelError.replace(/\/\S+/g, '…')}`);
      const curveRows = curve.map((c) => [String(c.n), mib(c.rssKb), `${c.growthKb.toFixed(0)}`, ms(c.startMs)]);
      const lastCurve = curve.at(-1);
      const times = (v: number): string => ratio(v);
      const kib = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(0)} KiB` : '–');
      const targets: Target[] = [
        { what: '`ctr run --rm` interleaved, × containerd', value: sortedMedian(interleaved.get(lib.name) ?? []) / base(interleaved), limit: 0.4, show: times },
        { what: '`ctr run --rm` back to back, × containerd', value: sortedMedian(inRow.get(lib.name) ?? []) / base(inRow), limit: 0.4, show: times },
        { what: `sequential \`ctr run -d\` p50 at N = ${n}, × containerd`, value: p50(dlib, n - 20, n) / p50(dcd, n - 20, n), limit: 0.5, show: times },
        { what: `sequential \`ctr run -d\` p50 at N = ${n}, × at N = 20`, value: p50(dlib, n - 20, n) / p50(dlib, 0, 20), limit: 1, show: times },
        { what: `${par} parallel \`ctr run -d\` total, × containerd`, value: dlib && dcd && dlib.parallelFailed + dcd.parallelFailed === 0 ? dlib.parallelMs / dcd.parallelMs : NaN, limit: 0.5, show: times },
        { what: 'Pss per container at N = 20, × containerd', value: (dlib?.at20?.perContainer ?? NaN) / (dcd?.at20?.perContainer ?? NaN), limit: 0.5, show: times },
        { what: `Pss per container at N = ${n}, × containerd`, value: (dlib?.atN?.perContainer ?? NaN) / (dcd?.atN?.perContainer ?? NaN), limit: 0.5, show: times },
        { what: `tsrund Rss growth per container at N = ${lastCurve?.n ?? curveN}`, value: lastCurve && lastCurve.n === curveN ? lastCurve.growthKb : NaN, limit: 150, show: kib },
      ];
      const targetRows = targets.map((t) => [t.what, t.show(t.value), `≤ ${t.show(t.limit)}`, Number.isFinite(t.value) ? (t.value <= t.limit ? 'yes' : 'no') : 'not measured']);
      const markdown = [
        '## Native shim (tsrund --shim native)',
        '',
        'Targets (issue 15), the native shim with the library runtime against containerd + runc:',
        '',
        table([['target', 'value', 'limit', 'met'], ...targetRows]),
        `\`ctr run --rm … /bin/true\`, ms (median / p95): ${interleaved.get(cd.name)?.length ?? 0} interleaved rounds, then ${row} in a row per subject; no warm shim kept in reserve.`,
        '',
        table([['subject', 'interleaved', '× containerd', 'back to back', '× containerd'], ...runRows]),
        `\`ctr run -d … sleep\`, ms: ${n} started one after another (p50 of the first 20 and of the last 20), then ${par} at once (wall time until the last returns).`,
        '',
        table([['subject', 'p50 at N = 20', `p50 at N = ${n}`, `${par} parallel`], ...seqRows]),
        ...(parallelErrors.length > 0 ? [parallelErrors.join('\n\n'), ''] : []),
        `Memory with N \`sleep\` containers running, MiB per container: the shims' Pss, the daemon's Pss growth divided by N, and Pss per container (shim plus the growth when positive).`,
        '',
        table([['subject', 'N', 'shim processes', 'shim Pss', 'daemon growth', 'Pss per container'], ...memRows]),
        `tsrund's Rss (MiB) while native-shim + library containers are started one by one${lastCurve && lastCurve.n < curveN ? ` (stopped at ${lastCurve.n} of ${curveN}: time bound)` : ''}: growth per container in KiB since none ran, and the p50 of the starts since the previous point (ms).`,
        '',
        table([['N', 'tsrund Rss', 'growth per container (KiB)', 'start p50'], ...curveRows]),
      ].join('\n');
      return { markdown, versions: Object.assign({}, ...engines.map((e) => e.versions)) as Record<string, string> };
    } finally {
      for (const e of [...engines].reverse()) await e.stop().catch((err: unknown) => ctx.progress(`native-shim: stopping ${e.name}: ${String(err)}`));
    }
  },
};
