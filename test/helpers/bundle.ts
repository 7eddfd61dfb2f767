/**
 * Per-test sandboxes: a bundle with a busybox rootfs, a private runtime root, and a
 * teardown that removes everything and fails the test if the runtime left anything behind.
 *
 *   /tmp/tsrun-it-XXXXXX/          sandbox (everything a test creates lives here)
 *     bundle/config.json           base config (oci.ts) patched by the test
 *     bundle/rootfs/bin/busybox    + one relative symlink per applet
 *     bundle/rootfs/{proc,sys,dev,tmp,etc}
 *     root/                        --root of the runtime under test
 *     root-<n>/                    --root of any extra runtime (b.runtime())
 *     io/                          stdout/stderr files of every call
 *     log.json                     --log target when opts.log is set
 *     <name>/                      host directories from b.hostDir(name)
 *
 * Teardown order: `delete --force` every id the runtimes saw or that has an entry under
 * their root; then check and clean, each finding being a leak: entries left under a root,
 * processes whose root is the rootfs (or whose cwd/cmdline is in the sandbox), cgroup
 * directories named after an id, mounts under the sandbox. The sandbox is removed only
 * when no mount is left below it, so a stuck bind mount never lets `rm -r` reach the host.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupDirsFor, cmdline, killPids, mountsUnder, pidsOfBundle, removeCgroupTree, unmountAll } from './host';
import { baseSpec, type OciSpec } from './oci';
import { busyboxPath } from './requires';
import { makeRuntime, runtimePath, type LogOptions, type Runtime } from './runtime';
import { waitFor } from './wait';

/** What `makeBundle` needs from a tap test. */
export interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

/** Paths of a bundle, available to `patch` before config.json is written. */
export interface BundlePaths {
  /** The per-test temp dir holding everything. */
  readonly sandbox: string;
  /** The bundle directory (holds config.json and rootfs/). */
  readonly dir: string;
  readonly rootfs: string;
  readonly configPath: string;
}

/** Options for `makeBundle`. */
export interface BundleOptions {
  /** `process.args`; default `['true']`. */
  args?: readonly string[];
  /** Edit the base config in place before it is written. */
  patch?: (spec: OciSpec, paths: BundlePaths) => void;
  /** Binary for `b.rt`; default the runtime under test. */
  binary?: string;
  /** Pass `--log <sandbox>/log.json --log-format json` on every call of `b.rt`. */
  log?: boolean;
}

/** A ready bundle plus the runtime that owns its containers. */
export interface Bundle extends BundlePaths {
  /** A fresh container id, unique across test processes (cgroups are named after it). */
  readonly id: string;
  readonly rt: Runtime;
  /** Conventional pid file path for `id` (not passed unless a test passes it). */
  readonly pidFile: string;
  /** `--log` target when `opts.log` was set. */
  readonly logFile: string;
  /** The config as last written. */
  spec(): OciSpec;
  /** Re-write config.json from a patch of the current config. */
  writeSpec(patch: (spec: OciSpec) => void): void;
  /** Another unique id for a second container on the same bundle/runtime. */
  newId(): string;
  /** Create (once) and return `<sandbox>/<name>`, a host directory outside the bundle. */
  hostDir(name: string): string;
  /** An extra runtime (own root under the sandbox), cleaned up like `rt`. */
  runtime(binary: string, log?: LogOptions): Runtime;
  /**
   * What is left right now, one description per finding: entries under any runtime root,
   * processes of this bundle, cgroup directories named after a known id, mounts under the
   * sandbox. Empty means clean. Changes nothing.
   */
  leftovers(): string[];
  /**
   * Forcefully remove what is left (as the teardown would) and resolve to one description
   * per finding; for tests that knowingly expect a reference runtime to leak.
   */
  purge(): Promise<string[]>;
}

let idSeq = 0;
let appletCache: string[] | undefined;

function applets(): string[] {
  if (appletCache === undefined) {
    const r = spawnSync(busyboxPath, ['--list'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${busyboxPath} --list failed: ${r.stderr}`);
    appletCache = r.stdout.split('\n').filter((a) => a !== '' && a !== 'busybox' && !a.includes('/'));
  }
  return appletCache;
}

/** Fill `rootfs` with busybox, its applet links and the usual empty directories. */
export function populateRootfs(rootfs: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  const bin = path.join(rootfs, 'bin');
  fs.copyFileSync(busyboxPath, path.join(bin, 'busybox'));
  fs.chmodSync(path.join(bin, 'busybox'), 0o755);
  for (const a of applets()) fs.symlinkSync('busybox', path.join(bin, a));
}

/** A unique container id for this test process. */
export function uniqueId(): string {
  return `it${process.pid}-${++idSeq}`;
}

/**
 * Build a bundle in a fresh sandbox and register the teardown that deletes its containers
 * and fails the test on anything left behind. Throws if the runtime binary is missing.
 */
export function makeBundle(t: TeardownHost, opts: BundleOptions = {}): Bundle {
  const binary = opts.binary ?? runtimePath;
  if (!fs.existsSync(binary)) {
    throw new Error(`runtime under test not found at ${binary}: run "make build" or set TSRUN`);
  }
  const sandbox = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-it-'));
  const dir = path.join(sandbox, 'bundle');
  const rootfs = path.join(dir, 'rootfs');
  const configPath = path.join(dir, 'config.json');
  const paths: BundlePaths = { sandbox, dir, rootfs, configPath };
  const logFile = path.join(sandbox, 'log.json');
  const ioDir = path.join(sandbox, 'io');
  const runtimes: Runtime[] = [];

  t.teardown(() => cleanup(paths, runtimes));

  fs.mkdirSync(rootfs, { recursive: true });
  populateRootfs(rootfs);
  let current = baseSpec(opts.args ?? ['true']);
  opts.patch?.(current, paths);
  const write = (): void => fs.writeFileSync(configPath, `${JSON.stringify(current, null, 2)}\n`);
  write();

  const addRuntime = (bin: string, root: string, log?: LogOptions): Runtime => {
    const rt = makeRuntime(log === undefined ? { binary: bin, root, ioDir } : { binary: bin, root, ioDir, log });
    runtimes.push(rt);
    return rt;
  };
  const rt = addRuntime(binary, path.join(sandbox, 'root'), opts.log === true ? { path: logFile, format: 'json' } : undefined);

  return {
    ...paths,
    id: uniqueId(),
    rt,
    pidFile: path.join(sandbox, 'container.pid'),
    logFile,
    spec: () => JSON.parse(JSON.stringify(current)) as OciSpec,
    writeSpec(patch) {
      const next = JSON.parse(JSON.stringify(current)) as OciSpec;
      patch(next);
      current = next;
      write();
    },
    newId: uniqueId,
    hostDir(name) {
      const p = path.join(sandbox, name);
      fs.mkdirSync(p, { recursive: true });
      return p;
    },
    runtime(bin, log) {
      return addRuntime(bin, path.join(sandbox, `root-${runtimes.length}`), log);
    },
    leftovers: () => findLeftovers(paths, runtimes),
    purge: () => purge(paths, runtimes),
  };
}

function findLeftovers(paths: BundlePaths, runtimes: readonly Runtime[]): string[] {
  const found: string[] = [];
  for (const rt of runtimes) {
    const left = entries(rt.root);
    if (left.length > 0) found.push(`entries under ${rt.root}: ${left.join(', ')}`);
  }
  const pids = pidsOfBundle(paths.rootfs, paths.sandbox);
  if (pids.length > 0) found.push(`processes: ${pids.map((p) => `${p} (${cmdline(p)})`).join(', ')}`);
  for (const rt of runtimes) {
    for (const id of rt.ids) {
      const dirs = cgroupDirsFor(id);
      if (dirs.length > 0) found.push(`cgroups: ${dirs.join(', ')}`);
    }
  }
  const mounts = mountsUnder(paths.sandbox);
  if (mounts.length > 0) found.push(`mounts: ${mounts.join(', ')}`);
  return found;
}

function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

async function cleanup(paths: BundlePaths, runtimes: readonly Runtime[]): Promise<void> {
  const leaks: string[] = [];
  for (const rt of runtimes) {
    for (const id of new Set<string>([...rt.ids, ...entries(rt.root)])) {
      rt.delete(id, { force: true, timeoutMs: 30_000, log: false });
    }
  }
  leaks.push(...(await purge(paths, runtimes)));
  const stuck = mountsUnder(paths.sandbox);
  if (stuck.length === 0) {
    fs.rmSync(paths.sandbox, { recursive: true, force: true, maxRetries: 3 });
  } else {
    leaks.push(`${paths.sandbox} kept because of the mounts`);
  }
  if (leaks.length > 0) throw new Error(`left behind by the test or the runtime: ${leaks.join('; ')}`);
}

/**
 * Remove by force whatever is left (processes, cgroups named after a known id, mounts under
 * the sandbox, entries under the runtime roots) and return one description per finding.
 */
async function purge(paths: BundlePaths, runtimes: readonly Runtime[]): Promise<string[]> {
  const leaks: string[] = [];
  const ids = new Set<string>();
  for (const rt of runtimes) for (const id of [...rt.ids, ...entries(rt.root)]) ids.add(id);

  // delete --force may return while the kernel is still tearing the processes down.
  let pids: number[] = [];
  await waitFor(() => (pids = pidsOfBundle(paths.rootfs, paths.sandbox)).length === 0, 3000, 50);
  if (pids.length > 0) {
    leaks.push(`processes left: ${pids.map((p) => `${p} (${cmdline(p)})`).join(', ')}`);
    killPids(pids);
    await waitFor(() => pidsOfBundle(paths.rootfs, paths.sandbox).length === 0, 3000, 50);
  }

  for (const id of ids) {
    const dirs = cgroupDirsFor(id);
    if (dirs.length > 0) {
      leaks.push(`cgroups left: ${dirs.join(', ')}`);
      for (const d of dirs) removeCgroupTree(d);
    }
  }

  const mounts = mountsUnder(paths.sandbox);
  if (mounts.length > 0) {
    leaks.push(`mounts left: ${mounts.join(', ')}`);
    const stuck = unmountAll(paths.sandbox);
    if (stuck.length > 0) leaks.push(`could not unmount ${stuck.join(', ')}`);
  }

  for (const rt of runtimes) {
    const left = entries(rt.root);
    if (left.length > 0) {
      leaks.push(`${rt.name} --root ${rt.root} still holds [${left.join(', ')}]`);
      if (mountsUnder(rt.root).length === 0) {
        for (const e of left) fs.rmSync(path.join(rt.root, e), { recursive: true, force: true });
      }
    }
  }
  return leaks;
}
