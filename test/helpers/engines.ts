/**
 * The real engines (containerd 1.6 with ctr, podman 4.3 with conmon, docker 20.10) started in
 * isolation for one test file and pointed at the runtime under test: own sockets, roots, state
 * dirs and cgroup parents under one temp dir, and a teardown that removes every container,
 * daemon, shim, mount, cgroup and file they made, also when the test failed.
 *
 * No registry is reachable: ctr and podman run a busybox directory with `--rootfs`, docker
 * `import`s the same directory as a tarball.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { populateRootfs } from './bundle';
import { allPids, cmdline, isAlive, killPids, removeCgroupTree, unmountAll } from './host';
import { which } from './host';
import { runtimePath } from './runtime';

/** What a command run through an engine's CLI did. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for one CLI call. */
export interface CliOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** The minimal test host the helpers need (a tap Test). */
export interface EngineTestHost {
  teardown(fn: () => void | Promise<void>): void;
  comment(...args: unknown[]): void;
}

/** Run a program to completion and capture its output. */
export function runCli(file: string, args: readonly string[], opts: CliOptions = {}): CliResult {
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    env: opts.env ?? process.env,
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
}

/** One line describing a result, for assertion messages. */
export function describeCli(r: CliResult): string {
  const tail = (s: string) => s.trim().split('\n').slice(-3).join(' | ');
  return `exit ${r.code}; stdout: ${tail(r.stdout)}; stderr: ${tail(r.stderr)}`;
}

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Shell words that wait (up to 5 s) until the terminal has a size (busybox `stty size` prints
 * nothing on stdin's 0×0, and exits 0 all the same). Engines set it on the pty
 * master after the process may have started: podman's conmon when podman sends it, ctr and docker
 * after their first resize call — with runc as with tsrun.
 */
export const WAIT_FOR_TTY_SIZE = 'i=0; until s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done';

/**
 * Run a command line with a terminal of `rows`×`cols` as its stdio (util-linux `script`), the
 * way a user at a terminal runs `ctr … -t` or `docker exec -t`. Output is what the terminal showed.
 */
export function onTerminal(argv: readonly string[], rows: number, cols: number, opts: CliOptions = {}): CliResult {
  const line = `stty rows ${rows} cols ${cols}; exec ${argv.map(shQuote).join(' ')}`;
  return runCli('script', ['-qec', line, '/dev/null'], opts);
}

/** Which engines and tools are installed; a missing one makes its tests skip with this reason. */
export function missingTools(...names: string[]): string | undefined {
  const missing = names.filter((n) => which(n) === undefined && !fs.existsSync(n));
  return missing.length > 0 ? `not installed: ${missing.join(', ')} (make test installs them with apt)` : undefined;
}

/** A scratch directory for one engine instance, removed (mounts first) on teardown. */
function scratch(t: EngineTestHost, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => {
    const left = unmountAll(dir);
    if (left.length > 0) t.comment(`could not unmount: ${left.join(' ')}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A busybox root filesystem directory inside `dir`. */
export function busyboxRootfs(dir: string): string {
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  populateRootfs(rootfs);
  for (const d of ['run', 'root']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n');
  return rootfs;
}

/** Every cgroup directory named `rel` (relative to a hierarchy root) across all mounted hierarchies. */
export function cgroupDirs(rel: string): string[] {
  const base = '/sys/fs/cgroup';
  const out: string[] = [];
  for (const h of fs.readdirSync(base)) {
    const d = path.join(base, h, rel);
    try {
      if (fs.statSync(d).isDirectory()) out.push(d);
    } catch {
      // not in this hierarchy
    }
  }
  return out;
}

/** The v1 hierarchy directory of `controller` for cgroup path `rel`. */
export function cgroupFile(controller: string, rel: string, file: string): string {
  return path.join('/sys/fs/cgroup', controller, rel, file);
}

/** Remove the cgroup parent `rel` in every hierarchy at teardown, and note anything that stays. */
function removeCgroupParentOnTeardown(t: EngineTestHost, rel: string): void {
  t.teardown(() => {
    for (const d of cgroupDirs(rel)) removeCgroupTree(d);
    const left = cgroupDirs(rel);
    if (left.length > 0) t.comment(`cgroups left: ${left.join(' ')}`);
  });
}

/** When the test runner (our parent, tap) started, in ms since the epoch; our own start without /proc. */
function runnerStartMs(): number {
  try {
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1]);
    const stat = fs.readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    if (Number.isFinite(btime) && Number.isFinite(startTicks)) return (btime + startTicks / 100) * 1000;
  } catch {
    // fall through
  }
  return Date.now() - process.uptime() * 1000;
}

/**
 * Engines (and ctr) make a few directories at fixed places whatever their flags say: containerd's
 * shim its socket dir /run/containerd/s, ctr /run/containerd/fifo, dockerd /run/docker/plugins,
 * podman /run/containers/networks. The returned function removes those of `dirs` that are empty
 * and were made during this test run (born after the runner started: test files run side by side,
 * and the last one to finish finds them empty). Call it after the daemon is gone.
 */
export function fixedDirsCleanup(dirs: readonly string[]): () => void {
  const since = runnerStartMs() - 2000;
  return () => {
    // Deepest first, so a parent that only held a removed child goes too.
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
      const walk = (dir: string): void => {
        let st: fs.Stats;
        let entries: fs.Dirent[] = [];
        try {
          st = fs.statSync(dir);
          entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch {
          return;
        }
        if (st.birthtimeMs === 0 || st.birthtimeMs < since) return; // older than this run: not ours
        for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
        try {
          fs.rmdirSync(dir);
        } catch {
          // not empty: another test file's engine still uses it, and it will clean up
        }
      };
      walk(d);
    }
  };
}

/** Kill every process whose command line mentions `marker` (daemons' and shims' leftovers). */
function killProcessesMentioning(marker: string): number[] {
  const pids = allPids().filter((p) => p !== process.pid && cmdline(p).includes(marker));
  killPids(pids);
  return pids;
}

async function waitFor(what: string, fn: () => boolean, timeoutMs: number, proc?: ChildProcess, log?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fn()) return;
    if (proc !== undefined && proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = log !== undefined && fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`${what} did not come up within ${timeoutMs} ms${proc?.exitCode != null ? ` (exited ${proc.exitCode})` : ''}\n${tail}`);
}

async function stopDaemon(p: ChildProcess, timeoutMs: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs));
  if ((await Promise.race([exited, timer])) === 'timeout') {
    p.kill('SIGKILL');
    await exited;
  }
}

function spawnDaemon(file: string, args: readonly string[], log: string): ChildProcess {
  const fd = fs.openSync(log, 'a');
  try {
    return spawn(file, args, { stdio: ['ignore', fd, fd], detached: false });
  } finally {
    fs.closeSync(fd);
  }
}

/** An isolated containerd and the `ctr` flags that send its tasks to the runtime under test. */
export interface Containerd {
  readonly dir: string;
  readonly socket: string;
  readonly namespace: string;
  /** the runtime's --root for this namespace (ctr --runc-root) */
  readonly runtimeRoot: string;
  readonly rootfs: string;
  /** flags for `ctr run` that choose the runtime under test, its root and the fifo dir */
  readonly runFlags: readonly string[];
  /** `ctr --address S -n NS …` */
  ctr(args: readonly string[], opts?: CliOptions): CliResult;
  /** the cgroup path ctr gives container `id`: /<namespace>/<id> */
  cgroupPath(id: string): string;
}

/** Start containerd 1.6 in isolation (no CRI plugin) for one test file. */
export async function startContainerd(t: EngineTestHost): Promise<Containerd> {
  const dir = scratch(t, 'tsrun-ctd-');
  const socket = path.join(dir, 'containerd.sock');
  const namespace = `tsrune2e${process.pid}`;
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '',
    ].join('\n'),
  );
  const log = path.join(dir, 'containerd.log');
  removeCgroupParentOnTeardown(t, namespace);
  const cleanFixed = fixedDirsCleanup(['/run/containerd/s', '/run/containerd']);
  const daemon = spawnDaemon('containerd', ['--config', config], log);
  const ctr = (args: readonly string[], opts: CliOptions = {}) => runCli('ctr', ['--address', socket, '-n', namespace, ...args], opts);
  t.teardown(async () => {
    // Tasks first (the shims outlive containerd), then the daemon, then anything still around.
    const tasks = ctr(['task', 'ls', '-q']).stdout.split('\n').filter((s) => s !== '');
    for (const id of tasks) {
      ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]);
      ctr(['task', 'delete', '--force', id]);
    }
    for (const id of ctr(['c', 'ls', '-q']).stdout.split('\n').filter((s) => s !== '')) ctr(['c', 'rm', id]);
    await stopDaemon(daemon, 10_000);
    const stray = killProcessesMentioning(dir);
    if (stray.length > 0) t.comment(`killed leftover processes: ${stray.join(' ')}`);
    cleanFixed();
  });
  await waitFor('containerd', () => fs.existsSync(socket) && runCli('ctr', ['--address', socket, 'version'], { timeoutMs: 5000 }).code === 0, 30_000, daemon, log);
  const runtimeRoot = path.join(dir, 'runtime-root');
  const rootfs = busyboxRootfs(dir);
  return {
    dir,
    socket,
    namespace,
    runtimeRoot,
    rootfs,
    runFlags: ['--runc-binary', runtimePath, '--runc-root', runtimeRoot, '--fifo-dir', path.join(dir, 'fifo')],
    ctr,
    cgroupPath: (id) => `/${namespace}/${id}`,
  };
}

/** An isolated podman (storage, run root, tmp dir and containers.conf of its own) using the runtime under test. */
export interface Podman {
  readonly dir: string;
  readonly rootfs: string;
  /** the cgroup parent every container of this file is put under */
  readonly cgroupParent: string;
  /** flags for `podman run` (rootfs mode, cgroup parent) */
  readonly runFlags: readonly string[];
  podman(args: readonly string[], opts?: CliOptions): CliResult;
  /** the podman command line as argv, for onTerminal */
  argv(args: readonly string[]): string[];
  /** the environment podman needs (CONTAINERS_CONF) */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * Set up podman for one test file. The runtime is registered as `tsrun` and listed in
 * `runtime_supports_json`, so podman passes `--log-format=json --log …` as it does for runc.
 * This machine's bounding set lacks CAP_SYS_RESOURCE, so podman's default ulimits (NOFILE and
 * NPROC raised to 1048576) cannot be applied by any runtime: `default_ulimits` is pinned empty.
 */
export function setupPodman(t: EngineTestHost): Podman {
  const dir = scratch(t, 'tsrun-podman-');
  const conf = path.join(dir, 'containers.conf');
  fs.writeFileSync(
    conf,
    [
      '[containers]',
      'default_ulimits = []',
      'netns = "none"',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${dir}/events.log"`,
      'runtime_supports_json = ["crun", "runc", "tsrun"]',
      '[engine.runtimes]',
      `tsrun = ["${runtimePath}"]`,
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERS_CONF: conf, XDG_CONFIG_HOME: path.join(dir, 'config') };
  const global = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'runroot'), '--storage-driver', 'vfs', '--runtime', 'tsrun', '--tmpdir', path.join(dir, 'tmp')];
  const argv = (args: readonly string[]) => ['podman', ...global, ...args];
  const podman = (args: readonly string[], opts: CliOptions = {}) => runCli('podman', [...global, ...args], { ...opts, env: opts.env ?? env });
  const cgroupParent = `/tsrune2e-podman${process.pid}`;
  removeCgroupParentOnTeardown(t, cgroupParent);
  const cleanFixed = fixedDirsCleanup(['/run/containers/networks', '/run/containers', '/run/libpod']);
  t.teardown(() => {
    podman(['rm', '--all', '--force', '--time', '0']);
    const stray = killProcessesMentioning(dir);
    if (stray.length > 0) t.comment(`killed leftover processes: ${stray.join(' ')}`);
    cleanFixed();
  });
  const rootfs = busyboxRootfs(dir);
  return { dir, rootfs, cgroupParent, runFlags: ['--cgroup-parent', cgroupParent, '--rootfs', rootfs], podman, argv, env };
}

/** An isolated dockerd (its own managed containerd) with the runtime under test registered as `tsr`. */
export interface Docker {
  readonly dir: string;
  readonly socket: string;
  readonly cgroupParent: string;
  /** the imported busybox image */
  readonly image: string;
  docker(args: readonly string[], opts?: CliOptions): CliResult;
  argv(args: readonly string[]): string[];
  /** the runtime's --root as docker 20.10 passes it */
  readonly runtimeRoot: string;
}

/** The docker 20.10 client from Debian's docker.io (a newer client may shadow it on PATH). */
export const dockerClient = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/** Start dockerd in isolation: no bridge, no iptables, vfs storage, `tsr` the default runtime. */
export async function startDockerd(t: EngineTestHost): Promise<Docker> {
  const dir = scratch(t, 'tsrun-docker-');
  const socket = path.join(dir, 'docker.sock');
  const execRoot = path.join(dir, 'exec');
  const cgroupParent = `/tsrune2e-docker${process.pid}`;
  const daemonJson = path.join(dir, 'daemon.json');
  fs.writeFileSync(daemonJson, '{}\n');
  removeCgroupParentOnTeardown(t, cgroupParent);
  const cleanFixed = fixedDirsCleanup(['/run/docker/plugins', '/run/docker', '/run/containerd/s', '/run/containerd']);
  const log = path.join(dir, 'dockerd.log');
  const daemon = spawnDaemon(
    'dockerd',
    [
      '--config-file', daemonJson,
      '--data-root', path.join(dir, 'data'),
      '--exec-root', execRoot,
      '--pidfile', path.join(dir, 'docker.pid'),
      '-H', `unix://${socket}`,
      '--bridge', 'none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--storage-driver', 'vfs',
      '--cgroup-parent', cgroupParent,
      '--add-runtime', `tsr=${runtimePath}`,
      '--default-runtime', 'tsr',
    ],
    log,
  );
  const docker = (args: readonly string[], opts: CliOptions = {}) => runCli(dockerClient, ['-H', `unix://${socket}`, ...args], opts);
  t.teardown(async () => {
    const ids = docker(['ps', '-aq']).stdout.split('\n').filter((s) => s !== '');
    if (ids.length > 0) docker(['rm', '-f', ...ids]);
    await stopDaemon(daemon, 20_000);
    const stray = killProcessesMentioning(dir);
    if (stray.length > 0) t.comment(`killed leftover processes: ${stray.join(' ')}`);
    cleanFixed();
  });
  await waitFor('dockerd', () => fs.existsSync(socket) && docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 }).code === 0, 60_000, daemon, log);
  const rootfs = busyboxRootfs(dir);
  const image = 'tsrun-e2e/busybox:latest';
  const tar = path.join(dir, 'rootfs.tar');
  const packed = runCli('tar', ['-C', rootfs, '-cf', tar, '.']);
  if (packed.code !== 0) throw new Error(`tar of the busybox rootfs failed: ${describeCli(packed)}`);
  const imported = docker(['import', tar, image]);
  if (imported.code !== 0) throw new Error(`docker import failed: ${describeCli(imported)}`);
  return { dir, socket, cgroupParent, image, docker, argv: (args) => [dockerClient, '-H', `unix://${socket}`, ...args], runtimeRoot: path.join(execRoot, 'runtime-runc', 'moby') };
}

/** Files and directories under `dir` (recursively), for "nothing left behind" checks. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Processes still alive among `pids`. */
export function alive(pids: readonly number[]): number[] {
  return pids.filter((p) => isAlive(p));
}

/** A shell snippet listing the shell's own fds (`ls` runs as a child, so its directory fd is not among them). */
export const leakedFdsScript = 'ls -l /proc/$$/fd; echo fds-checked';

/** The fds above 2 in the output of `leakedFdsScript`, as "N -> target". */
export function leakedFds(output: string): string[] {
  const out: string[] = [];
  for (const m of output.matchAll(/\s(\d+) -> (.*)$/gm)) if (Number(m[1]) > 2) out.push(`${m[1]} -> ${m[2]}`);
  return out;
}

/** The device nodes and links every engine expects the runtime to create (docs/engines.md §1.9). */
export const defaultDevices = ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr'];
