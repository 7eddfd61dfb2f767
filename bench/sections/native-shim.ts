/*
 * The native tsrun-shim (shim/native/, docs/native-shim.md) against containerd 1.6 +
 * containerd-shim-runc-v2 and against tsrund's Node shim, with the same `ctr`:
 *
 *   run --rm    ctr run --rm --rootfs R ID /bin/true: every subject once per round, rotating
 *               (interleaved), then each subject BENCH_NATIVE_ROW (20) times in a row (back to
 *               back); no warm shim pool anywhere (--shim-pool 0 for the Node shim)
 *   density     N (BENCH_NATIVE_N, 20) `sleep` containers started one after another: Pss and
 *               Rss per container of the shims, and the daemon's growth over the N divided by N
 *
 * Subjects: containerd + runc; tsrund --shim native with runc (--runc-binary runc) and with the
 * default runtime (the runtime library in tsrund, init spawned by the shim from the plan:
 * SPAWN_PLAN); tsrund with the Node shim and its in-process library. Every task, container, shim, cgroup and directory is removed before the
 * section returns.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRootfs } from '../lib/bundle';
import { ctrAsync, ctrSync, startContainerd, startTsrund, type Engine } from '../lib/engines';
import { memoryOf, memoryOfAll, mib } from '../lib/memory';
import { medianP95, ratio, table } from '../lib/report';
import type { BenchContext, SectionReport, Section } from '../lib/section';
import { median } from '../lib/stats';
import { rotation } from '../lib/stats';

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
      const native = await startTsrund(ctx.repo, path.join(dir, 'tn'), ns, ['--shim', 'native', '--shim-pool', '0']);
      engines.push(native);
      const nodeShim = await startTsrund(ctx.repo, path.join(dir, 'tj'), ns, ['--shim-pool', '0']);
      engines.push(nodeShim);
      const subjects: Subject[] = [
        { name: 'containerd + runc', engine: containerd, runFlags: [] },
        { name: 'tsrund native shim + runc', engine: native, runFlags: ['--runc-binary', 'runc'] },
        { name: 'tsrund native shim + library (plan spawned by the shim)', engine: native, runFlags: [] },
        { name: 'tsrund Node shim (library), no pool', engine: nodeShim, runFlags: [] },
      ];
      for (const s of subjects) for (let i = 0; i < 2; i++) ctrSync(s.engine.run(['--rm', ...s.runFlags], rootfs, `warm-${i}`, ['/bin/true']));

      const once = async (s: Subject, id: string): Promise<number> => {
        const r = await ctrAsync(s.engine.run(['--rm', ...s.runFlags], rootfs, id, ['/bin/true']), 60_000);
        if (r.status !== 0) throw new Error(`${s.name}: ctr run --rm: ${r.stderr.trim()}`);
        return r.ms;
      };
      const interleaved = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
      for (let round = 0; round < ctx.runs && !ctx.stopping(); round++) {
        for (const s of rotation(subjects, round)) interleaved.get(s.name)!.push(await once(s, `i-${round}`));
      }
      const row = envInt('BENCH_NATIVE_ROW', 20);
      const inRow = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
      for (const s of subjects) {
        for (let i = 0; i < row && !ctx.stopping(); i++) inRow.get(s.name)!.push(await once(s, `b-${i}`));
      }
      ctx.progress('native-shim: ctr run --rm done');

      const n = envInt('BENCH_NATIVE_N', 20);
      const density: Array<{ name: string; shimPss: number; shimRss: number; shims: number; daemonGrowth: number }> = [];
      for (const s of subjects) {
        if (ctx.stopping()) break;
        await settle(500);
        const daemonBefore = memoryOf(s.engine.pid)?.pssKb ?? NaN;
        for (let i = 0; i < n; i++) {
          const r = await ctrAsync(s.engine.run(['-d', ...s.runFlags], rootfs, `d-${i}`, ['/bin/sleep', '100000']));
          if (r.status !== 0) throw new Error(`${s.name}: ctr run -d: ${r.stderr.trim()}`);
        }
        await settle(1000);
        const shims = memoryOfAll(s.engine.shimPids());
        const daemonAfter = memoryOf(s.engine.pid)?.pssKb ?? NaN;
        density.push({ name: s.name, shimPss: shims.pssKb / n, shimRss: shims.rssKb / n, shims: shims.count, daemonGrowth: (daemonAfter - daemonBefore) / n });
        await s.engine.clear();
      }

      const base = (m: Map<string, number[]>): number => sortedMedian(m.get(subjects[0]!.name) ?? []);
      const runRows = subjects.map((s) => [
        s.name,
        medianP95(interleaved.get(s.name) ?? []),
        ratio(sortedMedian(interleaved.get(s.name) ?? []) / base(interleaved)),
        medianP95(inRow.get(s.name) ?? []),
        ratio(sortedMedian(inRow.get(s.name) ?? []) / base(inRow)),
      ]);
      const cdPss = density[0]?.shimPss ?? NaN;
      const densityRows = density.map((d) => [d.name, String(d.shims), mib(d.shimPss), mib(d.shimRss), mib(d.daemonGrowth), mib(d.shimPss + Math.max(0, d.daemonGrowth)), ratio((d.shimPss + Math.max(0, d.daemonGrowth)) / (cdPss + Math.max(0, density[0]?.daemonGrowth ?? 0)))]);
      const markdown = [
        '## Native shim (tsrund --shim native)',
        '',
        `\`ctr run --rm … /bin/true\`, ms (median / p95): ${ctx.runs} interleaved rounds, then ${row} in a row per subject; no warm shim pool.`,
        '',
        table([['subject', 'interleaved', '× containerd', 'back to back', '× containerd'], ...runRows]),
        `Memory while ${n} \`sleep\` containers run (started one after another), MiB per container: the shims' Pss and Rss, the daemon's Pss growth over the ${n} divided by ${n}, and their sum.`,
        '',
        table([['subject', 'shim processes', 'shim Pss', 'shim Rss', 'daemon growth', 'Pss per container', '× containerd'], ...densityRows]),
      ].join('\n');
      return { markdown, versions: Object.assign({}, ...engines.map((e) => e.versions)) as Record<string, string> };
    } finally {
      for (const e of [...engines].reverse()) await e.stop().catch((err: unknown) => ctx.progress(`native-shim: stopping ${e.name}: ${String(err)}`));
    }
  },
};
