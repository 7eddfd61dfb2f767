/*
 * CLI latency: tsrun, runc and crun on the same busybox bundles, every step timed on its own,
 * with bare `node -e 0` as the floor under any Node program. One round measures every subject
 * once, in a rotating order:
 *
 *   node -e 0
 *   node -e 0 with the GLIBC_TUNABLES bin/tsrun's launcher gives node (not a target; shows
 *                what the tunables alone do to node's floor)
 *   RT run    --bundle true   ID-run        /bin/true; run deletes it when it exits
 *   RT run    --bundle limits ID-lim        /bin/true with memory.limit 4 MiB and pids.limit 1
 *   RT create --bundle sleep  ID            sleep 1000
 *   RT start ID · RT state ID · RT kill ID KILL · (wait for "stopped", untimed) · RT delete ID
 *
 * TSRUN=, RUNC=, CRUN= pick the binaries; TSRUN_BASELINE= adds a second tsrun build (say, the
 * previous commit's) as one more subject, to measure a change in the same run.
 *
 * Every runtime gets its own --root under the run's temp dir; containers left by a failed or
 * interrupted round are force-deleted before the section returns.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, makeRootfs } from '../lib/bundle';
import { commandRunner, outputOf, which, type Runner } from '../lib/exec';
import { medianP95, ms, ratio, shownPath, table } from '../lib/report';
import { samples, type BenchContext, type Samples, type Section, type SectionReport } from '../lib/section';
import { rotation, summarize } from '../lib/stats';
import { LAUNCHER_GLIBC_TUNABLES } from '../../runtime/cli/startup/env';

/** The steps in table order. */
const STEPS = ['run', 'run (4 MiB, 1 pid)', 'create', 'start', 'state', 'kill', 'delete'] as const;
const FLOOR = 'node -e 0';
const FLOOR_TUNED = "node -e 0, tsrun's GLIBC_TUNABLES";

/** A runtime binary under test. */
interface Runtime {
  readonly name: string;
  readonly bin: string;
  readonly root: string;
}

/** The runtimes this host has: tsrun always, runc and crun when installed ($RUNC, $CRUN override). */
function runtimes(ctx: BenchContext): Runtime[] {
  const found: [string, string | undefined][] = [
    ['tsrun', process.env['TSRUN'] ?? path.join(ctx.repo, 'bin', 'tsrun')],
    ['runc', process.env['RUNC'] ?? which('runc')],
    ['crun', process.env['CRUN'] ?? which('crun')],
    // Another tsrun build to compare against (an older commit's bin/tsrun), when given.
    ['tsrun-baseline', process.env['TSRUN_BASELINE']],
  ];
  return found.filter((f): f is [string, string] => f[1] !== undefined).map(([name, bin]) => ({ name, bin, root: path.join(ctx.tmp, `root-${name}`) }));
}

interface Bundles {
  readonly true: string;
  readonly limits: string;
  readonly sleep: string;
}

/** One lifecycle of `rt` in round `round`, each step's time added to `s`. */
function lifecycle(run: Runner, rt: Runtime, b: Bundles, round: number, s: Samples): void {
  const cli = (...args: string[]): string[] => [rt.bin, '--root', rt.root, ...args];
  const id = `bench-${round}`;
  s.add('run', rt.name, run.check(cli('run', '--bundle', b.true, `${id}-run`)).ms);
  s.add('run (4 MiB, 1 pid)', rt.name, run.check(cli('run', '--bundle', b.limits, `${id}-lim`)).ms);
  s.add('create', rt.name, run.check(cli('create', '--bundle', b.sleep, id)).ms);
  s.add('start', rt.name, run.check(cli('start', id)).ms);
  const st = run.check(cli('state', id));
  s.add('state', rt.name, st.ms);
  const status = (JSON.parse(st.stdout) as { status?: string }).status;
  if (status !== 'running') throw new Error(`${rt.name} state ${id}: status ${String(status)}, want running`);
  s.add('kill', rt.name, run.check(cli('kill', id, 'KILL')).ms);
  waitStopped(run, cli('state', id));
  s.add('delete', rt.name, run.check(cli('delete', id)).ms);
}

/** Poll `state` (untimed) until the container is stopped; SIGKILL'd init is reaped asynchronously. */
function waitStopped(run: Runner, stateArgv: string[]): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const st = run.check(stateArgv);
    if ((JSON.parse(st.stdout) as { status?: string }).status === 'stopped') return;
    if (Date.now() > deadline) throw new Error(`${stateArgv.join(' ')}: still not stopped after 10 s`);
  }
}

/** Force-delete whatever containers are left under the runtime's root. */
function sweep(run: Runner, rt: Runtime): void {
  if (!fs.existsSync(rt.root)) return;
  const listed = run.timed([rt.bin, '--root', rt.root, 'list', '--quiet']);
  for (const id of listed.stdout.split('\n').filter((l) => l.trim() !== '')) run.timed([rt.bin, '--root', rt.root, 'delete', '--force', id.trim()]);
  fs.rmSync(rt.root, { recursive: true, force: true });
}

function report(rts: readonly Runtime[], s: Samples, runs: number): string {
  const names = [FLOOR, ...rts.map((r) => r.name)];
  const med = (step: string, who: string): number => summarize(s.get(step, who)).median;
  const floor = med(FLOOR, FLOOR);
  const out: string[] = [];
  out.push(`## CLI latency\n`);
  out.push(`Wall time of one invocation in ms, median / p95 over ${runs} interleaved rounds (fork, exec and wait included, the same for every subject).\n`);
  out.push(table([['step', ...names], ...[FLOOR, FLOOR_TUNED].map((f) => [f, medianP95(s.get(f, FLOOR)), ...rts.map(() => '')]), ...STEPS.map((step) => [step, '', ...rts.map((r) => medianP95(s.get(step, r.name)))])]));
  const others = rts.filter((r) => r.name !== 'tsrun');
  out.push(`\nRatios of medians (tsrun ÷ other):\n`);
  out.push(table([['step', 'tsrun ÷ node -e 0', ...others.map((o) => `tsrun ÷ ${o.name}`)], ...STEPS.map((step) => [step, ratio(med(step, 'tsrun') / floor), ...others.map((o) => ratio(med(step, 'tsrun') / med(step, o.name)))])]));
  out.push(`\n### Targets\n`);
  const rows: string[][] = [['step', 'target', 'tsrun median', 'limit', 'met']];
  for (const step of ['start', 'state', 'kill', 'delete']) {
    const limit = 1.15 * floor;
    rows.push([step, '≤ 1.15 × node -e 0', ms(med(step, 'tsrun')), ms(limit), med(step, 'tsrun') <= limit ? 'yes' : 'no']);
  }
  if (rts.some((r) => r.name === 'crun')) {
    for (const step of ['create', 'run', 'run (4 MiB, 1 pid)']) {
      const limit = floor + med(step, 'crun');
      rows.push([step, '≤ node -e 0 + crun', ms(med(step, 'tsrun')), ms(limit), med(step, 'tsrun') <= limit ? 'yes' : 'no']);
    }
  }
  out.push(table(rows));
  const tuned = med(FLOOR_TUNED, FLOOR);
  out.push(`\nThe targets are on bare \`node -e 0\`. bin/tsrun's launcher starts node with \`GLIBC_TUNABLES=${LAUNCHER_GLIBC_TUNABLES}\` (runtime/cli/startup/launcher.sh: the snapshot's buffers fault in as huge pages); \`node -e 0\` with the same tunables took ${ms(tuned)} ms, ${ratio(tuned / floor)} the bare floor.`);
  return out.join('\n');
}

/** The CLI latency section. */
export const cliSection: Section = {
  name: 'cli',
  unavailable(ctx) {
    if (process.geteuid?.() !== 0) return 'needs root (containers with cgroups and namespaces)';
    if (!fs.existsSync(path.join(ctx.repo, 'bin', 'tsrun'))) return 'bin/tsrun is not built';
    return undefined;
  },
  async run(ctx): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'cli');
    fs.mkdirSync(dir, { recursive: true });
    const run = commandRunner(dir);
    const rts = runtimes(ctx);
    const tsrun = rts.find((r) => r.name === 'tsrun')!;
    const spec = path.join(dir, 'spec');
    fs.mkdirSync(spec);
    run.check([tsrun.bin, 'spec', '--bundle', spec]);
    const base = fs.readFileSync(path.join(spec, 'config.json'), 'utf8');
    const rootfs = makeRootfs(ctx.repo, dir);
    const b: Bundles = {
      true: makeBundle(dir, 'true', base, rootfs, { args: ['/bin/true'] }),
      limits: makeBundle(dir, 'limits', base, rootfs, { args: ['/bin/true'], memoryLimit: 4 * 2 ** 20, pidsLimit: 1 }),
      sleep: makeBundle(dir, 'sleep', base, rootfs, { args: ['/bin/sleep', '1000'] }),
    };
    const s = samples();
    const tunedRun = commandRunner(dir, { ...process.env, GLIBC_TUNABLES: LAUNCHER_GLIBC_TUNABLES });
    const subjects = [FLOOR, FLOOR_TUNED, ...rts.map((r) => r.name)];
    try {
      for (let round = 0; round < ctx.runs && !ctx.stopping(); round++) {
        for (const who of rotation(subjects, round)) {
          if (who === FLOOR) s.add(FLOOR, FLOOR, run.check([process.execPath, '-e', '0']).ms);
          else if (who === FLOOR_TUNED) s.add(FLOOR_TUNED, FLOOR, tunedRun.check([process.execPath, '-e', '0']).ms);
          else lifecycle(run, rts.find((r) => r.name === who)!, b, round, s);
        }
        if ((round + 1) % 5 === 0) ctx.progress(`cli: ${round + 1}/${ctx.runs} rounds`);
      }
    } finally {
      for (const rt of rts) sweep(run, rt);
    }
    const versions: Record<string, string> = {};
    for (const rt of rts) versions[rt.name] = `${outputOf([rt.bin, '--version'])?.split('\n').slice(0, 2).join(', ') ?? 'unknown'} (${shownPath(rt.bin)})`;
    return { markdown: report(rts, s, s.get(FLOOR, FLOOR).length), versions };
  },
};
