/*
 * Networking cost, tsctl + tsrund (CNI: bridge, host-local, portmap, tuning) against docker 20.10
 * (libnetwork's bridge driver), both started here in isolation on one busybox rootfs:
 *
 *   per container   `run --rm --network bridge … true` minus `run --rm --network none … true`,
 *                   every subject once per round in rotating order; the difference of the
 *                   medians is what networking adds to one container's life
 *   50 parallel     50 `run -d --network <user network> … sleep` at once, then each container
 *                   pings every other (all reachable from all; the addresses come from one
 *                   `inspect` of all fifty, one exec per container pings); the wall time of both,
 *                   per engine; the same CLI calls on both sides
 *
 * The mesh needs one ARP entry per container and peer, 50 × 49, and the kernel's neighbour table
 * is one for all namespaces (net.ipv4.neigh.default.gc_thresh3, 1024 by default, counts them all):
 * beyond it, and with entries younger than 5 s unreclaimable, new ARP entries fail and pings are
 * dropped whatever made the network (both engines lost pairs so). The section raises gc_thresh2/3
 * by what the mesh needs while it runs, restores them after, and reports the table's overflows
 * (table_fulls) during each check, which must stay 0 for the check to mean anything.
 *
 * dockerd gets a bridge device and subnet of its own (made here, never docker0) and iptables on,
 * with --ip-forward=false (a dockerd that turns forwarding on also sets the host's FORWARD policy
 * to DROP, under everyone else; the bridge plugin of tsrund turns it on anyway);
 * tsrund gets its own bridge name and chain prefix. The iptables tables are shared with the whole
 * machine, so the cleanup removes only what the section made: docker's user network through
 * `docker network rm`, then the rules that name one of the section's devices, tsrund's chains (by
 * its prefix), and docker's chains if this dockerd made them and nothing but docker's defaults is
 * left in them. Traffic goes only to the containers made here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chooseSubnet, formatCidr, formatIp, hostRoutes } from '../../supervisor/networks/config';
import { allPids, cgroupDirsFor, cmdline, killPids, mountsUnder, removeCgroupTree, unmountAll, which } from '../../test/helpers/host';
import { makeRootfs } from '../lib/bundle';
import { deleteRules, devicesOf, listTable, removeChains, targetOf, type Table } from '../lib/iptables';
import { medianP95, ratio, table } from '../lib/report';
import { samples, type BenchContext, type Section, type SectionReport } from '../lib/section';
import { median, rotation } from '../lib/stats';
import { stopProcess } from '../lib/dockerd';

const PARALLEL = Number(process.env['BENCH_NETWORK_PARALLEL'] ?? 50);
/**
 * At least this many rounds of the per-container runs, whatever --runs says: the cost is the
 * difference of two medians, and docker's runs vary by far more than its networking cost from one
 * to the next; a round is only seconds.
 */
const MIN_ROUNDS = Number(process.env['BENCH_NETWORK_ROUNDS'] ?? 40);

interface Cli {
  readonly name: string;
  /** argv of one CLI call */
  argv(args: readonly string[]): string[];
  /** the image argument of run */
  readonly image: string;
}

function runSync(argv: readonly string[], timeoutMs = 120_000): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${argv.slice(0, 6).join(' ')}…: ${r.error?.message ?? `${r.stdout.trim()} ${r.stderr.trim()}`}`);
  return r.stdout;
}

function timed(argv: readonly string[], timeoutMs = 300_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => (err += s));
    c.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(timer);
      if (status === 0) resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      else reject(new Error(`${argv.slice(0, 8).join(' ')}…: exit ${status}: ${err.trim()}`));
    });
  });
}

async function waitUntil(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not ready within ${ms} ms`);
}

/** True while `p` runs (a process killed by a signal has a signalCode and no exitCode). */
function running(p: ChildProcess | undefined): p is ChildProcess {
  return p !== undefined && p.exitCode === null && p.signalCode === null;
}

function stopDaemon(p: ChildProcess | undefined): Promise<void> {
  // an 'exit' that has already happened never comes again: waiting for it would leave nothing on the event loop, and node would quit in the middle of the cleanup
  return running(p) ? stopProcess(p) : Promise.resolve();
}

/** stdout of a command, asynchronously (bounded by `timeoutMs`); a failing exit is thrown with its output. */
function output(argv: readonly string[], timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (x: string) => (out += x));
    c.stderr.setEncoding('utf8').on('data', (x: string) => (err += x));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(timer);
      if (status === 0) resolve(out);
      else reject(new Error(`${argv.slice(0, 8).join(' ')}…: exit ${status}: ${out.trim()} ${err.trim()}`));
    });
  });
}

/** Run `fns` with at most `n` at a time. */
async function bounded(n: number, fns: readonly (() => Promise<unknown>)[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, fns.length) }, async () => {
      while (next < fns.length) await fns[next++]!();
    }),
  );
}

/** Times the kernel's ARP table was full (the sum of /proc/net/stat/arp_cache's per-CPU table_fulls). */
function arpTableFulls(): number {
  const [head = '', ...rows] = fs.readFileSync('/proc/net/stat/arp_cache', 'utf8').trim().split('\n');
  const col = head.trim().split(/\s+/).indexOf('table_fulls');
  if (col < 0) return 0;
  return rows.reduce((sum, r) => sum + parseInt(r.trim().split(/\s+/)[col] ?? '0', 16), 0);
}

const NEIGH = '/proc/sys/net/ipv4/neigh/default';

/**
 * Raise the host-wide neighbour table limits by `entries` (what the mesh needs); returns the
 * restore, which puts back each value that is still the one set here.
 */
function raiseNeighbourLimits(entries: number): () => void {
  const set: [string, string, string][] = [];
  for (const [name, add] of [['gc_thresh2', entries], ['gc_thresh3', 2 * entries]] as const) {
    const file = path.join(NEIGH, name);
    const old = fs.readFileSync(file, 'utf8').trim();
    const next = String(Number(old) + add);
    fs.writeFileSync(file, next);
    set.push([file, old, next]);
  }
  return () => {
    for (const [file, old, next] of set.reverse()) if (fs.readFileSync(file, 'utf8').trim() === next) fs.writeFileSync(file, old);
  };
}

/** Tries per pair of the reachability check, each waiting this many seconds for its echo. */
const PING_TRIES = 4;
const PING_WAIT_S = 2;

/** Start 50 containers on `net` at once, then check that each pings every other; both wall times. */
async function parallelRound(cli: Cli, net: string, tag: string): Promise<{ startMs: number; reachMs: number; unreachable: string[]; tableFulls: number }> {
  const names = Array.from({ length: PARALLEL }, (_, i) => `${tag}-${i}`);
  const t0 = process.hrtime.bigint();
  await Promise.all(names.map((n) => timed(cli.argv(['run', '-d', '--name', n, '--network', net, cli.image, 'sleep', '100000']))));
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const t1 = process.hrtime.bigint();
  // every address from one inspect call on both sides: fifty more CLI starts, one after the other,
  // would time the CLIs' start-up rather than the network
  const lines = runSync(cli.argv(['inspect', '-f', '{{json .NetworkSettings.Networks}}', ...names])).split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== names.length) throw new Error(`${cli.name}: inspect printed ${lines.length} lines for ${names.length} containers`);
  const ips = names.map((n, i) => {
    const nets = JSON.parse(lines[i]!) as Record<string, { IPAddress?: string }>;
    const ip = nets[net]?.IPAddress ?? '';
    if (ip === '') throw new Error(`${cli.name}: ${n} has no address on ${net}`);
    return ip;
  });
  // every container pings all the others (49 × 50 pings, one exec per container, 10 execs at a time);
  // a container that cannot reach one is counted and named in the report, not fatal
  const unreachable: string[] = [];
  const fulls = arpTableFulls();
  await bounded(
    10,
    names.map((n, i) => async () => {
      const others = ips.filter((_, k) => k !== i);
      // A few tries, each its own ping: busybox's `-c 1 -w N` sends one echo only, and an echo
      // queued behind an ARP resolution that the loaded machine answered late is lost; a new try
      // finds the neighbour resolved. Bounded: PING_TRIES × PING_WAIT_S per pair at most.
      const script = `for ip in ${others.join(' ')}; do i=0; until ping -c 1 -W ${PING_WAIT_S} $ip >/dev/null; do i=$((i+1)); if [ $i -ge ${PING_TRIES} ]; then echo unreachable $ip; break; fi; done; done`;
      const out = await output(cli.argv(['exec', n, 'sh', '-c', script]));
      for (const l of out.split('\n').filter((x) => x.startsWith('unreachable '))) unreachable.push(`${n} → ${l.slice('unreachable '.length)}`);
    }),
  );
  const reachMs = Number(process.hrtime.bigint() - t1) / 1e6;
  const tableFulls = arpTableFulls() - fulls;
  runSync(cli.argv(['rm', '-f', ...names]), 300_000);
  return { startMs, reachMs, unreachable, tableFulls };
}

/** The pids in the cgroup `dir` and below. */
function pidsIn(dir: string): number[] {
  let entries: fs.Dirent[] = [];
  let own: number[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
    own = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
  } catch {
    return [];
  }
  return [...own, ...entries.filter((e) => e.isDirectory()).flatMap((e) => pidsIn(path.join(dir, e.name)))];
}

/** The chains dockerd makes for its bridge driver, per table (before any network they hold only RETURNs). */
const DOCKER_CHAINS: Readonly<Record<Table, readonly string[]>> = { filter: ['DOCKER', 'DOCKER-USER', 'DOCKER-ISOLATION-STAGE-1', 'DOCKER-ISOLATION-STAGE-2'], nat: ['DOCKER'] };

/** True when another dockerd that may use docker's chains runs (the tests' and the images section's run with --iptables=false). */
function otherDockerd(): boolean {
  return allPids().some((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'dockerd' && !cmdline(p).split(' ').includes('--iptables=false');
    } catch {
      return false;
    }
  });
}

/**
 * Remove the section's own iptables rules and chains, after its daemons have stopped: every rule
 * that names one of `devices` (docker's rules for its default bridge, which it leaves behind at
 * shutdown, and anything else left on the section's bridges), tsrund's chains (`prefix-`), and
 * docker's chains when they were not there before (`before`), hold nothing but docker's own
 * RETURNs and no other dockerd runs. Returns what could not be removed, or was kept and why.
 */
function removeOwnRules(devices: ReadonlySet<string>, prefix: string, before: Readonly<Record<Table, ReadonlySet<string>>>): string[] {
  const problems: string[] = [];
  const dockerShared = otherDockerd();
  for (const table of ['filter', 'nat'] as const) {
    const now = listTable(table);
    problems.push(...deleteRules(now.rules.filter((r) => devicesOf(r).some((d) => devices.has(d)))));
    problems.push(...removeChains(table, now.chains.filter((c) => c.startsWith(`${prefix}-`))));
    const mine = DOCKER_CHAINS[table].filter((c) => now.chains.includes(c) && !before[table].has(c));
    if (mine.length === 0) continue;
    const left = listTable(table).rules.filter((r) => mine.includes(r.chain) && !(r.args.length === 2 && targetOf(r) === 'RETURN'));
    if (dockerShared || left.length > 0) problems.push(`kept docker's ${table} chains ${mine.join(', ')}: ${dockerShared ? 'another dockerd runs' : `they hold rules of others: ${left.map((r) => r.text).join(' | ')}`}`);
    else problems.push(...removeChains(table, mine));
  }
  return problems;
}

export const networkSection: Section = {
  name: 'network',
  unavailable() {
    if (process.getuid?.() !== 0) return 'needs root';
    for (const p of ['dockerd', 'iptables-save', 'iptables-restore']) if (which(p) === undefined) return `${p} is not installed`;
    if (!['/usr/lib/cni/bridge', '/opt/cni/bin/bridge'].some((f) => fs.existsSync(f))) return 'CNI plugins are not installed (containernetworking-plugins)';
    return undefined;
  },
  async run(ctx: BenchContext): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'network');
    fs.mkdirSync(dir, { recursive: true });
    const chainsBefore = { filter: new Set(listTable('filter').chains), nat: new Set(listTable('nat').chains) };
    const forward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    // not <dir>/rootfs: tsrund (--shim-root <dir>/s) keeps image containers' rootfs mounts in
    // <dir>/rootfs/<namespace>/<id> and sweeps leftover mounts there at start
    const rootfs = makeRootfs(ctx.repo, path.join(dir, 'image'));
    const tag = String(process.pid % 100000);
    // host-wide names: docker's bridge, tsrund's default bridge and chain prefix, tsctl's namespace (its cgroups)
    const bridge = `tsbd${tag}`;
    const tsrundBridge = `tsrb${tag}`;
    const prefix = `TSRB${tag}`;
    const namespace = `tsrun-bench-net${tag}`;
    /** the bridge of docker's user network, once made (`br-` and the start of its id) */
    let dockerNetBridge: string | undefined;
    let tsrund: ChildProcess | undefined;
    let dockerd: ChildProcess | undefined;
    const tsctlEnv = { ...process.env, TSCTL_HOST: `unix://${dir}/tsrund.sock`, TSCTL_NAMESPACE: namespace, TMPDIR: path.join(dir, 'tmp') };
    fs.mkdirSync(tsctlEnv.TMPDIR, { recursive: true });
    const tsctl: Cli = { name: 'tsctl', argv: (a) => ['env', `TSCTL_HOST=${tsctlEnv.TSCTL_HOST}`, `TSCTL_NAMESPACE=${namespace}`, `TMPDIR=${tsctlEnv.TMPDIR}`, path.join(ctx.repo, 'bin', 'tsctl'), ...a], image: rootfs };
    const docker: Cli = { name: 'docker', argv: (a) => ['docker', '-H', `unix://${dir}/docker.sock`, ...a], image: 'tsrun-bench/busybox' };
    const s = samples();
    const par: Record<string, { startMs: number; reachMs: number; unreachable: string[]; tableFulls: number }[]> = { tsctl: [], docker: [] };
    let restoreNeighbourLimits: (() => void) | undefined;
    try {
      // tsrund with its own bridge name and chain prefix
      fs.writeFileSync(path.join(dir, 'tsrund.json'), JSON.stringify({ networkBridge: tsrundBridge, iptablesChainPrefix: prefix }));
      tsrund = spawn(path.join(ctx.repo, 'bin', 'tsrund'), ['--address', `${dir}/tsrund.sock`, '--root', `${dir}/tsrund-root`, '--state', `${dir}/tsrund-state`, '--shim-root', `${dir}/s`, '--config', `${dir}/tsrund.json`, '--no-restart-policies'], { stdio: 'ignore' });
      await waitUntil('tsrund', () => spawnSync(tsctl.argv(['ps'])[0]!, tsctl.argv(['ps']).slice(1)).status === 0, 30_000);
      // dockerd on a bridge and subnet of its own
      const subnet = chooseSubnet(hostRoutes(fs.readFileSync('/proc/net/route', 'utf8')));
      runSync(['ip', 'link', 'add', bridge, 'type', 'bridge']);
      runSync(['ip', 'addr', 'add', `${formatIp(subnet.base + 1)}/${subnet.bits}`, 'dev', bridge]);
      runSync(['ip', 'link', 'set', bridge, 'up']);
      fs.writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
      dockerd = spawn('dockerd', ['--config-file', `${dir}/daemon.json`, '--data-root', `${dir}/docker`, '--exec-root', `${dir}/docker-exec`, '--pidfile', `${dir}/docker.pid`, '-H', `unix://${dir}/docker.sock`, '--bridge', bridge, '--iptables=true', '--ip-forward=false', '--ip6tables=false', '--storage-driver', 'vfs', '--cgroup-parent', `/tsrun-bench-docker${tag}`], { stdio: ['ignore', fs.openSync(path.join(dir, 'dockerd.log'), 'a'), fs.openSync(path.join(dir, 'dockerd.log'), 'a')] });
      await waitUntil('dockerd', () => spawnSync('docker', ['-H', `unix://${dir}/docker.sock`, 'version']).status === 0, 60_000);
      runSync(['tar', '-C', rootfs, '-cf', `${dir}/rootfs.tar`, '.']);
      runSync(docker.argv(['import', `${dir}/rootfs.tar`, docker.image]));
      const subjects = [
        { cli: tsctl, net: 'bridge', key: 'tsctl bridge' },
        { cli: tsctl, net: 'none', key: 'tsctl none' },
        { cli: docker, net: 'bridge', key: 'docker bridge' },
        { cli: docker, net: 'none', key: 'docker none' },
      ];
      for (const sub of subjects) await timed(sub.cli.argv(['run', '--rm', '--network', sub.net, sub.cli.image, 'true'])); // warm-up
      const rounds = Math.max(ctx.runs, MIN_ROUNDS);
      for (let r = 0; r < rounds && !ctx.stopping(); r++) {
        for (const sub of rotation(subjects, r)) s.add('run --rm … true', sub.key, await timed(sub.cli.argv(['run', '--rm', '--network', sub.net, sub.cli.image, 'true'])));
        ctx.progress(`network: round ${r + 1}/${rounds}`);
      }
      runSync(tsctl.argv(['network', 'create', 'benchnet']));
      const other = chooseSubnet([...hostRoutes(fs.readFileSync('/proc/net/route', 'utf8')), subnet]);
      dockerNetBridge = `br-${runSync(docker.argv(['network', 'create', '--subnet', formatCidr(other), 'benchnet'])).trim().slice(0, 12)}`;
      const parRounds = Math.max(1, Math.min(3, Math.floor(ctx.runs / 10)));
      // every container's entry for every peer, and as many again for what the host has meanwhile
      restoreNeighbourLimits = raiseNeighbourLimits(PARALLEL * PARALLEL);
      for (let r = 0; r < parRounds && !ctx.stopping(); r++) {
        for (const cli of rotation([tsctl, docker], r)) par[cli.name]!.push(await parallelRound(cli, 'benchnet', `p${r}`));
        ctx.progress(`network: parallel round ${r + 1}/${parRounds}`);
      }
      runSync(tsctl.argv(['network', 'rm', 'benchnet']));
      // dockerd may still be releasing the endpoints of the containers `rm -f` just removed; one
      // it keeps for a removed container (seen under load) is let go with `network disconnect -f`
      for (let i = 0; ; i++) {
        try {
          runSync(docker.argv(['network', 'rm', 'benchnet']));
          break;
        } catch (e) {
          if (i >= 60 || !/has active endpoints/.test((e as Error).message)) throw e;
          if (i >= 10) {
            const eps = spawnSync('docker', docker.argv(['network', 'inspect', '-f', '{{range $k, $v := .Containers}}{{$k}} {{end}}', 'benchnet']).slice(1), { encoding: 'utf8', timeout: 60_000 });
            for (const ep of (eps.stdout ?? '').split(/\s+/).filter((x) => x !== '')) {
              spawnSync('docker', docker.argv(['network', 'disconnect', '-f', 'benchnet', ep]).slice(1), { stdio: 'ignore', timeout: 60_000 });
            }
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      try {
        restoreNeighbourLimits?.();
      } catch (e) {
        ctx.progress(`network: restore the neighbour table limits: ${(e as Error).message}`);
      }
      // tsrund's bridges (its default one and its networks'), before prune forgets them
      const tsrundNets = (() => {
        try {
          return JSON.parse(fs.readFileSync(path.join(dir, 'tsrund-root', 'networks', 'networks.json'), 'utf8')) as { bridge: string }[];
        } catch {
          return [];
        }
      })();
      if (running(tsrund)) {
        const call = (a: readonly string[]) => spawnSync(tsctl.argv(a)[0]!, tsctl.argv(a).slice(1), { encoding: 'utf8', timeout: 300_000 });
        const left = (call(['ps', '-aq']).stdout ?? '').split('\n').filter((x) => x !== '');
        if (left.length > 0) call(['rm', '-f', ...left]);
        call(['network', 'prune', '-f']);
      }
      if (running(dockerd)) {
        const ids = spawnSync('docker', docker.argv(['ps', '-aq']).slice(1), { encoding: 'utf8' }).stdout?.split('\n').filter((x) => x !== '') ?? [];
        if (ids.length > 0) spawnSync('docker', docker.argv(['rm', '-f', ...ids]).slice(1), { stdio: 'ignore', timeout: 300_000 });
        // docker removes its user network's bridge and rules itself
        if (dockerNetBridge !== undefined) spawnSync('docker', docker.argv(['network', 'rm', 'benchnet']).slice(1), { stdio: 'ignore', timeout: 60_000 });
      }
      await stopDaemon(dockerd);
      await stopDaemon(tsrund);
      // What still runs from the section's dir (docker's containerd and shims, tsrun-shims) or in its
      // cgroups (a container a killed shim left behind) was started here.
      const cgroups = () => [...cgroupDirsFor(`tsrun-bench-docker${tag}`), ...cgroupDirsFor(namespace)];
      for (let i = 0; i < 50; i++) {
        const stray = [...allPids().filter((p) => p !== process.pid && cmdline(p).includes(dir)), ...cgroups().flatMap(pidsIn)];
        if (stray.length === 0) break;
        killPids(stray);
        await new Promise((r) => setTimeout(r, 100));
      }
      const devices = new Set([bridge, tsrundBridge, ...tsrundNets.map((n) => n.bridge), ...(dockerNetBridge !== undefined ? [dockerNetBridge] : [])]);
      for (const b of devices) if (fs.existsSync(`/sys/class/net/${b}`)) spawnSync('ip', ['link', 'delete', b], { stdio: 'ignore' });
      try {
        for (const p of removeOwnRules(devices, prefix, chainsBefore)) ctx.progress(`network: iptables cleanup: ${p}`);
      } catch (e) {
        ctx.progress(`network: iptables cleanup: ${(e as Error).message}`);
      }
      for (const d of cgroups()) removeCgroupTree(d);
      // the bridge plugin sets ip_forward; other users' containers may route through it by now, so it stays
      if (forward !== fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()) ctx.progress(`network: net.ipv4.ip_forward was ${forward}, left as the bridge plugin set it`);
      if (mountsUnder(dir).length > 0) unmountAll(dir);
    }
    const cost = (engine: string): number => median([...s.get('run --rm … true', `${engine} bridge`)].sort((a, b) => a - b)) - median([...s.get('run --rm … true', `${engine} none`)].sort((a, b) => a - b));
    const tsCost = cost('tsctl');
    const dkCost = cost('docker');
    const parMed = (k: string, f: 'startMs' | 'reachMs') => median(par[k]!.map((x) => x[f]).sort((a, b) => a - b));
    const md = [
      '## Networking (tsctl + tsrund with CNI vs docker 20.10)',
      '',
      `Median / p95 ms of \`run --rm --network X IMAGE true\`, ${Math.max(ctx.runs, MIN_ROUNDS)} interleaved rounds; the networking cost is the bridge median minus the none median.`,
      '',
      table([
        ['subject', 'bridge', 'none', 'networking cost'],
        ['tsctl', medianP95(s.get('run --rm … true', 'tsctl bridge')), medianP95(s.get('run --rm … true', 'tsctl none')), `${tsCost.toFixed(1)} ms`],
        ['docker', medianP95(s.get('run --rm … true', 'docker bridge')), medianP95(s.get('run --rm … true', 'docker none')), `${dkCost.toFixed(1)} ms`],
      ]),
      '',
      // A ratio over a difference that the noise swallowed would read as a result: say so instead.
      dkCost > 0
        ? `tsctl's networking cost: **${ratio(tsCost / dkCost)}** docker's (target ≤ 1×).`
        : `tsctl's networking cost: **not comparable** in this run: docker's bridge median was not above its none median (its run-to-run noise is larger than its networking cost; more rounds needed).`,
      '',
      `${PARALLEL} containers started at once on one user-defined network, then each pings every other (median of ${par['tsctl']!.length} rounds, ms):`,
      '',
      table([
        ['subject', 'start all', 'all reachable', 'total'],
        ['tsctl', parMed('tsctl', 'startMs').toFixed(0), parMed('tsctl', 'reachMs').toFixed(0), (parMed('tsctl', 'startMs') + parMed('tsctl', 'reachMs')).toFixed(0)],
        ['docker', parMed('docker', 'startMs').toFixed(0), parMed('docker', 'reachMs').toFixed(0), (parMed('docker', 'startMs') + parMed('docker', 'reachMs')).toFixed(0)],
      ]),
      '',
      `Neighbour (ARP) table overflows during the checks (must be 0; the section raises gc_thresh2/3 by ${PARALLEL * PARALLEL}/${2 * PARALLEL * PARALLEL} while it runs): tsctl ${par['tsctl']!.map((x) => x.tableFulls).join(', ')}; docker ${par['docker']!.map((x) => x.tableFulls).join(', ')}. A pair counts as unreachable after ${PING_TRIES} pings of ${PING_WAIT_S} s.`,
      '',
      `Pairs that did not answer (should be none): tsctl ${par['tsctl']!.flatMap((x) => x.unreachable).join(', ') || 'none'}; docker ${par['docker']!.flatMap((x) => x.unreachable).join(', ') || 'none'}.`,
      '',
      `tsctl's total: **${ratio((parMed('tsctl', 'startMs') + parMed('tsctl', 'reachMs')) / (parMed('docker', 'startMs') + parMed('docker', 'reachMs')))}** docker's (target ≤ 1×).`,
      '',
    ].join('\n');
    const dv = spawnSync('dockerd', ['--version'], { encoding: 'utf8' }).stdout.trim();
    return { markdown: md, versions: { dockerd: dv } };
  },
};
