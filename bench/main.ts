/*
 * `make bench`: run the sections (bench/sections/index.ts) one after the other and write
 * bench/RESULTS.md: the machine, the versions, then every section's tables.
 *
 *   node build/bench.cjs [--runs N] [--sections cli,...] [--out FILE]
 *
 * On a hybrid cgroup host (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified) crun
 * 1.8 refuses to run ("cgroups in hybrid mode not supported"), so the runner re-executes itself
 * under `unshare --mount --propagation private` and unmounts the cgroup2 tree there: every
 * runtime then sees the same v1-only host, and the mount namespace ends with the runner.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupMode, hostFacts, load, pageFaultMicros } from './lib/host';
import { table } from './lib/report';
import { median } from './lib/stats';
import type { BenchContext, SectionReport } from './lib/section';
import { SECTIONS } from './sections';

const NS_ENV = 'TSRUN_BENCH_PRIVATE_NS';
const UNIFIED = '/sys/fs/cgroup/unified';

interface Options {
  runs: number;
  sections: string[];
  out: string;
}

function parseOptions(argv: readonly string[], repo: string): Options {
  const o: Options = { runs: 30, sections: SECTIONS.map((s) => s.name), out: path.join(repo, 'bench', 'RESULTS.md') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--runs') o.runs = Number(value());
    else if (a === '--sections') o.sections = value().split(',').filter((s) => s !== '');
    else if (a === '--out') o.out = path.resolve(value());
    else throw new Error(`unknown argument ${a} (use --runs N, --sections a,b, --out FILE)`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`--runs wants a positive integer, got ${String(o.runs)}`);
  const unknown = o.sections.filter((n) => !SECTIONS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown section ${unknown.join(', ')} (have ${SECTIONS.map((s) => s.name).join(', ')})`);
  return o;
}

/** True when this mount namespace has the hybrid layout's cgroup2 mount at /sys/fs/cgroup/unified. */
function hasHybridUnified(): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === UNIFIED && l.includes(' - cgroup2 '));
}

/** Re-run this script in a private mount namespace; returns its exit status. */
function reexecInPrivateNamespace(): number {
  const forward = (): void => undefined; // the child gets the terminal's signals itself
  process.on('SIGINT', forward).on('SIGTERM', forward);
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [NS_ENV]: '1' },
  });
  if (r.error) throw new Error(`unshare --mount: ${r.error.message}`);
  return r.status ?? 1;
}

/**
 * NODE_EXTRA_CA_CERTS makes node parse that certificate file at every start-up, before any script
 * runs. It is part of some environments (this bench host's), not of node. No subject needs it,
 * and tsrun, tsrund's shims and tsctl drop it for themselves, so leaving it in would only slow
 * the `node -e 0` floor and flatter every ratio against it. Measure what it costs, then unset it
 * for every subject; returns the note that says so.
 */
function dropExtraCaCerts(value: string): string {
  const time = (env: NodeJS.ProcessEnv): number => {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore', env });
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const clean = { ...process.env };
  delete clean['NODE_EXTRA_CA_CERTS'];
  const withIt: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < 10; i++) {
    withIt.push(time(process.env));
    without.push(time(clean));
  }
  delete process.env['NODE_EXTRA_CA_CERTS'];
  const med = (xs: number[]): string => median([...xs].sort((a, b) => a - b)).toFixed(1);
  return `This environment sets NODE_EXTRA_CA_CERTS (${value}). node parses that file at every start-up: \`node -e 0\` took ${med(withIt)} ms with it and ${med(without)} ms without (medians of 10 interleaved runs). No subject needs it, and tsrun's launcher, tsrund (for its shims) and tsctl drop it themselves, so the benchmark unset it for every subject: \`node -e 0\` below is node's own floor.`;
}

async function main(): Promise<number> {
  const repo = path.resolve(__dirname, '..');
  const opts = parseOptions(process.argv.slice(2), repo);
  if (process.geteuid?.() === 0 && process.env[NS_ENV] !== '1' && hasHybridUnified()) return reexecInPrivateNamespace();
  const cgroups = cgroupMode(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  const notes: string[] = [];
  if (process.env[NS_ENV] === '1' && hasHybridUnified()) {
    const r = spawnSync('umount', [UNIFIED], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`umount ${UNIFIED}: ${r.stderr.trim()}`);
    notes.push(`All runtimes ran in a private mount namespace without the cgroup2 mount at ${UNIFIED} (crun 1.8 refuses hybrid hosts), so they all used the v1 controllers.`);
  }

  const extraCa = process.env['NODE_EXTRA_CA_CERTS'];
  if (extraCa !== undefined) notes.push(dropExtraCaCerts(extraCa));

  let stopping = false;
  const stop = (): void => {
    stopping = true;
  };
  process.on('SIGINT', stop).on('SIGTERM', stop);
  const tmp = fs.mkdtempSync(path.join(fs.existsSync('/run') ? '/run' : '/tmp', 'tsrun-bench-'));
  const ctx: BenchContext = { repo, tmp, runs: opts.runs, progress: (l) => void process.stderr.write(`bench: ${l}\n`), stopping: () => stopping };
  const loadBefore = load();
  const started = new Date();
  const reports: SectionReport[] = [];
  const skipped: string[] = [];
  try {
    for (const section of SECTIONS.filter((s) => opts.sections.includes(s.name))) {
      const why = section.unavailable(ctx);
      if (why !== undefined) {
        skipped.push(`${section.name}: ${why}`);
        ctx.progress(`skip ${section.name}: ${why}`);
        continue;
      }
      ctx.progress(`${section.name}: ${opts.runs} rounds`);
      reports.push(await section.run(ctx));
      if (stopping) break;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (stopping) {
    ctx.progress('interrupted: cleaned up, RESULTS.md not written');
    return 130;
  }

  const host = hostFacts(repo, cgroups);
  const versions = Object.assign({}, ...reports.map((r) => r.versions)) as Record<string, string>;
  const md = [
    '# tsrun benchmarks\n',
    `Written by \`make bench\` (bench/main.ts) on ${started.toISOString().replace(/\.\d+Z$/, 'Z')}, ${opts.runs} rounds. Do not edit by hand; rerun instead.\n`,
    '## Machine\n',
    table([
      ['', ''],
      ['kernel', host.kernel],
      ['cpu', `${host.cpu} × ${host.cpus}`],
      ['memory', host.memory],
      ['fault of a fresh 4 KiB page', `${pageFaultMicros().toFixed(2)} µs`],
      ['transparent huge pages', host.thp],
      ['cgroups', host.cgroups],
      ['node', `${host.node} (${process.execPath})`],
      ['tsrun commit', host.tsrunCommit],
      ...Object.entries(versions).map(([k, v]) => [k, v]),
      ['load average (1, 5, 15 min)', `${loadBefore} before, ${load()} after`],
    ]),
    ...notes.map((n) => `\n${n}\n`),
    ...skipped.map((s) => `\nSkipped ${s}.\n`),
    ...reports.map((r) => `\n${r.markdown}`),
  ].join('\n');
  fs.writeFileSync(opts.out, md.replace(/\n{3,}/g, '\n\n'));
  ctx.progress(`wrote ${opts.out}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
