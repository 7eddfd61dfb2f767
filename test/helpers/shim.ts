/**
 * A shim test rig: a temp state root, a busybox bundle (absolute rootfs, cgroupsPath /<id>),
 * client-made FIFOs read and written the way ctr does, and a teardown that deletes every shim,
 * kills what is left, checks cgroups/processes/mounts and removes the temp dirs — also on failure.
 *
 * RUNTIMES lists the Runtime choices every integration test runs against: the library, the
 * tsrun binary, and runc when it is installed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RuntimeChoice, ShimConnection, ShimStartOptions, StdioSpec } from '../../shim/api';
import { connectShim, isShimAlive, listShimDirs, reapDeadShim, startShim } from '../../supervisor/shims/client';
import { makeBundle, type Bundle, type TeardownHost } from './bundle';
import { cgroupDirsFor, isAlive, mountsUnder, pidsOfBundle, removeCgroupTree } from './host';
import type { OciSpec } from './oci';
import { runcPath, runtimePath } from './runtime';
import { waitFor } from './wait';

const repoRoot = path.resolve(__dirname, '..', '..');

/** The built shim (tests under ts-node use the bundle, as tsrund does). */
export const shimBinary = path.resolve(process.env['TSRUN_SHIM'] ?? path.join(repoRoot, 'bin', 'tsrun-shim'));

const ALL_RUNTIMES: ReadonlyArray<{ name: string; choice: RuntimeChoice }> = [
  { name: 'library', choice: { kind: 'library' } },
  { name: 'tsrun', choice: { kind: 'binary', path: runtimePath } },
  ...(runcPath ? [{ name: 'runc', choice: { kind: 'binary' as const, path: runcPath } }] : []),
];

/** Runtime choices to run each test against ($SHIM_RUNTIMES=library,tsrun,runc narrows them). */
export const RUNTIMES: ReadonlyArray<{ name: string; choice: RuntimeChoice }> = ALL_RUNTIMES.filter((r) => !process.env['SHIM_RUNTIMES'] || process.env['SHIM_RUNTIMES'].split(',').includes(r.name));

/** Client-side FIFOs of one process, opened like ctr: stdout/stderr for reading, stdin for writing. */
export interface Fifos {
  readonly stdio: StdioSpec;
  out(): string;
  err(): string;
  /** Both readers saw EOF (the shim closed its ends). */
  ended: Promise<void>;
  /** Open the stdin writer (after create/exec registered it). */
  openStdin(): net.Socket;
}

/** One test's rig. */
export interface ShimRig {
  readonly stateRoot: string;
  readonly ns: string;
  readonly bundle: Bundle;
  /** A new container id (also its cgroup name). */
  newId(): string;
  /** Spec bytes for args, with the rig's rootfs and a cgroupsPath of /<id>. */
  spec(id: string, args: readonly string[], patch?: (s: OciSpec) => void): Uint8Array;
  fifos(name: string, opts?: { terminal?: boolean; stdin?: boolean }): Fifos;
  start(id: string, runtime: RuntimeChoice, args: readonly string[], more?: Partial<ShimStartOptions> & { patch?: (s: OciSpec) => void }): Promise<ShimConnection>;
  dir(id: string): string;
}

function mkfifo(p: string): void {
  const r = spawnSync('mkfifo', ['-m', '0600', p]);
  if (r.status !== 0) throw new Error(`mkfifo ${p}: ${r.stderr.toString()}`);
}

function reader(p: string): { text: () => string; ended: Promise<void> } {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const s = new net.Socket({ fd, readable: true, writable: false });
  let text = '';
  s.on('data', (b: Buffer) => (text += b.toString()));
  s.on('error', () => undefined);
  const ended = new Promise<void>((r) => {
    s.on('end', r);
    s.on('close', r);
  });
  return { text: () => text, ended };
}

/** Make a rig; its teardown removes everything it made. */
export function shimRig(t: TeardownHost & { comment?: (...a: unknown[]) => void }): ShimRig {
  const stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-shim-'));
  const fifoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-fifo-'));
  const ids: string[] = [];
  const conns: ShimConnection[] = [];
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    for (const c of conns) c.close();
    const leaks: string[] = [];
    for (const e of listShimDirs(stateRoot)) {
      if (isShimAlive(e.shimPid, e.dir)) {
        try {
          const c = await connectShim(e.dir);
          await c.kill(9, { all: true }).catch(() => undefined);
          await c.wait().catch(() => undefined);
          await c.delete();
          c.close();
        } catch {
          // A shim that answered the test's own Delete is removing its files and exiting: no
          // socket to connect to, or one that refuses. Give it the time; SIGKILL only a stuck one.
          if (!(await waitFor(() => !isShimAlive(e.shimPid, e.dir), 5000))) {
            try {
              process.kill(e.shimPid!, 'SIGKILL');
            } catch {
              // gone
            }
          }
        }
        await waitFor(() => !isShimAlive(e.shimPid, e.dir), 5000);
      }
      if (fs.existsSync(e.dir)) {
        leaks.push(`shim dir ${e.dir} left`);
        await reapDeadShim(e.dir).catch((err: Error) => leaks.push(`reap ${e.dir}: ${err.message}`));
      }
    }
    await waitFor(() => pidsOfBundle(bundle.rootfs, bundle.sandbox).length === 0, 3000);
    for (const id of ids) {
      for (const d of cgroupDirsFor(id)) {
        await waitFor(() => {
          removeCgroupTree(d);
          return !fs.existsSync(d);
        }, 3000);
        if (fs.existsSync(d)) leaks.push(`cgroup ${d} left`);
      }
    }
    if (mountsUnder(stateRoot).length > 0) leaks.push(`mounts under ${stateRoot}`);
    else fs.rmSync(stateRoot, { recursive: true, force: true });
    fs.rmSync(fifoDir, { recursive: true, force: true });
    if (leaks.length > 0) throw new Error(`shim test left: ${leaks.join('; ')}`);
  });
  const bundle = makeBundle(t);
  const rig: ShimRig = {
    stateRoot,
    ns: 'default',
    bundle,
    newId() {
      const id = bundle.newId();
      ids.push(id);
      return id;
    },
    dir: (id) => path.join(stateRoot, 'default', id),
    spec(id, args, patch) {
      const s = bundle.spec();
      s.process.args = [...args];
      s.root = { path: bundle.rootfs, readonly: true };
      s.linux = { ...(s.linux ?? {}), cgroupsPath: `/${id}` } as OciSpec['linux'];
      patch?.(s);
      return Buffer.from(JSON.stringify(s));
    },
    fifos(name, opts = {}) {
      const d = fs.mkdtempSync(path.join(fifoDir, `${name}-`));
      const p = (k: string) => path.join(d, `${name}-${k}`);
      const wantStdin = opts.stdin === true;
      for (const k of [...(wantStdin ? ['stdin'] : []), 'stdout', ...(opts.terminal ? [] : ['stderr'])]) mkfifo(p(k));
      const out = reader(p('stdout'));
      const err = opts.terminal ? { text: () => '', ended: Promise.resolve() } : reader(p('stderr'));
      return {
        stdio: { stdin: wantStdin ? p('stdin') : '', stdout: p('stdout'), stderr: opts.terminal ? '' : p('stderr'), terminal: opts.terminal === true },
        out: out.text,
        err: err.text,
        ended: Promise.all([out.ended, err.ended]).then(() => undefined),
        openStdin() {
          const fd = fs.openSync(p('stdin'), fs.constants.O_WRONLY);
          const s = new net.Socket({ fd, readable: false, writable: true });
          s.on('error', () => undefined);
          sockets.push(s);
          return s;
        },
      };
    },
    async start(id, runtime, args, more = {}) {
      const { patch, ...rest } = more;
      const c = await startShim({
        stateRoot,
        namespace: 'default',
        id,
        spec: rig.spec(id, args, patch),
        runtime,
        stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
        shimBinary,
        ...rest,
      });
      conns.push(c);
      return c;
    },
  };
  return rig;
}

/** Whether anything of container id is left: cgroups, live pids. */
export function containerLeftovers(id: string, pids: readonly number[]): string[] {
  return [...cgroupDirsFor(id).map((d) => `cgroup ${d}`), ...pids.filter(isAlive).map((p) => `process ${p}`)];
}
