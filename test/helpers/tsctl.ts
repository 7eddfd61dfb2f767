/**
 * tsctl against a private tsrund (test/helpers/tsrund.ts): same sandbox, namespace and rootfs,
 * plus a short shim root (a unix socket path is limited to 107 bytes and tsctl ids are 64 hex
 * characters) and a TMPDIR for tsctl's fifo directories, both checked at teardown:
 *
 *   teardown (runs before tsrund's): tsctl rm -f every container of the namespace, then every
 *   shim under the shim root must exit, the fifo TMPDIR must be empty; leftovers are killed,
 *   removed and reported as leaks. tsrund's own teardown then checks processes, cgroups, mounts.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TeardownHost } from './bundle';
import { allPids, cgroupDirsFor, cmdline, isAlive, killPids, removeCgroupTree } from './host';
import { startTsrund, tsrundMissing, type Tsrund } from './tsrund';
import { waitFor } from './wait';

const repoRoot = path.resolve(__dirname, '..', '..');

/** The tsctl binary under test ($TSCTL, default bin/tsctl). */
export const tsctlPath: string = path.resolve(process.env['TSCTL'] ?? path.join(repoRoot, 'bin', 'tsctl'));

/** Why tsctl tests cannot run here, or undefined. */
export function tsctlMissing(): string | undefined {
  const why = tsrundMissing();
  if (why !== undefined) return why;
  if (!fs.existsSync(tsctlPath)) return `tsctl not built at ${tsctlPath}: run "make bin/tsctl"`;
  return undefined;
}

/** Result of one tsctl call. */
export interface TsctlResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A private tsrund with tsctl pointed at it. */
export interface TsctlEnv {
  readonly d: Tsrund;
  readonly shimRoot: string;
  readonly tmp: string;
  /** tsctl's namespace (short: the shim's console socket path must stay under 108 bytes) */
  readonly ns: string;
  /** the environment tsctl runs with (TSCTL_HOST, TSCTL_NAMESPACE, TMPDIR) */
  readonly env: NodeJS.ProcessEnv;
  /** tsctl ARGS…, synchronously */
  tsctl(args: readonly string[], opts?: { input?: string; timeoutMs?: number; env?: Record<string, string> }): TsctlResult;
  /** tsctl ARGS… asynchronously; `pid` is that tsctl's (to signal it), `stdout()` its output so far */
  tsctlAsync(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<TsctlResult> & { readonly pid: number; stdout(): string };
}

/** Start tsrund (with extra flags, e.g. --shim native) for tsctl tests and register the teardown on `t`. */
export async function startTsctl(t: TeardownHost, extraArgs: readonly string[] = []): Promise<TsctlEnv> {
  // tsrund mounts image rootfs on <dirname(shim root)>/rootfs/<ns>/<id> and, when it starts,
  // unmounts every one there that is not its own task's: each tsrund gets a parent of its own, or
  // one starting in another test would detach this one's container mounts. Short (socket paths).
  const shimParent = fs.mkdtempSync('/tmp/t');
  const shimRoot = path.join(shimParent, 's');
  fs.mkdirSync(shimRoot);
  const ns = `tc${process.pid}`;
  const leaks: string[] = [];
  const inShimRoot = (): number[] => allPids().filter((p) => p !== process.pid && isAlive(p) && cmdline(p).includes(shimRoot));
  // tap runs teardowns last-registered first: this one runs after tsrund's and reports
  t.teardown(() => {
    const left = inShimRoot();
    killPids(left); // whatever still names the shim root (tsrund's teardown already killed and reported its shims)
    fs.rmSync(shimRoot, { recursive: true, force: true });
    // the rootfs mount points: only empty directories (a mount left would be a leak, never walked)
    const rootfsDirs = path.join(shimParent, 'rootfs');
    for (const ns of fs.existsSync(rootfsDirs) ? fs.readdirSync(rootfsDirs) : []) {
      for (const id of fs.readdirSync(path.join(rootfsDirs, ns))) {
        try {
          fs.rmdirSync(path.join(rootfsDirs, ns, id));
        } catch {
          leaks.push(`rootfs mount point left: ${path.join(rootfsDirs, ns, id)}`);
        }
      }
      if (fs.readdirSync(path.join(rootfsDirs, ns)).length === 0) fs.rmdirSync(path.join(rootfsDirs, ns));
    }
    if (leaks.length === 0) fs.rmSync(shimParent, { recursive: true, force: true });
    if (leaks.length > 0 && process.env['TSRUND_KEEP_LEAKS'] === undefined) throw new Error(`left behind by the test, tsctl or tsrund: ${leaks.join('; ')}`);
  });
  const d = await startTsrund(t, ['--shim-root', shimRoot, ...extraArgs]);
  const tmp = path.join(d.sandbox, 'tmp');
  fs.mkdirSync(tmp);
  const env: NodeJS.ProcessEnv = { ...process.env, TSCTL_HOST: `unix://${d.socket}`, TSCTL_NAMESPACE: ns, TMPDIR: tmp };
  const shims = (): number[] => inShimRoot().filter((p) => cmdline(p).includes('tsrun-shim') && !cmdline(p).includes('--pool'));
  const e: TsctlEnv = {
    d,
    shimRoot,
    tmp,
    ns,
    env,
    tsctl(args, opts = {}) {
      const r = spawnSync(tsctlPath, args, { encoding: 'utf8', input: opts.input ?? '', timeout: opts.timeoutMs ?? 60_000, env: { ...env, ...(opts.env ?? {}) } });
      return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    tsctlAsync(args, opts = {}) {
      const c = spawn(tsctlPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      c.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      c.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      c.stdin.end(opts.input ?? '');
      const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      const done = new Promise<TsctlResult>((resolve) =>
        c.on('close', (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        }),
      );
      return Object.assign(done, { pid: c.pid ?? 0, stdout: () => stdout });
    },
  };
  // runs first, while tsrund is alive
  t.teardown(async () => {
    const ids = e.tsctl(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter((l) => l !== '');
    if (ids.length > 0) {
      leaks.push(`containers left: ${ids.join(', ')}`);
      e.tsctl(['rm', '-f', ...ids]);
    }
    await waitFor(() => shims().length === 0, 8000);
    const alive = shims();
    if (alive.length > 0) leaks.push(`shims still running: ${alive.join(', ')}`);
    killPids(alive);
    const left = fs.readdirSync(tmp);
    if (left.length > 0) leaks.push(`tsctl temp dirs left: ${left.join(', ')}`);
    // <shimRoot>/<ns>/<id> are shims, <shimRoot>/.logs/<ns>/<id> json-file logs: both go with the container
    const shimDirs = fs.existsSync(shimRoot)
      ? spawnSync('find', [shimRoot, '-mindepth', '2', '-maxdepth', '3', '-not', '-path', `${shimRoot}/.logs`, '-not', '-path', `${shimRoot}/.logs/*`, '-o', '-path', `${shimRoot}/.logs/*/*`, '-prune'], { encoding: 'utf8' }).stdout.trim()
      : '';
    if (shimDirs !== '') leaks.push(`shim dirs left: ${shimDirs.split('\n').join(', ')}`);
    const procsIn = (dir: string): number[] =>
      spawnSync('find', [dir, '-name', 'cgroup.procs', '-exec', 'cat', '{}', '+'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l !== '').map(Number);
    for (const dir of cgroupDirsFor(ns)) {
      const procs = procsIn(dir);
      if (procs.length > 0) {
        leaks.push(`processes in ${dir}: ${procs.join(', ')}`);
        killPids(procs);
      }
    }
    await waitFor(() => cgroupDirsFor(ns).every((dir) => procsIn(dir).length === 0), 5000);
    for (const dir of cgroupDirsFor(ns)) removeCgroupTree(dir);
    const cg = cgroupDirsFor(ns);
    if (cg.length > 0) leaks.push(`cgroups left: ${cg.join(', ')}`);
  });
  return e;
}

/** Path of the pty driver (run a command on a pty, send keys, resize). */
export const ptyDrive: string = path.join(repoRoot, 'test', 'helpers', 'pty-drive.py');

/** Host tmpdir, for files tests create outside the sandbox. */
export const hostTmp: string = os.tmpdir();
