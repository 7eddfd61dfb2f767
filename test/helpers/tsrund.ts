/**
 * A private tsrund per test: its own socket, metadata root, shim root, ctr fifo dir and busybox
 * rootfs in one sandbox, a unique containerd namespace (cgroups are /<ns>/<id>), the real `ctr`
 * pointed at it, and a teardown that leaves nothing behind even when the test failed:
 *
 *   /tmp/tsrund-it-XXXXXX/
 *     tsrund.sock  root/ (meta.db)  state/shims/<ns>/<id>/  fifo/  rootfs/  tsrund.log
 *
 * Teardown: SIGKILL tsrund, every shim under the shim root and every process of the sandbox
 * (root or cwd in it); remove the namespace's cgroups in every hierarchy; unmount anything under
 * the sandbox; remove it. Anything found alive or mounted is a leak and fails the test.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { populateRootfs, type TeardownHost } from './bundle';
import { allPids, cgroupDirsFor, cmdline, isAlive, killPids, mountsUnder, pidsOfBundle, removeCgroupTree, unmountAll } from './host';
import { waitFor } from './wait';
import { fixedDirsCleanup } from './engines';

const repoRoot = path.resolve(__dirname, '..', '..');

/** The tsrund binary under test ($TSRUND, default bin/tsrund). */
export const tsrundPath: string = path.resolve(process.env['TSRUND'] ?? path.join(repoRoot, 'bin', 'tsrund'));

/** The ctr binary ($CTR, default /usr/bin/ctr). */
export const ctrPath: string = process.env['CTR'] ?? '/usr/bin/ctr';

/** Why tsrund tests cannot run here, or undefined. */
export function tsrundMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!fs.existsSync(tsrundPath)) return `tsrund not built at ${tsrundPath}: run "make bin/tsrund"`;
  if (!fs.existsSync(path.join(repoRoot, 'bin', 'tsrun-shim')) && process.env['TSRUN_SHIM'] === undefined) {
    return 'tsrun-shim not built: run "make bin/tsrun-shim"';
  }
  if (!fs.existsSync(ctrPath)) return `ctr not found at ${ctrPath} (apt-get install containerd; do not start it)`;
  return undefined;
}

/** Result of one ctr call. */
export interface CtrResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of one ctr call. */
export interface CtrOptions {
  input?: string;
  /** a file as stdin (seekable, as a resumed `content ingest` needs), instead of `input` */
  stdinFile?: string;
  timeoutMs?: number;
  /** namespace; default the sandbox's */
  ns?: string;
  env?: Record<string, string>;
}

/** A running private tsrund. */
export interface Tsrund {
  readonly sandbox: string;
  readonly socket: string;
  readonly root: string;
  readonly state: string;
  readonly shimRoot: string;
  readonly fifoDir: string;
  readonly rootfs: string;
  /** the namespace every ctr call uses unless told otherwise */
  readonly ns: string;
  readonly pid: number;
  /** a fresh container id */
  newId(prefix?: string): string;
  /** `ctr --address SOCK -n NS ARGS…`, synchronously */
  ctr(args: readonly string[], opts?: CtrOptions): CtrResult;
  /** ctr in the background (for events, attach, long runs) */
  ctrSpawn(args: readonly string[], opts?: CtrOptions): ChildProcess;
  /** ctr asynchronously, resolving on exit */
  ctrAsync(args: readonly string[], opts?: CtrOptions): Promise<CtrResult>;
  /** `run` flags for --rootfs runs: --fifo-dir and --rootfs */
  runArgs(): string[];
  /** kill -9 tsrund (shims and containers keep running) */
  kill9(): Promise<void>;
  /** start tsrund again on the same dirs (after kill9) */
  start(): Promise<void>;
  /** what tsrund logged so far */
  log(): string;
  /** pids of the live tsrun-shim processes of this sandbox */
  shimPids(): number[];
}

let seq = 0;

function ctrArgv(d: { socket: string; ns: string }, args: readonly string[], ns?: string): string[] {
  return ['--address', d.socket, '--namespace', ns ?? d.ns, ...args];
}

/**
 * The shim kind every test's tsrund gets unless the test names one ($TSRUND_SHIM: node or native;
 * default tsrund's own), so a suite can be run against the Node shim too.
 */
const shimOverride = process.env['TSRUND_SHIM'];

/** Start a private tsrund and register its teardown on `t`. */
export async function startTsrund(t: TeardownHost, givenArgs: readonly string[] = []): Promise<Tsrund> {
  const extraArgs = shimOverride !== undefined && shimOverride !== '' && !givenArgs.includes('--shim') ? [...givenArgs, '--shim', shimOverride] : givenArgs;
  const sandbox = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-it-'));
  const socket = path.join(sandbox, 'tsrund.sock');
  const root = path.join(sandbox, 'root');
  const state = path.join(sandbox, 'state');
  const shimRoot = path.join(state, 'shims');
  const fifoDir = path.join(sandbox, 'fifo');
  const rootfs = path.join(sandbox, 'rootfs');
  const logFile = path.join(sandbox, 'tsrund.log');
  const ns = `tsrund-it-${process.pid}`;
  // Bridge devices and iptables chains are host-wide: each sandbox's tsrund gets its own names.
  const tag = path.basename(sandbox).replace(/[^A-Za-z0-9]/g, '').slice(-6).toLowerCase();
  const netBridge = `tsrt${tag}`;
  const chainPrefix = `TSRT${tag.toUpperCase()}`;
  let child: ChildProcess | undefined;
  const exited = new Set<ChildProcess>();
  const clients = new Set<ChildProcess>();

  const shimPids = (): number[] =>
    allPids().filter((p) => p !== process.pid && isAlive(p) && cmdline(p).includes('tsrun-shim') && cmdline(p).includes(sandbox));

  // ctr makes /run/containerd/fifo for some commands whatever --fifo-dir says.
  const cleanFixed = fixedDirsCleanup(['/run/containerd/fifo', '/run/containerd']);
  t.teardown(async () => {
    const leaks: string[] = [];
    for (const c of clients) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await d.kill9();
    // shims exit on their own shortly after a task delete: give them a moment before calling it a leak
    await waitFor(() => shimPids().length === 0 && pidsOfBundle(rootfs, sandbox).length === 0, 5000);
    const shims = shimPids();
    if (shims.length > 0) leaks.push(`shims still running: ${shims.join(', ')}`);
    killPids(shims);
    const procs = pidsOfBundle(rootfs, sandbox).filter((p) => !shims.includes(p));
    if (procs.length > 0) leaks.push(`container processes still running: ${procs.map((p) => `${p} (${cmdline(p)})`).join(', ')}`);
    killPids(procs);
    for (const dir of cgroupDirsFor(ns)) {
      for (const procsFile of findFiles(dir, 'cgroup.procs')) {
        const pids = readPids(procsFile);
        if (pids.length > 0) killPids(pids);
      }
    }
    await waitFor(() => pidsOfBundle(rootfs, sandbox).length === 0, 10_000);
    for (const dir of cgroupDirsFor(ns)) removeCgroupTree(dir);
    const leftCg = cgroupDirsFor(ns);
    if (leftCg.length > 0) leaks.push(`cgroups left: ${leftCg.join(', ')}`);
    const mounts = mountsUnder(sandbox);
    if (mounts.length > 0) leaks.push(`mounts: ${mounts.join(', ')}`);
    leaks.push(...releaseNetworking(root, netBridge, chainPrefix));
    unmountAll(sandbox);
    if (mountsUnder(sandbox).length === 0) fs.rmSync(sandbox, { recursive: true, force: true, maxRetries: 3 });
    else leaks.push(`${sandbox} kept because of mounts`);
    cleanFixed();
    if (leaks.length > 0 && process.env['TSRUND_KEEP_LEAKS'] === undefined) {
      throw new Error(`left behind by the test or tsrund: ${leaks.join('; ')}`);
    }
  });

  const netConfig = path.join(sandbox, 'tsrund.json');
  fs.writeFileSync(netConfig, JSON.stringify({ networkBridge: netBridge, iptablesChainPrefix: chainPrefix }));
  fs.mkdirSync(fifoDir, { recursive: true });
  fs.mkdirSync(rootfs, { recursive: true });
  populateRootfs(rootfs);

  const d = {
    sandbox,
    socket,
    root,
    state,
    shimRoot,
    fifoDir,
    rootfs,
    ns,
    get pid() {
      return child?.pid ?? 0;
    },
    newId: (prefix = 'c') => `${prefix}${process.pid}-${++seq}`,
    ctr(args: readonly string[], opts: CtrOptions = {}): CtrResult {
      const stdin = opts.stdinFile === undefined ? undefined : fs.openSync(opts.stdinFile, 'r');
      try {
        const r: SpawnSyncReturns<string> = spawnSync(ctrPath, ctrArgv(d, args, opts.ns), {
          encoding: 'utf8',
          ...(stdin === undefined ? { input: opts.input ?? '' } : { stdio: [stdin, 'pipe', 'pipe'] }),
          timeout: opts.timeoutMs ?? 60_000,
          env: { ...process.env, ...(opts.env ?? {}) },
        });
        return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
      } finally {
        if (stdin !== undefined) fs.closeSync(stdin);
      }
    },
    ctrSpawn(args: readonly string[], opts: CtrOptions = {}): ChildProcess {
      const c = spawn(ctrPath, ctrArgv(d, args, opts.ns), {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, ...(opts.env ?? {}) },
      });
      clients.add(c);
      return c;
    },
    ctrAsync(args: readonly string[], opts: CtrOptions = {}): Promise<CtrResult> {
      const c = d.ctrSpawn(args, opts);
      let stdout = '';
      let stderr = '';
      c.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      c.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      if (opts.input !== undefined) c.stdin!.end(opts.input);
      else c.stdin!.end();
      const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      return new Promise((resolve) =>
        c.on('close', (status, signal) => {
          clearTimeout(timer);
          resolve({ status, signal, stdout, stderr });
        }),
      );
    },
    runArgs: () => ['--fifo-dir', fifoDir, '--rootfs', rootfs],
    async kill9() {
      const c = child;
      if (c === undefined || exited.has(c)) return;
      c.kill('SIGKILL');
      await new Promise<void>((resolve) => (exited.has(c) ? resolve() : c.once('exit', () => resolve())));
    },
    async start() {
      const before = d.log().split('tsrund serving').length;
      const out = fs.openSync(logFile, 'a');
      const c = spawn(
        tsrundPath,
        ['--address', socket, '--root', root, '--state', state, '--log-level', 'debug', ...(extraArgs.includes('--config') ? [] : ['--config', netConfig]), ...extraArgs],
        { stdio: ['ignore', out, out] },
      );
      fs.closeSync(out);
      child = c;
      c.once('exit', () => exited.add(c));
      const ok = await waitFor(() => exited.has(c) || d.log().split('tsrund serving').length > before, 30_000);
      if (!ok || exited.has(c)) throw new Error(`tsrund did not start: ${d.log()}`);
    },
    log: () => {
      try {
        return fs.readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    shimPids,
  };
  await d.start();
  return d;
}

function findFiles(dir: string, name: string): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isDirectory()) out.push(...findFiles(path.join(dir, e.name), name));
    else if (e.name === name) out.push(path.join(dir, e.name));
  }
  return out;
}

function readPids(file: string): number[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * After the containers are gone: a veth still on one of the sandbox's bridges is a leak; then the
 * bridges (the default one and those of networks.json) and the sandbox's iptables chains go.
 */
function releaseNetworking(root: string, defaultBridge: string, prefix: string): string[] {
  const leaks: string[] = [];
  let nets: { bridge: string }[] = [];
  try {
    nets = JSON.parse(fs.readFileSync(path.join(root, 'networks', 'networks.json'), 'utf8')) as { bridge: string }[];
  } catch {
    nets = [];
  }
  const bridges = [...new Set([defaultBridge, ...nets.map((n) => n.bridge)])].filter((b) => fs.existsSync(`/sys/class/net/${b}`));
  for (const b of bridges) {
    const ports = fs.readdirSync(`/sys/class/net/${b}/brif`);
    if (ports.length > 0) leaks.push(`veths still on bridge ${b}: ${ports.join(', ')}`);
    spawnSync('ip', ['link', 'delete', b], { stdio: 'ignore' });
  }
  const chains = ['FORWARD', 'ISOLATION-1', 'ISOLATION-2'].map((c) => `${prefix}-${c}`);
  while (spawnSync('iptables', ['-w', '5', '-D', 'FORWARD', '-j', chains[0]!], { stdio: 'ignore' }).status === 0) {
    // one jump removed
  }
  for (const c of chains) spawnSync('iptables', ['-w', '5', '-F', c], { stdio: 'ignore' });
  for (const c of chains) spawnSync('iptables', ['-w', '5', '-X', c], { stdio: 'ignore' });
  // the masquerading chain (nat)
  const post = `${prefix}-POSTROUTING`;
  while (spawnSync('iptables', ['-w', '5', '-t', 'nat', '-D', 'POSTROUTING', '-j', post], { stdio: 'ignore' }).status === 0) {
    // one jump removed
  }
  spawnSync('iptables', ['-w', '5', '-t', 'nat', '-F', post], { stdio: 'ignore' });
  spawnSync('iptables', ['-w', '5', '-t', 'nat', '-X', post], { stdio: 'ignore' });
  return leaks;
}

/** A container's labels as `ctr containers info` shows them. */
export function containerLabels(d: Tsrund, id: string): Record<string, string> {
  const r = d.ctr(['containers', 'info', id]);
  return (JSON.parse(r.stdout) as { Labels: Record<string, string> | null }).Labels ?? {};
}

/** A task's status column in `ctr task ls` (RUNNING, STOPPED, …), or undefined without a task. */
export function taskStatusOf(d: Tsrund, id: string): string | undefined {
  const line = d.ctr(['task', 'ls']).stdout.split('\n').find((l) => l.startsWith(`${id} `));
  return line?.trim().split(/\s+/)[2];
}
