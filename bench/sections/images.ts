/*
 * Images: tsrund against containerd 1.6 (and dockerd for run), the same image everywhere, built
 * here like the tests build theirs (test/helpers/images.ts: three busybox-static layers) plus one
 * layer of BENCH_IMAGES_DATA_MB MiB of random files (default 32), so that the data path counts:
 *
 *   import   `ctr -a <sock> images import ARCHIVE` (OCI archive, unpacked) against each engine;
 *            the image and its content are removed (`images rm --sync`) before every import
 *   pull     the image pushed once to a docker-registry on 127.0.0.1 (skopeo), then `ctr pull
 *            --plain-http` against each engine and `tsctl pull`; removed before every pull
 *   run      `tsctl run --rm --network none IMAGE /bin/true`, `docker run --rm --network none`
 *            (dockerd started here: own data root, no bridge, no iptables; `docker load` of a
 *            docker-archive of the same image) and `ctr run --rm IMAGE ID /bin/true` on both engines
 *   memory   tsrund's RSS, sampled every 20 ms, while `ctr images import` unpacks a one-layer image
 *            of BENCH_IMAGES_BIG_MB MiB (default 500) of random data (an uncompressed tar made in the
 *            run's temp dir and removed), against the same for the small image
 *
 * BENCH_IMAGES_STEPS (comma-separated, default all four) picks the steps to run.
 *
 * Every step is measured twice: interleaved rounds (every subject once per round, rotating) and
 * a back-to-back pass (each subject `runs` times in a row), since a cache that refills between
 * rounds would hide behind interleaving. Everything is removed before the section returns.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { buildOciLayout, dockerArchive, ociArchive, type TestImage } from '../../test/helpers/images';
import { registryMissing, startRegistry, type RegistryServer } from '../../test/helpers/registry';
import { cgroupDirsFor, removeCgroupTree, which } from '../../test/helpers/host';
import { CTR, startContainerd, startTsrund, type Engine } from '../lib/engines';
import { medianP95, ratio, table } from '../lib/report';
import { samples, type BenchContext, type Samples, type Section, type SectionReport } from '../lib/section';
import { median, rotation } from '../lib/stats';
import { stopProcess } from '../lib/dockerd';

const DATA_MB = Number(process.env['BENCH_IMAGES_DATA_MB'] ?? 32);
const BIG_MB = Number(process.env['BENCH_IMAGES_BIG_MB'] ?? 500);
const NAME = 'docker.io/library/tsrunbench:img';
const STEP_NAMES = ['import', 'pull', 'run', 'memory'] as const;
type Step = (typeof STEP_NAMES)[number];
/** BENCH_IMAGES_STEPS (comma-separated, default all): the steps to run, e.g. `run` alone. */
const STEPS: ReadonlySet<string> = new Set((process.env['BENCH_IMAGES_STEPS'] ?? STEP_NAMES.join(',')).split(',').filter((x) => x !== ''));
const doing = (step: Step): boolean => STEPS.has(step);
const BIG = 'docker.io/library/tsrunbench:big';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function must(argv: readonly string[], timeoutMs = 600_000, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${argv.slice(0, 8).join(' ')}…: ${r.error?.message ?? `exit ${r.status}: ${r.stderr.trim()}`}`);
  return r.stdout;
}

/** One timed command (fork, exec, wait); throws when it fails. */
function timed(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  must(argv, 600_000, env);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Add a layer of `mb` MiB of random files (gzip) on top of the layout's image. */
function addDataLayer(dir: string, img: TestImage, mb: number): void {
  const src = path.join(dir, 'data-layer');
  fs.mkdirSync(path.join(src, 'opt', 'data'), { recursive: true });
  const files = 8;
  for (let i = 0; i < files; i++) must(['sh', '-c', `head -c ${Math.ceil((mb * 1024 * 1024) / files)} /dev/urandom > "$1"`, 'sh', path.join(src, 'opt', 'data', `f${i}`)]);
  const tarPath = path.join(dir, 'data-layer.tar');
  must(['tar', '--owner=0', '--group=0', '--numeric-owner', '-C', src, '-cf', tarPath, '.']);
  const tar = fs.readFileSync(tarPath);
  const gz = zlib.gzipSync(tar, { level: 1 });
  fs.rmSync(src, { recursive: true, force: true });
  fs.rmSync(tarPath);
  const blob = (d: string): string => path.join(img.layout, 'blobs', 'sha256', d.slice(7));
  fs.writeFileSync(blob(sha(gz)), gz);
  const config = JSON.parse(fs.readFileSync(blob(img.configDigest), 'utf8')) as { rootfs: { diff_ids: string[] }; history: unknown[] };
  config.rootfs.diff_ids.push(sha(tar));
  config.history.push({ created: '2024-01-01T00:00:00Z', created_by: 'data layer' });
  const cbytes = Buffer.from(JSON.stringify(config));
  fs.writeFileSync(blob(sha(cbytes)), cbytes);
  const manifest = JSON.parse(fs.readFileSync(blob(img.manifestDigest), 'utf8')) as { config: { digest: string; size: number }; layers: Array<{ mediaType: string; digest: string; size: number }> };
  manifest.config.digest = sha(cbytes);
  manifest.config.size = cbytes.length;
  manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length });
  const mbytes = Buffer.from(JSON.stringify(manifest));
  fs.writeFileSync(blob(sha(mbytes)), mbytes);
  const index = JSON.parse(fs.readFileSync(path.join(img.layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number }> };
  index.manifests[0]!.digest = sha(mbytes);
  index.manifests[0]!.size = mbytes.length;
  fs.writeFileSync(path.join(img.layout, 'index.json'), JSON.stringify(index));
  img.manifestDigest = sha(mbytes);
  img.configDigest = sha(cbytes);
}

/** An OCI archive of one uncompressed layer: one file of `mb` MiB of random bytes. */
function bigArchive(dir: string, mb: number): string {
  const layout = path.join(dir, 'big-layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const src = path.join(dir, 'big-src');
  fs.mkdirSync(src);
  must(['sh', '-c', `head -c ${mb * 1024 * 1024} /dev/urandom > "$1"`, 'sh', path.join(src, 'random')]);
  const tarPath = path.join(dir, 'big-layer.tar');
  must(['tar', '--owner=0', '--group=0', '--numeric-owner', '-C', src, '-cf', tarPath, 'random']);
  fs.rmSync(src, { recursive: true, force: true });
  const digest = `sha256:${must(['sha256sum', tarPath]).split(' ')[0]!}`;
  const size = fs.statSync(tarPath).size;
  fs.renameSync(tarPath, path.join(blobs, digest.slice(7)));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/random'] }, rootfs: { type: 'layers', diff_ids: [digest] } }));
  fs.writeFileSync(path.join(blobs, sha(config).slice(7)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size }],
    }),
  );
  fs.writeFileSync(path.join(blobs, sha(manifest).slice(7)), manifest);
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': BIG }, platform: { architecture: 'amd64', os: 'linux' } }] }),
  );
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const out = path.join(dir, 'big.tar');
  must(['tar', '-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  fs.rmSync(layout, { recursive: true, force: true });
  return out;
}

/** The RSS (KiB) of `pid` now. */
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** Run argv while sampling `pid`'s RSS every 20 ms; the peak and the RSS before, in MiB, and the wall time. */
function peakDuring(argv: readonly string[], pid: number): Promise<{ before: number; peak: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const before = rssKiB(pid);
    let peak = before;
    const t0 = process.hrtime.bigint();
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const timer = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 20);
    c.on('close', (status) => {
      clearInterval(timer);
      peak = Math.max(peak, rssKiB(pid));
      if (status !== 0) reject(new Error(`${argv.slice(0, 8).join(' ')}: exit ${status}: ${err.trim()}`));
      else resolve({ before: before / 1024, peak: peak / 1024, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
  });
}

interface Subject {
  readonly key: string;
  /** untimed: make the next measurement cold (or warm) */
  readonly before?: () => void;
  readonly argv: () => string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Interleaved rounds, then a back-to-back pass; samples under `step` and `step (back to back)`. */
function measure(ctx: BenchContext, s: Samples, step: string, subjects: readonly Subject[]): void {
  for (let r = 0; r < ctx.runs && !ctx.stopping(); r++) {
    for (const sub of rotation(subjects, r)) {
      sub.before?.();
      s.add(step, sub.key, timed(sub.argv(), sub.env));
    }
    ctx.progress(`images: ${step}: round ${r + 1}/${ctx.runs}`);
  }
  for (const sub of subjects) {
    for (let r = 0; r < ctx.runs && !ctx.stopping(); r++) {
      sub.before?.();
      s.add(`${step} (back to back)`, sub.key, timed(sub.argv(), sub.env));
    }
  }
  ctx.progress(`images: ${step}: back to back done`);
}

function stopDaemon(p: ChildProcess | undefined): Promise<void> {
  // never started: nothing to stop (stopProcess also returns at once for one that has exited)
  return p === undefined ? Promise.resolve() : stopProcess(p);
}

export const imagesSection: Section = {
  name: 'images',
  unavailable() {
    if (process.getuid?.() !== 0) return 'needs root';
    for (const p of ['containerd', 'containerd-shim-runc-v2', 'runc', 'dockerd', 'docker', 'skopeo', 'tar']) if (which(p) === undefined) return `${p} is not installed`;
    if (!fs.existsSync(CTR)) return `ctr not found at ${CTR}`;
    return registryMissing();
  },
  async run(ctx: BenchContext): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'images');
    fs.mkdirSync(dir, { recursive: true });
    const ns = `tsrun-bench-img-${process.pid}`;
    const s = samples();
    const mem: Array<{ what: string; before: number; peak: number; ms: number }> = [];
    let tsrund: Engine | undefined;
    let containerd: Engine | undefined;
    let dockerd: ChildProcess | undefined;
    let registry: RegistryServer | undefined;
    const tag = String(process.pid % 100000);
    const dockerSock = `unix://${dir}/docker.sock`;
    let versions: Record<string, string> = {};
    try {
      const img = buildOciLayout(path.join(dir, 'image'), NAME);
      addDataLayer(path.join(dir, 'image'), img, DATA_MB);
      const archive = ociArchive(img, path.join(dir, 'image.tar'));
      const dockerTar = dockerArchive(img, path.join(dir, 'image-docker.tar'), NAME);
      tsrund = await startTsrund(ctx.repo, path.join(dir, 'tsrund'), ns, ['--shim-root', path.join(dir, 's')]);
      containerd = await startContainerd(path.join(dir, 'containerd'), ns);
      const engines = [tsrund, containerd];
      const tsctlEnv = { ...process.env, TSCTL_HOST: `unix://${tsrund.socket}`, TSCTL_NAMESPACE: ns, TMPDIR: path.join(dir, 'tsctl-tmp') };
      fs.mkdirSync(tsctlEnv.TMPDIR, { recursive: true });
      const tsctl = (a: readonly string[]): string[] => [path.join(ctx.repo, 'bin', 'tsctl'), ...a];
      const rmi = (e: Engine, name: string) => (): void => {
        spawnSync(CTR, e.ctr(['images', 'rm', '--sync', name]).slice(1), { stdio: 'ignore' });
      };

      // import + unpack, cold
      if (doing('import')) {
        measure(
          ctx,
          s,
          'import',
          engines.map((e) => ({ key: `ctr import → ${e.name}`, before: rmi(e, NAME), argv: () => e.ctr(['images', 'import', archive]) })),
        );
      }

      // pull from a local registry, cold
      if (doing('pull')) {
        registry = await startRegistry();
        const ref = `${registry.host}/bench/tsrunbench:img`;
        // the import step leaves NAME behind, and its blobs are the pulled image's: without this
        // every "cold" pull found all its content present and only re-checked it
        for (const e of engines) rmi(e, NAME)();
        must(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${img.layout}:img`, `docker://${ref}`]);
        measure(ctx, s, 'pull', [
          ...engines.map((e) => ({ key: `ctr pull → ${e.name}`, before: rmi(e, ref), argv: () => e.ctr(['images', 'pull', '--plain-http', ref]) })),
          { key: 'tsctl pull → tsrund', before: rmi(tsrund, ref), argv: () => tsctl(['pull', ref]), env: tsctlEnv },
        ]);
      }

      // run: the image in every engine
      for (const e of engines) must(e.ctr(['images', 'import', archive]));
      if (doing('run')) {
      fs.writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
      const dlog = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
      dockerd = spawn('dockerd', ['--config-file', `${dir}/daemon.json`, '--data-root', `${dir}/docker`, '--exec-root', `${dir}/docker-exec`, '--pidfile', `${dir}/docker.pid`, '-H', dockerSock, '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--cgroup-parent', `/tsrun-bench-docker${tag}`], { stdio: ['ignore', dlog, dlog] });
      fs.closeSync(dlog);
      const dockerUp = Date.now() + 60_000;
      while (spawnSync('docker', ['-H', dockerSock, 'version'], { stdio: 'ignore' }).status !== 0) {
        if (Date.now() > dockerUp || dockerd.exitCode !== null) throw new Error(`dockerd did not come up: ${fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      must(['docker', '-H', dockerSock, 'load', '-i', dockerTar]);
      let n = 0;
      const runSubjects: Subject[] = [
        { key: 'tsctl run --rm', argv: () => tsctl(['run', '--rm', '--network', 'none', NAME, '/bin/true']), env: tsctlEnv },
        { key: 'docker run --rm', argv: () => ['docker', '-H', dockerSock, 'run', '--rm', '--network', 'none', NAME, '/bin/true'] },
        ...engines.map((e) => ({ key: `ctr run --rm → ${e.name}`, argv: () => e.ctr(['run', '--rm', '--fifo-dir', path.join(e.dir, 'fifo'), NAME, `b${n++}`, '/bin/true']) })),
      ];
      for (const sub of runSubjects) timed(sub.argv(), sub.env); // warm-up (the image unpacked, caches filled)
      measure(ctx, s, 'run', runSubjects);
      }

      // tsrund's memory while unpacking a big layer, against the small image
      if (doing('memory')) {
        const big = bigArchive(dir, BIG_MB);
        for (let r = 0; r < Math.max(1, Math.min(3, ctx.runs)) && !ctx.stopping(); r++) {
          rmi(tsrund, NAME)();
          mem.push({ what: `image (${DATA_MB} MiB data layer)`, ...(await peakDuring(tsrund.ctr(['images', 'import', archive]), tsrund.pid)) });
          rmi(tsrund, BIG)();
          mem.push({ what: `${BIG_MB} MiB layer`, ...(await peakDuring(tsrund.ctr(['images', 'import', big]), tsrund.pid)) });
        }
        rmi(tsrund, BIG)();
        fs.rmSync(big, { force: true });
      }
      versions = { ...tsrund.versions, ...containerd.versions, dockerd: must(['dockerd', '--version']).trim() };
    } finally {
      if (dockerd !== undefined) {
        const ids = spawnSync('docker', ['-H', dockerSock, 'ps', '-aq'], { encoding: 'utf8' }).stdout?.split('\n').filter((x) => x !== '') ?? [];
        if (ids.length > 0) spawnSync('docker', ['-H', dockerSock, 'rm', '-f', ...ids]);
        await stopDaemon(dockerd);
        for (const d of cgroupDirsFor(`tsrun-bench-docker${tag}`)) removeCgroupTree(d);
        spawnSync('umount', ['-R', `${dir}/docker`], { stdio: 'ignore' });
      }
      await registry?.stop();
      await tsrund?.stop();
      await containerd?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return { markdown: report(ctx, s, mem), versions };
  },
};

function report(ctx: BenchContext, s: Samples, mem: ReadonlyArray<{ what: string; before: number; peak: number; ms: number }>): string {
  const med = (step: string, key: string): number => median([...s.get(step, key)].sort((a, b) => a - b));
  const rows = (step: string, keys: readonly string[]): string[][] => [
    ['subject', 'interleaved', 'back to back'],
    ...keys.map((k) => [k, medianP95(s.get(step, k)), medianP95(s.get(`${step} (back to back)`, k))]),
  ];
  const both = (step: string, a: string, b: string): string => `${ratio(med(step, a) / med(step, b))} interleaved, ${ratio(med(`${step} (back to back)`, a) / med(`${step} (back to back)`, b))} back to back`;
  const peak = (what: string): number => Math.max(...mem.filter((m) => m.what === what).map((m) => m.peak));
  const memRows = [...new Set(mem.map((m) => m.what))].map((w) => {
    const ms = mem.filter((m) => m.what === w);
    return [w, ms.map((m) => m.before.toFixed(0)).join(', '), ms.map((m) => m.peak.toFixed(0)).join(', '), ms.map((m) => (m.ms / 1000).toFixed(1)).join(', ')];
  });
  const whats = [...new Set(mem.map((m) => m.what))];
  return [
    '## Images (tsrund vs containerd 1.6, docker)',
    '',
    `Median / p95 ms, ${ctx.runs} interleaved rounds and ${ctx.runs} runs of each subject back to back. The image: the tests' three busybox layers plus ${DATA_MB} MiB of random files in /opt/data in a fourth (gzip; the image's VOLUME /data is the tests' small one).${STEPS.size < STEP_NAMES.length ? ` Steps run (BENCH_IMAGES_STEPS): ${STEP_NAMES.filter(doing).join(', ')}.` : ''}`,
    '',
    ...(doing('import')
      ? [
          '`ctr images import` of the OCI archive (with unpack; the image and its content removed before each):',
          '',
          table(rows('import', ['ctr import → tsrund', 'ctr import → containerd'])),
          `tsrund: **${both('import', 'ctr import → tsrund', 'ctr import → containerd')}** containerd's (target ≤ 1×).`,
          '',
        ]
      : []),
    ...(doing('pull')
      ? [
          'Pull from a docker-registry on 127.0.0.1 (removed before each):',
          '',
          table(rows('pull', ['ctr pull → tsrund', 'ctr pull → containerd', 'tsctl pull → tsrund'])),
          `ctr pull from tsrund: **${both('pull', 'ctr pull → tsrund', 'ctr pull → containerd')}** containerd's; tsctl pull: **${both('pull', 'tsctl pull → tsrund', 'ctr pull → containerd')}** (target ≤ 1×).`,
          '',
        ]
      : []),
    ...(doing('run')
      ? [
          '`run --rm IMAGE /bin/true` (`--network none` for tsctl and docker; ctr makes no network):',
          '',
          table(rows('run', ['tsctl run --rm', 'docker run --rm', 'ctr run --rm → tsrund', 'ctr run --rm → containerd'])),
          `tsctl run: **${both('run', 'tsctl run --rm', 'docker run --rm')}** docker's (target ≤ 0.5×) and **${both('run', 'tsctl run --rm', 'ctr run --rm → containerd')}** ctr run on containerd (target ≤ 1×).`,
          '',
        ]
      : []),
    ...(doing('memory')
      ? [
          `tsrund's RSS (MiB, per import) while \`ctr images import\` unpacks, sampled every 20 ms:`,
          '',
          table([['image', 'RSS before', 'peak RSS', 'import s'], ...memRows]),
          whats.length === 2 ? `Peak with the ${BIG_MB} MiB layer: ${peak(whats[1]!).toFixed(0)} MiB, with the small image ${peak(whats[0]!).toFixed(0)} MiB.` : '',
          '',
        ]
      : []),
  ].join('\n');
}
