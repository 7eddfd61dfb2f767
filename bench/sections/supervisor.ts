/*
 * Supervisor lifecycle and density: the same `ctr` against tsrund (tsrun-shim, the runtime library
 * in the shim) and against containerd 1.6 (containerd-shim-runc-v2, runc), both started here in
 * isolation (bench/lib/engines.ts) on one busybox rootfs.
 *
 *   lifecycle   ctr run --rm --rootfs R ID /bin/true, every engine once per round, rotating
 *   scale       for N in 20, 100: start N `sleep` containers (ctr run -d) one after another,
 *               then N at once; per-container time p50/p95/p99 and the wall time of all N
 *   density     after the sequential start, while all N run: Pss and Rss of the shims (and any
 *               helper processes) per container, and of the daemon itself; and node's floor:
 *               20 idle node processes with the shims' flags and no shim code
 *
 * tsrund runs its default shim (the native one, docs/native-shim.md). BENCH_SUPERVISOR_N=20,100
 * sets the Ns. Every task, container, shim, cgroup and directory is removed before the section returns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SHIM_NODE_ARGS } from '../../supervisor/shims/client';
import { makeRootfs } from '../lib/bundle';
import { ctrAsync, ctrSync, rpcTimes, startContainerd, startTsrund, type Engine } from '../lib/engines';
import { memoryOf, memoryOfAll, type Memory } from '../lib/memory';
import type { BenchContext, SectionReport, Section } from '../lib/section';
import { rotation } from '../lib/stats';
import { supervisorReport, type ScaleResult, type Subject } from './supervisor-report';

function ns(): string {
  return `tsrun-bench-${process.pid}`;
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Start n sleep containers, one after another or all at once; returns each one's ms and the total. */
async function startMany(s: Subject, rootfs: string, n: number, parallel: boolean, tag: string): Promise<{ times: number[]; totalMs: number }> {
  const argv = (i: number): string[] => s.engine.run(['-d', ...s.runFlags], rootfs, `${tag}-${i}`, ['/bin/sleep', '100000']);
  const t0 = process.hrtime.bigint();
  const results = parallel
    ? await Promise.all(Array.from({ length: n }, (_, i) => ctrAsync(argv(i))))
    : await (async () => {
        const out = [];
        for (let i = 0; i < n; i++) out.push(await ctrAsync(argv(i)));
        return out;
      })();
  const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const failed = results.filter((r) => r.status !== 0);
  if (failed.length > 0) throw new Error(`${s.name}: ${failed.length} of ${n} 'ctr run -d' failed: ${failed[0]!.stderr.trim()}`);
  return { times: results.map((r) => r.ms), totalMs };
}

/** The shims' and the daemon's memory while containers run. */
function measureDensity(e: Engine): ScaleResult['density'] {
  return { shims: memoryOfAll(e.shimPids()), daemon: memoryOf(e.pid) };
}

/**
 * The floor under any node shim: n idle node processes with the shims' flags, each only listening
 * on a unix socket (no shim code), measured like the shims. What one shim per container can reach
 * at best while it is a node process.
 */
async function nodeFloor(dir: string, n: number): Promise<Memory & { count: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const script = "require('net').createServer((c) => c.end()).listen(process.argv[1])";
  const kids: ChildProcess[] = [];
  try {
    for (let i = 0; i < n; i++) {
      kids.push(spawn(process.execPath, [...SHIM_NODE_ARGS, '-e', script, path.join(dir, `${i}.sock`)], { stdio: 'ignore' }));
    }
    const deadline = Date.now() + 30_000;
    while (kids.some((_, i) => !fs.existsSync(path.join(dir, `${i}.sock`)))) {
      if (Date.now() > deadline) throw new Error(`node floor: ${n} idle node processes did not all listen within 30 s`);
      await settle(50);
    }
    await settle(1000);
    return memoryOfAll(kids.map((k) => k.pid ?? 0));
  } finally {
    await Promise.all(kids.map((k) => new Promise<void>((r) => (k.exitCode !== null || k.signalCode !== null ? r() : (k.once('exit', () => r()), k.kill('SIGKILL'))))));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function nsList(): number[] {
  const v = process.env['BENCH_SUPERVISOR_N'] ?? '20,100';
  return v.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** The supervisor section. */
export const supervisorSection: Section = {
  name: 'supervisor',
  unavailable(ctx) {
    if (process.geteuid?.() !== 0) return 'needs root (containers with cgroups and namespaces)';
    for (const b of ['tsrund', 'tsrun-shim']) if (!fs.existsSync(path.join(ctx.repo, 'bin', b))) return `bin/${b} is not built (make bin/tsrund bin/tsrun-shim)`;
    for (const p of ['/usr/bin/ctr', 'containerd', 'containerd-shim-runc-v2', 'runc']) {
      if (p.startsWith('/') ? !fs.existsSync(p) : !process.env['PATH']?.split(':').some((d) => fs.existsSync(path.join(d, p)))) return `${p} is not installed`;
    }
    return undefined;
  },
  async run(ctx: BenchContext): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'sup');
    fs.mkdirSync(dir, { recursive: true });
    const rootfs = makeRootfs(ctx.repo, dir);
    const engines: Engine[] = [];
    try {
      engines.push(await startContainerd(path.join(dir, 'cd'), ns()));
      engines.push(await startTsrund(ctx.repo, path.join(dir, 'td'), ns()));
      const [containerd, tsrund] = engines as [Engine, Engine];
      const base: Subject[] = [
        { name: 'containerd + runc', engine: containerd, runFlags: [] },
        { name: 'tsrund', engine: tsrund, runFlags: [] },
      ];
      const lifecycle = base;
      const scaled = base;

      // Warm the page cache and both daemons, untimed.
      for (const s of lifecycle) for (let i = 0; i < 2; i++) ctrSync(s.engine.run(['--rm'], rootfs, `warm-${i}`, ['/bin/true']));
      const runTimes = new Map<string, number[]>(lifecycle.map((s) => [s.name, []]));
      const floorTimes = new Map<string, number[]>(lifecycle.map((s) => [s.name, []]));
      const logStart = fs.statSync(tsrund.log).size;
      for (let round = 0; round < ctx.runs && !ctx.stopping(); round++) {
        for (const s of rotation(lifecycle, round)) {
          const r = await ctrAsync(s.engine.run(['--rm'], rootfs, `rm-${round}`, ['/bin/true']), 60_000);
          if (r.status !== 0) throw new Error(`${s.name}: ctr run --rm: ${r.stderr.trim()}`);
          runTimes.get(s.name)!.push(r.ms);
          floorTimes.get(s.name)!.push((await ctrAsync(s.engine.ctr(['version']), 60_000)).ms);
        }
        if ((round + 1) % 10 === 0) ctx.progress(`supervisor: ctr run --rm ${round + 1}/${ctx.runs}`);
      }

      const rpcs = rpcTimes(fs.readFileSync(tsrund.log, 'utf8').slice(logStart));
      const scale: ScaleResult[] = [];
      for (const n of nsList()) {
        for (const s of scaled) {
          if (ctx.stopping()) break;
          const tag = `n${n}`;
          ctx.progress(`supervisor: ${s.name}: ${n} containers, one after another`);
          const seq = await startMany(s, rootfs, n, false, `${tag}-s`);
          await settle(1000);
          const density = measureDensity(s.engine);
          await s.engine.clear();
          await settle(500);
          ctx.progress(`supervisor: ${s.name}: ${n} containers at once`);
          const par = await startMany(s, rootfs, n, true, `${tag}-p`);
          await s.engine.clear();
          await settle(500);
          scale.push({ subject: s.name, n, sequential: seq, parallel: par, density });
        }
      }
      // Node's own floor at the N of the per-container density target.
      const floorN = nsList().includes(20) ? 20 : nsList()[0];
      const floor = floorN === undefined || ctx.stopping() ? undefined : { n: floorN, memory: await nodeFloor(path.join(dir, 'floor'), floorN) };
      const versions = Object.assign({}, ...engines.map((e) => e.versions)) as Record<string, string>;
      return { markdown: supervisorReport({ runTimes, floorTimes, rpcs, rounds: ctx.runs }, scale, floor), versions };
    } finally {
      for (const e of [...engines].reverse()) await e.stop().catch((err: unknown) => ctx.progress(`supervisor: stopping ${e.name}: ${String(err)}`));
    }
  },
};
