/*
 * The two container engines the supervisor sections drive with the same `ctr`: tsrund (with
 * tsrun-shim) and containerd 1.6 (with containerd-shim-runc-v2 and runc). Each is started by the
 * benchmark in isolation, under the run's temp dir:
 *
 *   <dir>/  tsrund.sock | containerd.sock   root/  state/  fifo/  config.toml  daemon.log
 *
 * and its containers live in a namespace of their own (`tsrun-bench-<pid>`), so their cgroups are
 * /<ns>/<id> in every hierarchy. stop() deletes every task and container, stops the daemon,
 * SIGKILLs whatever process still mentions the dir (shims), removes the namespace's cgroups and
 * unmounts anything left under the dir.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shownPath } from './report';
import { allPids, cgroupDirsFor, cmdline, killPids, mountsUnder, ppidOf, removeCgroupTree, unmountAll } from '../../test/helpers/host';

/** The ctr binary both engines are driven with ($CTR overrides). */
export const CTR = process.env['CTR'] ?? '/usr/bin/ctr';

/** A running engine. */
export interface Engine {
  readonly name: string;
  readonly dir: string;
  readonly socket: string;
  readonly namespace: string;
  /** the daemon's pid */
  readonly pid: number;
  /** the daemon's log file */
  readonly log: string;
  /** argv of `ctr --address S -n NS args…` */
  ctr(args: readonly string[]): string[];
  /** argv of `ctr run FLAGS… --rootfs ROOTFS ID ARGS…` (with this engine's --fifo-dir) */
  run(flags: readonly string[], rootfs: string, id: string, args: readonly string[]): string[];
  /** pids of this engine's shims and helpers (what a container costs besides its own processes) */
  shimPids(): number[];
  /** `<name> <version>` lines for the machine table */
  readonly versions: Readonly<Record<string, string>>;
  /** delete every task and container (untimed), keep the daemon */
  clear(): Promise<void>;
  /** clear, stop the daemon, kill leftovers, remove cgroups and mounts */
  stop(): Promise<void>;
}

/** Run ctr and return its output, or throw with its stderr. */
export function ctrSync(argv: readonly string[], timeoutMs = 60_000): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`${argv.slice(5).join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

/** Run a command asynchronously; resolves with its wall time in ms and exit status. */
export function ctrAsync(argv: readonly string[], timeoutMs = 300_000): Promise<{ ms: number; status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, status, stderr });
    });
  });
}

/** Run `jobs` with at most `limit` in flight. */
export async function pool<T>(jobs: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

function lines(s: string): string[] {
  return s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

async function waitUntil(what: string, fn: () => boolean, timeoutMs: number, daemon: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fn()) return;
    if (daemon.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`${what} did not come up within ${timeoutMs} ms${daemon.exitCode !== null ? ` (exited ${daemon.exitCode})` : ''}\n${tail}`);
}

function startDaemon(file: string, args: readonly string[], log: string, env: NodeJS.ProcessEnv): ChildProcess {
  const fd = fs.openSync(log, 'a');
  try {
    return spawn(file, args, { stdio: ['ignore', fd, fd], env });
  } finally {
    fs.closeSync(fd);
  }
}

async function stopDaemon(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref());
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    p.kill('SIGKILL');
    await exited;
  }
}

/** `e` once `ctr version` gets an answer on `socket` (30 s); stopped and the error thrown otherwise. */
async function answering(e: Engine, socket: string, daemon: ChildProcess, log: string): Promise<Engine> {
  try {
    await waitUntil(e.name, () => fs.existsSync(socket) && spawnSync(CTR, ['--address', socket, 'version'], { timeout: 5000 }).status === 0, 30_000, daemon, log);
  } catch (err) {
    await e.stop();
    throw err;
  }
  return e;
}

/** The fixed dirs containerd's shim and ctr make whatever the engine's own dirs are (deepest first). */
const FIXED_DIRS = ['/run/containerd/runc', '/run/containerd/s', '/run/containerd/fifo', '/run/containerd'];

interface EngineSpec {
  /** those of FIXED_DIRS that existed before the daemon started: someone else's, they stay */
  readonly fixedBefore: ReadonlySet<string>;
  readonly name: string;
  readonly dir: string;
  readonly socket: string;
  readonly daemon: ChildProcess;
  readonly log: string;
  readonly namespace: string;
  readonly shimMarker: string;
  readonly versions: Record<string, string>;
}

function engine(s: EngineSpec): Engine {
  const ctr = (args: readonly string[]): string[] => [CTR, '--address', s.socket, '--namespace', s.namespace, ...args];
  const clear = async (): Promise<void> => {
    const tasks = lines(spawnSync(CTR, ctr(['task', 'ls', '-q']).slice(1), { encoding: 'utf8' }).stdout ?? '');
    await pool(tasks.map((id) => () => ctrAsync(ctr(['task', 'delete', '--force', id]), 60_000)), 8);
    const containers = lines(spawnSync(CTR, ctr(['container', 'ls', '-q']).slice(1), { encoding: 'utf8' }).stdout ?? '');
    await pool(containers.map((id) => () => ctrAsync(ctr(['container', 'rm', id]), 60_000)), 8);
  };
  // Shims that name the engine's dir, and children of the daemon that name none.
  const shimPids = (): number[] =>
    allPids().filter((p) => p !== process.pid && p !== s.daemon.pid && cmdline(p).includes(s.shimMarker) && (cmdline(p).includes(s.dir) || ppidOf(p) === s.daemon.pid));
  return {
    name: s.name,
    dir: s.dir,
    socket: s.socket,
    namespace: s.namespace,
    pid: s.daemon.pid ?? 0,
    log: s.log,
    ctr,
    run: (flags, rootfs, id, args) => ctr(['run', '--fifo-dir', path.join(s.dir, 'fifo'), ...flags, '--rootfs', rootfs, id, ...args]),
    shimPids,
    versions: s.versions,
    clear,
    async stop() {
      try {
        if (s.daemon.exitCode === null) await clear();
      } finally {
        await stopDaemon(s.daemon);
        // Shims outlive their daemon by design; anything still
        // mentioning the dir is ours.
        for (let i = 0; i < 50; i++) {
          const left = allPids().filter((p) => p !== process.pid && cmdline(p).includes(s.dir));
          if (left.length === 0) break;
          killPids(left);
          await new Promise((r) => setTimeout(r, 100));
        }
        for (const d of cgroupDirsFor(s.namespace)) removeCgroupTree(d);
        // containerd's shim keeps runc's state under /run/containerd/runc/<namespace> whatever
        // containerd's own dirs are, and its sockets in /run/containerd/s: its namespace's dir goes, and
        // the fixed dirs it made go once empty (another engine that made them meanwhile keeps them busy).
        fs.rmSync(path.join('/run/containerd/runc', s.namespace), { recursive: true, force: true });
        for (const d of FIXED_DIRS.filter((x) => !s.fixedBefore.has(x))) {
          try {
            fs.rmdirSync(d);
          } catch {
            // in use by something else, or absent
          }
        }
        if (mountsUnder(s.dir).length > 0) unmountAll(s.dir);
        fs.rmSync(s.dir, { recursive: true, force: true, maxRetries: 3 });
      }
    },
  };
}

/** Start tsrund (bin/tsrund, its shims bin/tsrun-shim) in `dir` with extra flags; it logs every call's duration (trace). */
export async function startTsrund(repo: string, dir: string, namespace: string, extraArgs: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Engine> {
  fs.mkdirSync(path.join(dir, 'fifo'), { recursive: true });
  const socket = path.join(dir, 'tsrund.sock');
  const log = path.join(dir, 'daemon.log');
  const bin = path.join(repo, 'bin', 'tsrund');
  const fixedBefore = new Set(FIXED_DIRS.filter((d) => fs.existsSync(d)));
  const daemon = startDaemon(bin, ['--address', socket, '--root', path.join(dir, 'root'), '--state', path.join(dir, 'state'), '--no-restart-policies', '--log-level', 'trace', ...extraArgs], log, env);
  const e = engine({
    fixedBefore,
    name: 'tsrund',
    dir,
    socket,
    daemon,
    log,
    namespace,
    shimMarker: 'tsrun-shim',
    versions: { tsrund: `${lines(spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout ?? '')[0] ?? 'unknown'} (${shownPath(bin)})` },
  });
  return answering(e, socket, daemon, log);
}

/** Start containerd 1.6 in `dir` on its own config, root, state and sockets (no CRI plugin). */
export async function startContainerd(dir: string, namespace: string): Promise<Engine> {
  fs.mkdirSync(path.join(dir, 'fifo'), { recursive: true });
  const socket = path.join(dir, 'containerd.sock');
  const config = path.join(dir, 'config.toml');
  const log = path.join(dir, 'daemon.log');
  fs.writeFileSync(
    config,
    ['version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${socket}"`, '[ttrpc]', `  address = "${socket}.ttrpc"`, ''].join('\n'),
  );
  const fixedBefore = new Set(FIXED_DIRS.filter((d) => fs.existsSync(d)));
  const daemon = startDaemon('containerd', ['--config', config], log, process.env);
  const version = (argv: string[]): string => lines(spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).stdout ?? '')[0] ?? 'unknown';
  const e = engine({
    fixedBefore,
    name: 'containerd',
    dir,
    socket,
    daemon,
    log,
    namespace,
    shimMarker: 'containerd-shim-runc-v2',
    versions: {
      containerd: version(['containerd', '--version']),
      'containerd-shim-runc-v2': lines(spawnSync('containerd-shim-runc-v2', ['-v'], { encoding: 'utf8' }).stdout ?? '').slice(1).join(', ') || 'unknown',
      ctr: `${version([CTR, '--version'])} (${CTR})`,
    },
  });
  return answering(e, socket, daemon, log);
}

/** tsrund's own time per gRPC method (ms per call) from its trace log text. */
export function rpcTimes(logText: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of logText.matchAll(/ trace rpc method=\S*?\.(\w+\/\w+) ms=([\d.]+)/g)) {
    const list = out.get(m[1]!) ?? [];
    list.push(Number(m[2]));
    out.set(m[1]!, list);
  }
  return out;
}
