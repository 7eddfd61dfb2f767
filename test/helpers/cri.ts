/**
 * containerd 1.6 with its CRI plugin on, started in isolation for one test file or bench run, the
 * way a kubelet node runs it, with one runtime handler per OCI runtime compared:
 *
 *   <dir>/ config.toml containerd.sock root/ state/ (netns mounts under it) containerd.log
 *          cni/conf/ (one conflist)  cni/ipam/ (host-local's leases)  logs/ (CRI container logs)
 *          runtime-<handler>/ (the runtime's --root)
 *
 * Network: Debian's CNI plugins (/usr/lib/cni), a bridge named after this process and a /24 in
 * 10.213.0.0/16 that overlaps no route or address of the host (checked when picked). Pods'
 * cgroups go under /tsrun-cri-<pid>/ (cgroupfs driver). `restrict_oom_score_adj` because these
 * hosts lack CAP_SYS_RESOURCE (the sandbox's -998 could not be set by any runtime).
 *
 * `leftovers()` lists what pods left on the host (for "nothing left" assertions after the pods
 * were removed); `stop()` removes everything, also after a failure: pods, daemon, shims, mounts,
 * the bridge, cgroups, CNI cache files, the dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectCri, type CriClient } from './cri-api';
import { cgroupDirs, fixedDirsCleanup, missingTools, runCli, type CliResult } from './engines';
import { allPids, cmdline, killPids, mountsUnder, removeCgroupTree, unmountAll } from './host';

/** Debian's CNI plugin directory. */
export const CNI_BIN_DIR = '/usr/lib/cni';
/** The CNI cache libcni keeps whatever containerd's config says. */
const CNI_CACHE = '/var/lib/cni';

/** A runtime handler: its name in RunPodSandbox and the OCI runtime binary the runc shim runs. */
export interface CriHandler {
  readonly name: string;
  readonly binary: string;
}

/** A running containerd with CRI. */
export interface CriEngine {
  readonly dir: string;
  readonly socket: string;
  readonly log: string;
  /** containerd's pid */
  readonly pid: number;
  readonly client: CriClient;
  readonly netName: string;
  readonly bridge: string;
  /** the pods' subnet, e.g. 10.213.7.0/24 */
  readonly subnet: string;
  /** cgroup parent above every pod's, e.g. /tsrun-cri-1234 */
  readonly cgroupRoot: string;
  /** a directory for pods' log_directory */
  readonly logDir: string;
  /** the runtime --root the handler's shim passes */
  runtimeRoot(handler: string): string;
  /** `ctr --address <socket> -n k8s.io …` */
  ctr(args: readonly string[]): CliResult;
  /** `ctr images import` of an image tar into the k8s.io namespace */
  importImage(tar: string): void;
  /** what removed pods left behind (empty when nothing) */
  leftovers(): string[];
  /** remove everything; returns what had to be forced or could not be removed */
  stop(): Promise<string[]>;
}

/** Why this host cannot run containerd's CRI with CNI, or undefined. */
export function criUnavailable(): string | undefined {
  const tools = missingTools('containerd', 'ctr', 'containerd-shim-runc-v2', 'ip', 'iptables', 'iptables-save', 'tar', 'ldd');
  if (tools !== undefined) return tools;
  const plugins = ['bridge', 'host-local', 'loopback'].filter((p) => !fs.existsSync(path.join(CNI_BIN_DIR, p)));
  if (plugins.length > 0) return `CNI plugins missing in ${CNI_BIN_DIR}: ${plugins.join(', ')} (apt install containernetworking-plugins)`;
  // The default config lists the CRI plugin's section only when the binary has the plugin.
  const r = runCli('containerd', ['config', 'default'], { timeoutMs: 10_000 });
  if (r.code !== 0) return `containerd config default failed: ${r.stderr.trim()}`;
  if (!r.stdout.includes('io.containerd.grpc.v1.cri')) return 'this containerd is built without its CRI plugin';
  return undefined;
}

/**
 * The nat chain the bridge plugin's ipMasq makes for one sandbox: "CNI-" and the start of
 * sha512(network name + container id) in hex, 28 characters in all (the plugins' FormatChainName).
 */
export function masqChain(netName: string, sandboxId: string): string {
  return `CNI-${crypto.createHash('sha512').update(netName + sandboxId).digest('hex').slice(0, 24)}`;
}

/** True when the nat table has `chain`. */
export function natChainExists(chain: string): boolean {
  return runCli('iptables', ['-w', '-t', 'nat', '-S', chain]).code === 0;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

/** True when the CIDRs a/alen and b/blen share any address. */
function overlaps(a: string, alen: number, b: string, blen: number): boolean {
  const len = Math.min(alen, blen);
  const mask = len === 0 ? 0 : 2 ** 32 - 2 ** (32 - len);
  const and = (x: number) => Number((BigInt(x) & BigInt(mask)).toString());
  return and(ipv4ToInt(a)) === and(ipv4ToInt(b));
}

/** Every IPv4 prefix the host routes or has an address in, as [address, length]. */
function hostPrefixes(): [string, number][] {
  const out: [string, number][] = [];
  const routes = JSON.parse(runCli('ip', ['-4', '-j', 'route', 'show', 'table', 'all']).stdout || '[]') as { dst?: string }[];
  for (const r of routes) {
    if (r.dst === undefined || r.dst === 'default') continue;
    const [a, l] = r.dst.split('/');
    out.push([a!, l === undefined ? 32 : Number(l)]);
  }
  const addrs = JSON.parse(runCli('ip', ['-4', '-j', 'addr']).stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[];
  for (const i of addrs) for (const a of i.addr_info ?? []) if (a.local !== undefined) out.push([a.local, a.prefixlen ?? 32]);
  return out;
}

/** A 10.213.X.0/24 that collides with nothing on the host, starting from one derived from our pid. */
export function pickSubnet(): string {
  const taken = hostPrefixes();
  for (let i = 0; i < 256; i++) {
    const net = `10.213.${(process.pid + i) % 256}.0`;
    if (!taken.some(([a, l]) => overlaps(net, 24, a, l))) return `${net}/24`;
  }
  throw new Error('CNI subnet: every 10.213.X.0/24 overlaps a route or address of this host');
}

function writeConfig(dir: string, socket: string, handlers: readonly CriHandler[], pauseImage: string, cniConf: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const lines = [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    `[${cri}]`,
    `  sandbox_image = "${pauseImage}"`,
    '  restrict_oom_score_adj = true',
    '  disable_apparmor = true',
    '  enable_selinux = false',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  netns_mounts_under_state_dir = true',
    `[${cri}.containerd]`,
    `  default_runtime_name = "${handlers[0]!.name}"`,
    '  snapshotter = "overlayfs"',
  ];
  for (const h of handlers) {
    lines.push(`[${cri}.containerd.runtimes.${h.name}]`, '  runtime_type = "io.containerd.runc.v2"');
    lines.push(`[${cri}.containerd.runtimes.${h.name}.options]`, `  BinaryName = "${h.binary}"`, `  Root = "${dir}/runtime-${h.name}"`, '  SystemdCgroup = false');
  }
  lines.push(`[${cri}.cni]`, `  bin_dir = "${CNI_BIN_DIR}"`, `  conf_dir = "${cniConf}"`, '  max_conf_num = 1', '');
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(config, lines.join('\n'));
  return config;
}

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, daemon: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && daemon.exitCode === null) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`${what} did not come up within ${timeoutMs} ms${daemon.exitCode !== null ? ` (exited ${daemon.exitCode})` : ''}\n${tail}`);
}

async function stopDaemon(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref());
  if ((await Promise.race([exited, timer])) === 'timeout') {
    p.kill('SIGKILL');
    await exited;
  }
}

/** Pids whose cgroup path (any hierarchy) lies under `rel`. */
function pidsInCgroup(rel: string): number[] {
  return allPids().filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n').some((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1).startsWith(`${rel}/`));
    } catch {
      return false;
    }
  });
}

/** Start containerd with CRI in `dir` (made here, removed by stop()). */
export async function startCriContainerd(dir: string, handlers: readonly CriHandler[], pauseImage: string): Promise<CriEngine> {
  if (handlers.length === 0) throw new Error('CRI containerd: at least one runtime handler is needed');
  fs.mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, 'containerd.sock');
  const log = path.join(dir, 'containerd.log');
  const netName = `tsrun-cri-${process.pid}`;
  const bridge = `tcri${process.pid}`.slice(0, 15);
  const subnet = pickSubnet();
  const cgroupRoot = `/tsrun-cri-${process.pid}`;
  const logDir = path.join(dir, 'logs');
  const cniConf = path.join(dir, 'cni', 'conf');
  const ipamDir = path.join(dir, 'cni', 'ipam');
  for (const d of [cniConf, ipamDir, logDir]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(
    path.join(cniConf, '10-tsrun-cri.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: netName,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir },
        },
      ],
    }),
  );
  const config = writeConfig(dir, socket, handlers, pauseImage, cniConf);
  const fd = fs.openSync(log, 'a');
  let daemon: ChildProcess;
  try {
    daemon = spawn('containerd', ['--config', config], { stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  const cleanFixed = fixedDirsCleanup(['/run/containerd/s', '/run/containerd', path.join(CNI_CACHE, 'results'), CNI_CACHE]);
  const client = connectCri(socket);
  const ctr = (args: readonly string[]) => runCli('ctr', ['--address', socket, '-n', 'k8s.io', ...args], { timeoutMs: 120_000 });
  const cacheFiles = (): string[] => {
    try {
      return fs.readdirSync(path.join(CNI_CACHE, 'results')).filter((f) => f.startsWith(`${netName}-`));
    } catch {
      return [];
    }
  };
  const leftovers = (): string[] => {
    const out: string[] = [];
    const mounts = mountsUnder(path.join(dir, 'state')).filter((m) => !m.endsWith('/state'));
    if (mounts.length > 0) out.push(`mounts (netns, rootfs): ${mounts.join(' ')}`);
    const veths = JSON.parse(runCli('ip', ['-j', 'link', 'show', 'master', bridge]).stdout || '[]') as { ifname: string }[];
    if (veths.length > 0) out.push(`veths on ${bridge}: ${veths.map((v) => v.ifname).join(' ')}`);
    const rules = runCli('iptables-save', []).stdout.split('\n').filter((l) => l.includes(`"${netName}"`));
    if (rules.length > 0) out.push(`iptables rules of ${netName}: ${rules.join(' | ')}`);
    if (cacheFiles().length > 0) out.push(`CNI cache files: ${cacheFiles().join(' ')}`);
    const leases = fs.existsSync(path.join(ipamDir, netName)) ? fs.readdirSync(path.join(ipamDir, netName)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
    if (leases.length > 0) out.push(`IP leases: ${leases.join(' ')}`);
    const pids = pidsInCgroup(cgroupRoot);
    if (pids.length > 0) out.push(`processes in ${cgroupRoot}: ${pids.map((p) => `${p} ${cmdline(p)}`).join('; ')}`);
    for (const base of cgroupDirs(cgroupRoot)) {
      for (const pod of fs.readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory())) {
        const kids = fs.readdirSync(path.join(base, pod.name), { withFileTypes: true }).filter((e) => e.isDirectory());
        if (kids.length > 0) out.push(`container cgroups in ${path.join(base, pod.name)}: ${kids.map((k) => k.name).join(' ')}`);
      }
    }
    for (const h of handlers) {
      // <Root>/<containerd namespace>/<container id>/
      const root = path.join(dir, `runtime-${h.name}`);
      const left = (fs.existsSync(root) ? fs.readdirSync(root) : []).flatMap((ns) => fs.readdirSync(path.join(root, ns)).map((id) => `${ns}/${id}`));
      if (left.length > 0) out.push(`${h.name} runtime state: ${left.join(' ')}`);
    }
    return out;
  };
  let stopped = false;
  const stop = async (): Promise<string[]> => {
    if (stopped) return [];
    stopped = true;
    const forced: string[] = [];
    try {
      if (daemon.exitCode === null) {
        const pods = await client.call<{ items: { id: string }[] }>('ListPodSandbox', {}, 10_000).catch(() => ({ items: [] }));
        for (const p of pods.items) {
          forced.push(`pod ${p.id} was still there`);
          await client.call('StopPodSandbox', { podSandboxId: p.id }, 60_000).catch(() => undefined);
          await client.call('RemovePodSandbox', { podSandboxId: p.id }, 60_000).catch(() => undefined);
        }
      }
    } finally {
      client.close();
      await stopDaemon(daemon);
      // Shims outlive their daemon by design; any process naming the dir, or in our cgroups, is ours.
      for (let i = 0; i < 50; i++) {
        const left = [...new Set([...allPids().filter((p) => p !== process.pid && cmdline(p).includes(dir)), ...pidsInCgroup(cgroupRoot)])];
        if (left.length === 0) break;
        if (i === 0) forced.push(`killed processes: ${left.join(' ')}`);
        killPids(left);
        await new Promise((r) => setTimeout(r, 100));
      }
      const stuck = unmountAll(dir);
      if (stuck.length > 0) forced.push(`could not unmount: ${stuck.join(' ')}`);
      if (runCli('ip', ['link', 'show', bridge]).code === 0) {
        const del = runCli('ip', ['link', 'del', bridge]);
        if (del.code !== 0) forced.push(`ip link del ${bridge}: ${del.stderr.trim()}`);
      }
      for (const f of cacheFiles()) {
        forced.push(`CNI cache file ${f}`);
        fs.rmSync(path.join(CNI_CACHE, 'results', f), { force: true });
      }
      for (const d of cgroupDirs(cgroupRoot)) removeCgroupTree(d);
      const cgLeft = cgroupDirs(cgroupRoot);
      if (cgLeft.length > 0) forced.push(`cgroups not removed: ${cgLeft.join(' ')}`);
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      cleanFixed();
    }
    return forced;
  };
  try {
    await waitFor(
      'containerd with CRI',
      async () => fs.existsSync(socket) && (await client.call('Version', {}, 5000).then(() => true, () => false)),
      60_000,
      daemon,
      log,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    dir,
    socket,
    log,
    pid: daemon.pid ?? 0,
    client,
    netName,
    bridge,
    subnet,
    cgroupRoot,
    logDir,
    runtimeRoot: (h) => path.join(dir, `runtime-${h}`),
    ctr,
    importImage(tar) {
      const r = ctr(['images', 'import', tar]);
      if (r.code !== 0) throw new Error(`ctr images import ${tar}: exit ${r.code}: ${r.stderr.trim()}`);
    },
    leftovers,
    stop,
  };
}
