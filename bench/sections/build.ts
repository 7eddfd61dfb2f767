/*
 * Build: `tsctl build` against docker's classic builder (`DOCKER_BUILDKIT=0 docker build`, a
 * dockerd started here: own data root, no bridge, no iptables) on the same ten-step Dockerfile
 * and context, FROM the tests' busybox image (test/helpers/images.ts), loaded into both:
 *
 *   cold     the image and its cache removed before every build (`ctr images rm --sync` on
 *            tsrund, `docker rmi` on dockerd, which takes the untagged intermediate images), so
 *            every step runs: two RUN containers, two COPY layers, six config-only steps
 *   rebuild  the unchanged Dockerfile and context again: every step after FROM is a cache hit;
 *            beside it each CLI's floor, `ps -aq` (start-up, connection, two calls), so the
 *            report can say what the rebuild costs above the client's start-up
 *
 * Both run `--network none` (tsctl's RUN has only lo; this dockerd has no bridge). Every timed
 * build's output is checked (no `Using cache` cold, one per step on a rebuild), so a build that
 * did other work than intended fails the section instead of landing in the table. Each step is
 * measured interleaved (rotating) and back to back. Without docker the tsctl rows are measured
 * alone and the report says why.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildOciLayout, dockerArchive, ociArchive } from '../../test/helpers/images';
import { which } from '../../test/helpers/host';
import { startDockerd, type Dockerd } from '../lib/dockerd';
import { CTR, startTsrund, type Engine } from '../lib/engines';
import { medianP95, ms, ratio, table } from '../lib/report';
import { samples, type BenchContext, type Samples, type Section, type SectionReport } from '../lib/section';
import { median, rotation } from '../lib/stats';

const BASE = 'docker.io/library/tsrunbench:build-base';
const NAME = 'docker.io/library/tsrunbench:build';
const CONTEXT_FILES = 32;

/** Ten steps: FROM, two RUN, two COPY, ENV, WORKDIR, LABEL, USER, CMD. */
const DOCKERFILE = `FROM tsrunbench:build-base
ENV APP=/app MODE=bench
WORKDIR /app
COPY files/ /app/files/
RUN echo "$MODE" > mode && mkdir -p data
COPY a.txt /app/
LABEL org.example.bench=build
RUN cp a.txt data/copy && ls -R /app > listing
USER nobody
CMD ["cat", "/app/mode"]
`;
const STEPS = 10;

function must(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'pipe'], env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${argv.slice(0, 8).join(' ')}…: ${r.error?.message ?? `exit ${r.status}: ${r.stderr.trim()}`}`);
  return r.stdout;
}

interface Subject {
  readonly key: string;
  /** untimed: remove the image and its cache (cold) */
  readonly before?: () => void;
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** throws when the build's output shows other work than the step means to time */
  readonly check: (stdout: string) => void;
}

/** One timed build; its output checked afterwards (outside the clock). */
function timedBuild(sub: Subject): number {
  const t0 = process.hrtime.bigint();
  const out = must(sub.argv, sub.env);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  sub.check(out);
  return ms;
}

function measure(ctx: BenchContext, s: Samples, step: string, subjects: readonly Subject[]): void {
  for (let r = 0; r < ctx.runs && !ctx.stopping(); r++) {
    for (const sub of rotation(subjects, r)) {
      sub.before?.();
      s.add(step, sub.key, timedBuild(sub));
    }
    ctx.progress(`build: ${step}: round ${r + 1}/${ctx.runs}`);
  }
  for (const sub of subjects) {
    for (let r = 0; r < ctx.runs && !ctx.stopping(); r++) {
      sub.before?.();
      s.add(`${step} (back to back)`, sub.key, timedBuild(sub));
    }
  }
  ctx.progress(`build: ${step}: back to back done`);
}

const hits = (out: string): number => (out.match(/^ ---> Using cache$/gm) ?? []).length;
function expectCold(what: string): (out: string) => void {
  return (out) => {
    if (hits(out) !== 0 || !/^Successfully built [0-9a-f]{12}$/m.test(out)) throw new Error(`${what}: a cold build used the cache or failed:\n${out.slice(-2000)}`);
  };
}
function expectRebuild(what: string): (out: string) => void {
  return (out) => {
    if (hits(out) !== STEPS - 1) throw new Error(`${what}: a rebuild ran a step instead of using the cache:\n${out.slice(-2000)}`);
  };
}

/** Why docker cannot be measured here, or undefined. */
function dockerMissing(): string | undefined {
  for (const p of ['dockerd', 'docker', 'skopeo']) if (which(p) === undefined) return `${p} is not installed`;
  return undefined;
}

export const buildSection: Section = {
  name: 'build',
  unavailable(ctx) {
    if (process.getuid?.() !== 0) return 'needs root';
    for (const p of ['containerd', 'tar']) if (which(p) === undefined) return `${p} is not installed`;
    if (!fs.existsSync(CTR)) return `ctr not found at ${CTR}`;
    if (!fs.existsSync(path.join(ctx.repo, 'bin', 'tsctl'))) return 'bin/tsctl is not built (make build)';
    return undefined;
  },
  async run(ctx: BenchContext): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'build');
    fs.mkdirSync(dir, { recursive: true });
    const ns = `tsrun-bench-build-${process.pid}`;
    const s = samples();
    let tsrund: Engine | undefined;
    let dockerd: Dockerd | undefined;
    const noDocker = dockerMissing();
    let versions: Record<string, string> = {};
    try {
      const img = buildOciLayout(path.join(dir, 'image'), BASE);
      const context = path.join(dir, 'context');
      fs.mkdirSync(path.join(context, 'files'), { recursive: true });
      for (let i = 0; i < CONTEXT_FILES; i++) fs.writeFileSync(path.join(context, 'files', `f${String(i).padStart(2, '0')}`), `${'x'.repeat(4095)}${i}`);
      fs.writeFileSync(path.join(context, 'a.txt'), 'text a\n');
      fs.writeFileSync(path.join(context, 'Dockerfile'), DOCKERFILE);

      tsrund = await startTsrund(ctx.repo, path.join(dir, 'tsrund'), ns, ['--shim-root', path.join(dir, 's')]);
      must(tsrund.ctr(['images', 'import', ociArchive(img, path.join(dir, 'image.tar'))]));
      const tsctlEnv = { ...process.env, TSCTL_HOST: `unix://${tsrund.socket}`, TSCTL_NAMESPACE: ns, TMPDIR: path.join(dir, 'tsctl-tmp') };
      fs.mkdirSync(tsctlEnv.TMPDIR, { recursive: true });
      const rmTsctl = (): void => void spawnSync(CTR, tsrund!.ctr(['images', 'rm', '--sync', NAME]).slice(1), { stdio: 'ignore' });
      const tsctl: Subject = { key: 'tsctl build', argv: [path.join(ctx.repo, 'bin', 'tsctl'), 'build', '--network', 'none', '-t', NAME, context], env: tsctlEnv, check: () => undefined };

      let docker: Subject | undefined;
      let rmDocker = (): void => undefined;
      if (noDocker === undefined) {
        dockerd = await startDockerd(path.join(dir, 'dockerd'), String(process.pid % 100000));
        must(dockerd.docker(['load', '-i', dockerArchive(img, path.join(dir, 'image-docker.tar'), BASE)]));
        const d = dockerd;
        const rmi = d.docker(['rmi', NAME]);
        rmDocker = (): void => void spawnSync(rmi[0]!, rmi.slice(1), { stdio: 'ignore' });
        docker = { key: 'docker build (classic)', argv: d.docker(['build', '--network', 'none', '-t', NAME, context]), env: { ...process.env, DOCKER_BUILDKIT: '0' }, check: () => undefined };
      }
      const both = [tsctl, ...(docker !== undefined ? [docker] : [])];
      // warm-up: one build each (page cache, the base image unpacked), checked as a cold build
      for (const sub of both) expectCold(sub.key)(must(sub.argv, sub.env));

      const cold = [
        { ...tsctl, before: rmTsctl, check: expectCold(tsctl.key) },
        ...(docker !== undefined ? [{ ...docker, before: rmDocker, check: expectCold(docker.key) }] : []),
      ];
      measure(ctx, s, 'cold', cold);
      // the cold pass ended with a build of each: the rebuild finds its cache
      const floors: Subject[] = [
        { key: 'tsctl ps -aq', argv: [tsctl.argv[0]!, 'ps', '-aq'], env: tsctlEnv, check: () => undefined },
        ...(dockerd !== undefined ? [{ key: 'docker ps -aq', argv: dockerd.docker(['ps', '-aq']), env: process.env, check: () => undefined }] : []),
      ];
      const rebuild = [...both.map((sub) => ({ ...sub, check: expectRebuild(sub.key) })), ...floors];
      measure(ctx, s, 'rebuild', rebuild);

      rmTsctl();
      rmDocker();
      versions = { ...tsrund.versions, ...(dockerd !== undefined ? { dockerd: dockerd.version, docker: must(['docker', '--version']).trim() } : {}) };
    } finally {
      await dockerd?.stop();
      await tsrund?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return { markdown: report(ctx, s, noDocker), versions };
  },
};

function report(ctx: BenchContext, s: Samples, noDocker: string | undefined): string {
  const med = (step: string, key: string): number => median([...s.get(step, key)].sort((a, b) => a - b));
  const keys = ['tsctl build', ...(noDocker === undefined ? ['docker build (classic)'] : [])];
  const rows = (step: string, more: readonly string[] = []): string[][] => [
    ['subject', 'interleaved', 'back to back'],
    ...[...keys, ...more].map((k) => [k, medianP95(s.get(step, k)), medianP95(s.get(`${step} (back to back)`, k))]),
  ];
  const floors = ['tsctl ps -aq', ...(noDocker === undefined ? ['docker ps -aq'] : [])];
  const above = (cli: string, build: string): string => `${ms(med('rebuild', build) - med('rebuild', `${cli} ps -aq`))} ms interleaved, ${ms(med('rebuild (back to back)', build) - med('rebuild (back to back)', `${cli} ps -aq`))} ms back to back`;
  const both = (step: string): string =>
    `${ratio(med(step, 'tsctl build') / med(step, 'docker build (classic)'))} interleaved, ${ratio(med(`${step} (back to back)`, 'tsctl build') / med(`${step} (back to back)`, 'docker build (classic)'))} back to back`;
  const verdict = (step: string): string => (noDocker === undefined ? `tsctl build: **${both(step)}** docker's (target ≤ 1×).` : `docker not measured: ${noDocker}.`);
  return [
    '## Build (tsctl build vs docker\'s classic builder)',
    '',
    `Median / p95 ms, ${ctx.runs} interleaved rounds and ${ctx.runs} runs of each subject back to back. \`tsctl build --network none -t NAME CONTEXT\` against \`DOCKER_BUILDKIT=0 docker build --network none -t NAME CONTEXT\` (a dockerd of its own) on one ${STEPS}-step Dockerfile (FROM the tests' busybox image; ENV, WORKDIR, COPY of a directory of ${CONTEXT_FILES} files, RUN, COPY of a file, LABEL, RUN, USER, CMD):`,
    '',
    'Cold: the image and its cached steps removed before each build (every step runs):',
    '',
    table(rows('cold')),
    verdict('cold'),
    '',
    'Rebuild of the unchanged Dockerfile and context (every step after FROM `---> Using cache`):',
    '',
    table(rows('rebuild', floors)),
    verdict('rebuild'),
    `Above the CLI's own floor (\`ps -aq\`: start-up, connection, two calls): tsctl build ${above('tsctl', 'tsctl build')}${noDocker === undefined ? `; docker build ${above('docker', 'docker build (classic)')}` : ''}.`,
    '',
  ].join('\n');
}
