/*
 * tsrund's side of the native tsrun-shim (shim/native/, docs/native-shim.md): a ShimDriver whose
 * ShimConnection keeps the task logic in tsrund and leaves the C shim only what must outlive it.
 *
 *   startShim  ─ prepareShimDir (as the Node shim's) + native-shim.json ─ spawn build/tsrun-shim <dir>
 *              (argv0 tsrun-shim, setsid, fd 3 = readiness pipe) ─ "ok\n" ─ connect
 *   create     ─ SPAWN init: the shim runs `<runtime> create …` with the process's stdio
 *   start      ─ init: `<runtime> start` from tsrund (async); exec: SPAWN `<runtime> exec --detach …`
 *   kill       ─ init: `<runtime> kill [--all]`; exec: SIGNAL (the shim is its parent: no pid reuse)
 *   pause, resume, pids, stats, update, delete ─ the runtime binary from tsrund (async)
 *   exits      ─ EXIT events; those that happened while nobody listened come after SUBSCRIBE
 *   OOM kills  ─ OOM_WATCH init's memory cgroup once init runs; the shim watches it (eventfd, inotify)
 *              and sends OOM events, before init's EXIT, kept like exits while nobody listens
 *
 * Directories of the Node shim (no native-shim.json) are handed to the Node shim's driver, so a
 * tsrund switched between the two re-adopts what the other one started.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { TsrunError, wrapSystemError, type ErrorCode } from '../../spec/errors';
import type { ProcessExit, ProcessState, ProcessStatus, RuntimeChoice, ShimConnection, ShimDirEntry, ShimEvent, ShimStartOptions, StdioSpec } from '../../shim/api';
import { memoryCgroupDirs } from '../../runtime/cgroups/oom';
import { binaryRuntime, lastLogError, codeForRuntimeMessage } from '../../shim/runtime/binary';
import { libraryRuntime } from '../../shim/runtime/library';
import { createContainerRemote, requestWithFds, spawnError, startExecRemote } from '../../runtime/container/remote-create';
import { parseProcess } from '../../spec';
import type { Runtime } from '../../shim/runtime/types';
import { FILES, nowRfc3339Nano, readShimPid, runtimeRootFor, writeAtomic, type ShimOptions } from '../../shim/state';
import { withSocketPath } from '../../shim/sockpath';
import * as nodeShim from './client';
import { startDetached } from '../../shim/detached';
import type { Logger } from '../log';

/** The file that marks a directory as the native shim's, and what tsrund needs to drive it again. */
export const NATIVE_MARKER = 'native-shim.json';

interface NativeDirInfo {
  /** the OCI runtime binary, absolute (bin/tsrun for the library) */
  readonly runtimePath: string;
  /**
   * runtime "library": tsrund builds the plan and the shim spawns init from it (SPAWN_PLAN), and
   * tsrund drives the container with the runtime library in its own process; bin/tsrun is kept
   * for what must not block tsrund (poststart and poststop hooks) and for a dead shim's clean-up.
   */
  readonly library?: boolean;
  readonly runtimeRoot: string;
  readonly systemdCgroup: boolean;
}

const CODES: ReadonlySet<string> = new Set(['NotFound', 'AlreadyExists', 'InvalidArgument', 'FailedPrecondition', 'PermissionDenied', 'Unavailable', 'Internal']);
const START_TIMEOUT_MS = 30_000;
const MAX_FRAME = 65536;

/* Frame kinds, types and field tags: shim/native/proto.h. */
const KIND = { request: 1, response: 2, event: 3 } as const;
const TYPE = { hello: 1, subscribe: 2, spawn: 3, signal: 4, resize: 5, closeStdin: 6, state: 7, forget: 8, shutdown: 9, spawnPlan: 10, adopt: 11, oomWatch: 12, exit: 20, oom: 21 } as const;
const TAG = {
  name: 1, arg: 2, pidfile: 3, stdin: 4, stdout: 5, stderr: 6, terminal: 7, console: 8, logPath: 9, logMax: 10, logFiles: 11,
  signal: 12, width: 13, height: 14, pid: 15, status: 16, time: 17, error: 18, state: 19, proc: 20, version: 21, plan: 22, fds: 23, dir: 24,
} as const;
const U32_TAGS: ReadonlySet<number> = new Set([TAG.terminal, TAG.logFiles, TAG.signal, TAG.width, TAG.height, TAG.pid, TAG.fds]);
/** SPAWN_PLAN: where the shim puts the fds a plan names (TSH_PLAN_FD_BASE in proto.h). */
const PLAN_FD_BASE = 1000;

type Field = readonly [tag: number, value: string | number | bigint];

/** Where the driver logs what it can live without (an OOM watch the shim could not set up); tsrund's logger. */
let driverLog: Pick<Logger, 'debug'> | undefined;
export function setNativeShimLogger(log: Pick<Logger, 'debug'> | undefined): void {
  driverLog = log;
}

/** The memory cgroup directory of pid that counts OOM kills (v1 memory hierarchy first, then v2); undefined if none. */
function oomCgroupDir(pid: number): string | undefined {
  let dirs: string[];
  try {
    dirs = memoryCgroupDirs(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined; // init is gone already: its exit is reported without an OOM check
  }
  return dirs.find((d) => fs.existsSync(path.join(d, 'memory.oom_control')) || fs.existsSync(path.join(d, 'memory.events')));
}

/** One request frame (length prefix included). */
export function encodeRequest(id: number, type: number, fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(10);
  head.writeUInt32BE(id, 4);
  head[8] = KIND.request;
  head[9] = type;
  parts.push(head);
  for (const [tag, v] of fields) {
    let b: Buffer;
    if (typeof v === 'string') b = Buffer.from(v, 'utf8');
    else if (typeof v === 'bigint' || !U32_TAGS.has(tag)) {
      b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(v));
    } else {
      b = Buffer.alloc(4);
      b.writeUInt32BE(v);
    }
    if (b.length > 0xffff) throw new TsrunError('InvalidArgument', `native shim request: field ${tag} is ${b.length} bytes (at most 65535)`);
    const h = Buffer.alloc(3);
    h[0] = tag;
    h.writeUInt16BE(b.length, 1);
    parts.push(h, b);
  }
  const frame = Buffer.concat(parts);
  if (frame.length - 4 > MAX_FRAME) throw new TsrunError('InvalidArgument', `native shim request of ${frame.length - 4} bytes: at most ${MAX_FRAME}`);
  frame.writeUInt32BE(frame.length - 4, 0);
  return frame;
}

/** Fields of a body (or a nested PROC field) as tag → values. */
function fieldsOf(b: Buffer, from: number): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  let pos = from;
  while (pos + 3 <= b.length) {
    const tag = b[pos]!;
    const n = b.readUInt16BE(pos + 1);
    if (pos + 3 + n > b.length) throw new TsrunError('Internal', `native shim frame: field ${tag} runs past the frame`);
    const v = b.subarray(pos + 3, pos + 3 + n);
    const list = out.get(tag);
    if (list) list.push(v);
    else out.set(tag, [v]);
    pos += 3 + n;
  }
  if (pos !== b.length) throw new TsrunError('Internal', 'native shim frame: truncated field');
  return out;
}

const str = (f: Map<number, Buffer[]>, tag: number): string | undefined => f.get(tag)?.[0]?.toString('utf8');
const u32 = (f: Map<number, Buffer[]>, tag: number): number | undefined => {
  const v = f.get(tag)?.[0];
  return v?.length === 4 ? v.readUInt32BE(0) : undefined;
};

interface Frame {
  readonly id: number;
  readonly kind: number;
  readonly type: number;
  readonly fields: Map<number, Buffer[]>;
}

function decodeBody(b: Buffer): Frame {
  if (b.length < 6) throw new TsrunError('Internal', 'native shim frame shorter than its header');
  return { id: b.readUInt32BE(0), kind: b[4]!, type: b[5]!, fields: fieldsOf(b, 6) };
}

/** A shim's error text "Code: message" as a TsrunError. */
function shimError(text: string): TsrunError {
  const m = /^([A-Za-z]+): (.*)$/s.exec(text);
  if (m && CODES.has(m[1]!)) return new TsrunError(m[1] as ErrorCode, m[2]!);
  return new TsrunError('Internal', text);
}

/** Where the native shim executable is: $TSRUN_NATIVE_SHIM, else build/tsrun-shim near this code. */
export function locateNativeShim(): string {
  const env = process.env['TSRUN_NATIVE_SHIM'];
  if (env) return path.resolve(env);
  const main = require.main?.filename ?? process.argv[1];
  const candidates = [
    ...(main ? [path.resolve(path.dirname(main), '..', 'build', 'tsrun-shim'), path.resolve(path.dirname(main), '..', 'lib', 'tsrun', 'build', 'tsrun-shim')] : []),
    path.resolve(__dirname, '..', '..', 'build', 'tsrun-shim'),
    path.resolve(process.cwd(), 'build', 'tsrun-shim'),
  ];
  const found = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
  if (!found) throw new TsrunError('NotFound', `native tsrun-shim not found (looked at ${candidates.join(', ')}): run 'make build/tsrun-shim' or set TSRUN_NATIVE_SHIM`);
  return found;
}

/** The runtime binary a choice names, as an absolute path (the shim execs it without a PATH search). */
export function resolveRuntimeBinary(choice: RuntimeChoice): string {
  if (choice.kind === 'library') {
    // the runtime library's CLI: the same plan executor, run as a binary (docs/native-shim.md §Runtimes)
    const env = process.env['TSRUN_BINARY'];
    const main = require.main?.filename ?? process.argv[1];
    const candidates = [
      ...(env ? [path.resolve(env)] : []),
      ...(main ? [path.join(path.dirname(main), 'tsrun'), path.resolve(path.dirname(main), '..', 'bin', 'tsrun')] : []),
      path.resolve(__dirname, '..', '..', 'bin', 'tsrun'),
      path.resolve(process.cwd(), 'bin', 'tsrun'),
    ];
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) throw new TsrunError('NotFound', `runtime 'library' under the native shim needs bin/tsrun (looked at ${candidates.join(', ')}); set TSRUN_BINARY`);
    return found;
  }
  if (choice.path.includes('/')) return path.resolve(choice.path);
  for (const d of (process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (d === '') continue;
    const p = path.join(d, choice.path);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  throw new TsrunError('NotFound', `runtime ${JSON.stringify(choice.path)}: not found in PATH`);
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw wrapSystemError(`read ${file}`, err);
  }
}

/** Whether the bundle's config has hooks the library would run synchronously after create. */
function hasBlockingHooks(dir: string): boolean {
  try {
    const hooks = (readJson<{ hooks?: { poststart?: unknown[]; poststop?: unknown[] } }>(path.join(dir, 'config.json')).hooks) ?? {};
    return (hooks.poststart?.length ?? 0) > 0 || (hooks.poststop?.length ?? 0) > 0;
  } catch {
    return true;
  }
}

/** Whether dir was started for the native shim. */
export function isNativeDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, NATIVE_MARKER));
}

/** A spawner of plans through the shim's SPAWN_PLAN (planSpawner). */
type PlanSpawner = { spawn: (plan: Buffer, fds: readonly number[]) => Promise<{ pid: number; syncFd: number }>; consolePath: string; spawned: () => boolean };

/**
 * The spawn step of the library's create and exec in tsrund (runtime/container/remote-create.ts):
 * the plan goes to the shim as SPAWN_PLAN with the process's stdio, and the shim answers with
 * the spawned pid and the sync socket. `spawned` says whether the shim now has an entry for it.
 * `gate`: what must hold before the plan is sent (the shim up and connected, for a create begun
 * while the shim starts).
 */
function planSpawner(dir: string, name: string, stdio: StdioSpec, log?: ShimOptions['log'], gate?: Promise<void>): PlanSpawner {
  const sockPath = path.join(dir, FILES.sock);
  const consolePath = stdio.terminal ? path.join(dir, `pty-${name}.sock`) : '';
  const planFile = `plan-${name}.bin`;
  let spawned = false;
  const spawnViaShim = async (plan: Buffer, fds: readonly number[]): Promise<{ pid: number; syncFd: number }> => {
    if (gate !== undefined) await gate;
    writeAtomic(path.join(dir, planFile), plan, 0o600);
    const fields: Field[] = [[TAG.name, name], [TAG.plan, planFile], [TAG.fds, fds.length], [TAG.stdin, stdio.stdin], [TAG.stdout, stdio.stdout], [TAG.stderr, stdio.terminal ? '' : stdio.stderr]];
    if (stdio.terminal) fields.push([TAG.terminal, 1], [TAG.console, consolePath]);
    if (log) fields.push([TAG.logPath, log.path], [TAG.logMax, BigInt(log.maxSize)], [TAG.logFiles, Math.max(1, log.maxFiles)]);
    try {
      const { answer, fd } = await withSocketPath(sockPath, (usable) => requestWithFds(usable, encodeRequest(0, TYPE.spawnPlan, fields), fds));
      const f = decodeBody(answer.subarray(4, 4 + answer.readUInt32BE(0)));
      const e = str(f.fields, TAG.error);
      if (e !== undefined || fd < 0) {
        if (fd >= 0) fs.closeSync(fd);
        throw e === undefined ? new TsrunError('Internal', 'native shim: spawn plan answered without the sync socket') : spawnError(shimError(e), u32(f.fields, TAG.status));
      }
      spawned = true;
      return { pid: u32(f.fields, TAG.pid) ?? 0, syncFd: fd };
    } finally {
      fs.rmSync(path.join(dir, planFile), { force: true });
    }
  };
  return { spawn: spawnViaShim, consolePath, spawned: () => spawned };
}

/** The library's create of init, begun before the connection to the shim exists (beginCreate). */
interface EarlyCreate {
  readonly s: PlanSpawner;
  /** init's pid once the sync loop saw CREATED; rejected as the create failed (it undid itself) */
  readonly pid: Promise<number>;
}

/**
 * The runtime library's create of init (state directory, cgroup, plan; then the spawn through
 * the shim and the sync loop), its spawn step held until `gate`. durableState false: the
 * runtime root is inside the shim directory, volatile state written without fsync like the
 * shim's own files (nothing of it outlives a reboot).
 */
function beginCreate(dir: string, options: ShimOptions, info: NativeDirInfo, gate?: Promise<void>): EarlyCreate {
  const s = planSpawner(dir, 'init', options.stdio, options.log, gate);
  const pid = createContainerRemote(
    { root: info.runtimeRoot, id: options.id, bundle: dir, pidFile: path.join(dir, 'init.pid'), noPivot: options.noPivot, noNewKeyring: options.noNewKeyring, preserveFds: 0, systemdCgroup: false, consoleSocket: s.consolePath || undefined, detached: true, remoteFdBase: PLAN_FD_BASE, durableState: false },
    s.spawn,
  ).then((st) => st.pid);
  // awaited by the connection's create(); an early failure must not count as unhandled meanwhile
  pid.catch(() => undefined);
  return { s, pid };
}

/** Start the native shim for one container and connect to it. */
export async function startNativeShim(opts: ShimStartOptions): Promise<ShimConnection> {
  const binary = locateNativeShim();
  const runtimePath = resolveRuntimeBinary(opts.runtime);
  const dir = nodeShim.prepareShimDir(opts);
  try {
    const info: NativeDirInfo = {
      runtimePath,
      library: opts.runtime.kind === 'library',
      runtimeRoot: runtimeRootFor(dir, opts.runtime),
      systemdCgroup: opts.runtime.kind === 'binary' && opts.runtime.systemdCgroup === true,
    };
    writeAtomic(path.join(dir, NATIVE_MARKER), JSON.stringify(info), 0o600);
    // The shim boots in its own process meanwhile: the library's create of init does its part
    // in tsrund (state directory, cgroup, plan) now, and sends the plan once the shim is connected.
    const answer = startDetached(binary, 'tsrun-shim', dir, START_TIMEOUT_MS, `start native shim ${binary}`);
    let open = (): void => undefined;
    let shut = (_e: unknown): void => undefined;
    const gate = new Promise<void>((resolve, reject) => {
      open = resolve;
      shut = reject;
    });
    gate.catch(() => undefined);
    let early: EarlyCreate | undefined;
    try {
      if (info.library) early = beginCreate(dir, readJson<ShimOptions>(path.join(dir, FILES.options)), info, gate);
      const failed = nodeShim.shimAnswerError(await answer, `start native shim for ${opts.namespace}/${opts.id}`);
      if (failed) throw failed;
      const conn = await connectNativeShim(dir, true, early);
      open();
      return conn;
    } catch (err) {
      // nothing was spawned: the create undoes what it made (state directory, cgroup) and fails
      shut(err);
      if (early !== undefined) await early.pid.catch(() => undefined);
      // a shim still starting must have written its pid before abandonShimDir looks for it
      await answer.catch(() => undefined);
      throw err;
    }
  } catch (err) {
    nodeShim.abandonShimDir(dir);
    throw err;
  }
}

interface LocalProc {
  readonly execId?: string;
  pid: number;
  status: ProcessStatus;
  readonly stdio: StdioSpec;
  /** an exec registered but not started: its OCI process JSON */
  processJson?: Uint8Array;
  exit?: ProcessExit;
  waiters: Array<(e: ProcessExit) => void>;
}

const nameOf = (execId: string | undefined): string => execId ?? 'init';

/** Connect to a native shim (also to re-adopt it after a tsrund restart; `fresh`: startNativeShim's own, nothing to re-adopt). */
export async function connectNativeShim(shimDir: string, fresh = false, begun?: EarlyCreate): Promise<ShimConnection> {
  let early = begun;
  const dir = path.resolve(shimDir);
  const options = readJson<ShimOptions>(path.join(dir, FILES.options));
  const info = readJson<NativeDirInfo>(path.join(dir, NATIVE_MARKER));
  const binRt: Runtime = binaryRuntime({
    id: options.id,
    bundle: dir,
    root: info.runtimeRoot,
    noPivot: options.noPivot,
    noNewKeyring: options.noNewKeyring,
    path: info.runtimePath,
    systemdCgroup: info.systemdCgroup,
  });
  // The library in tsrund's process, unless the config has hooks it would run synchronously
  // (poststart in start, poststop in delete): those go through bin/tsrun so no hook blocks tsrund.
  const rt: Runtime = info.library === true && !hasBlockingHooks(dir)
    ? libraryRuntime({ id: options.id, bundle: dir, root: info.runtimeRoot, noPivot: options.noPivot, noNewKeyring: options.noNewKeyring })
    : binRt;
  const globals = ['--root', info.runtimeRoot, '--log', path.join(dir, FILES.runtimeLog), '--log-format', 'json', ...(info.systemdCgroup ? ['--systemd-cgroup'] : [])];
  const sockPath = path.join(dir, FILES.sock);
  const sock = await withSocketPath(sockPath, (usable) => new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection(usable);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(new TsrunError(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'NotFound' : 'Unavailable', `connect to native shim ${sockPath}: ${e.message}`, { cause: e })),
    );
  }));

  let nextId = 1;
  let closed = false;
  let deleted = false;
  const pending = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  const eventListeners: Array<(e: ShimEvent) => void> = [];
  const closeListeners: Array<() => void> = [];
  const queued: ShimEvent[] = [];
  const procs = new Map<string, LocalProc>();
  procs.set('init', { pid: 0, status: 'created', stdio: options.stdio, waiters: [] });
  let buf: Buffer = Buffer.alloc(0);
  /**
   * OOM kills of init's memory cgroup: the shim watches them (OOM_WATCH) and sends OOM events.
   * Awaited before init is started, so the shim's count starts before the program runs. A shim
   * that already watches init (re-adoption) keeps its watch and count. Never rejects.
   */
  const watchInit = async (pid: number): Promise<void> => {
    const cg = oomCgroupDir(pid);
    if (cg === undefined) {
      driverLog?.debug('no memory cgroup to watch for OOM kills', { id: options.id, pid });
      return;
    }
    await call(TYPE.oomWatch, [[TAG.name, 'init'], [TAG.dir, cg]]).then(() => undefined, (e: unknown) => {
      driverLog?.debug('native shim: no OOM watch', { id: options.id, dir: cg, error: e instanceof Error ? e.message : String(e) });
    });
  };

  const gone = (): TsrunError => (deleted ? new TsrunError('NotFound', 'cannot use a deleted task: not found') : new TsrunError('Unavailable', `native shim ${dir}: connection closed`));
  const deliver = (e: ShimEvent): void => {
    if (eventListeners.length === 0) queued.push(e);
    else for (const l of eventListeners) l(e);
  };
  const onExit = (name: string, exit: ProcessExit): void => {
    const p = procs.get(name);
    if (p === undefined || p.exit !== undefined) return;
    p.exit = exit;
    p.status = 'stopped';
    for (const w of p.waiters.splice(0)) w(exit);
    deliver({ type: 'exit', exit });
  };
  const onClosed = (): void => {
    if (closed) return;
    closed = true;
    for (const p of pending.values()) p.reject(gone());
    pending.clear();
    for (const l of closeListeners) l();
  };
  sock.on('data', (data: Buffer) => {
    buf = buf.length === 0 ? data : Buffer.concat([buf, data]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (n > MAX_FRAME) {
        sock.destroy();
        return;
      }
      if (buf.length < 4 + n) break;
      let f: Frame;
      try {
        f = decodeBody(buf.subarray(4, 4 + n));
      } catch {
        sock.destroy();
        return;
      }
      buf = buf.subarray(4 + n);
      if (f.kind === KIND.event && f.type === TYPE.exit) {
        const name = str(f.fields, TAG.name) ?? '';
        onExit(name, {
          ...(name === 'init' ? {} : { execId: name }),
          pid: u32(f.fields, TAG.pid) ?? 0,
          exitStatus: u32(f.fields, TAG.status) ?? 0,
          exitedAt: str(f.fields, TAG.time) ?? nowRfc3339Nano(),
        });
      } else if (f.kind === KIND.event && f.type === TYPE.oom) {
        // the shim sends init's OOM kill before init's EXIT (also those kept while nobody listened)
        deliver({ type: 'oom' });
      } else if (f.kind === KIND.response) {
        const p = pending.get(f.id);
        pending.delete(f.id);
        p?.resolve(f);
      }
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', onClosed);

  const call = (type: number, fields: readonly Field[] = []): Promise<Frame> => {
    if (closed) return Promise.reject(gone());
    const id = nextId++;
    return new Promise<Frame>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      sock.write(encodeRequest(id, type, fields));
    }).then((f) => {
      const e = str(f.fields, TAG.error);
      if (e !== undefined) throw shimError(e);
      return f;
    });
  };

  /** Run a runtime command through the shim (create, exec): the process becomes the shim's child. */
  const spawnThrough = async (name: string, verb: string, args: readonly string[], stdio: StdioSpec, log?: ShimOptions['log']): Promise<number> => {
    const logFile = path.join(dir, FILES.runtimeLog);
    let logOffset = 0;
    try {
      logOffset = fs.statSync(logFile).size;
    } catch {
      // no log yet
    }
    const pidFile = path.join(dir, `${name}.pid`);
    const consolePath = stdio.terminal ? path.join(dir, `pty-${name}.sock`) : '';
    const argv = [info.runtimePath, ...globals, verb, ...(verb === 'create' ? ['--bundle', dir] : []), ...args, '--pid-file', pidFile, ...(consolePath ? ['--console-socket', consolePath] : []), options.id];
    const fields: Field[] = [[TAG.name, name], ...argv.map((a): Field => [TAG.arg, a]), [TAG.pidfile, pidFile], [TAG.stdin, stdio.stdin], [TAG.stdout, stdio.stdout], [TAG.stderr, stdio.terminal ? '' : stdio.stderr]];
    if (stdio.terminal) fields.push([TAG.terminal, 1], [TAG.console, consolePath]);
    if (log) fields.push([TAG.logPath, log.path], [TAG.logMax, BigInt(log.maxSize)], [TAG.logFiles, Math.max(1, log.maxFiles)]);
    try {
      return u32((await call(TYPE.spawn, fields)).fields, TAG.pid) ?? 0;
    } catch (err) {
      // the runtime's own words, as the Node shim's binary runtime reports them
      let logged: string | undefined;
      try {
        const all = fs.readFileSync(logFile);
        logged = lastLogError(all.subarray(logOffset).toString('utf8'));
      } catch {
        // no log
      }
      if (logged !== undefined) throw new TsrunError(codeForRuntimeMessage(logged), `${path.basename(info.runtimePath)} ${verb} ${options.id}: ${logged}`, { cause: err });
      throw err;
    }
  };

  /**
   * The library's create (or exec) with its steps awaited and the process spawned by the shim;
   * ADOPT gives the shim the pid once the sync loop saw CREATED. A failure kills what was spawned
   * and leaves no entry in the shim (FORGET); `undo` removes what succeeded before ADOPT failed.
   */
  const fromPlan = async (name: string, run: (s: PlanSpawner) => Promise<number>, s: PlanSpawner, undo: () => Promise<void>): Promise<number> => {
    let pid: number;
    try {
      pid = await run(s);
    } catch (err) {
      if (s.spawned()) await call(TYPE.forget, [[TAG.name, name]]).catch(() => undefined);
      throw err;
    }
    try {
      await call(TYPE.adopt, [[TAG.name, name], [TAG.pid, pid]]);
    } catch (err) {
      await undo().catch(() => undefined);
      await call(TYPE.forget, [[TAG.name, name]]).catch(() => undefined);
      throw err;
    }
    return pid;
  };

  /**
   * create for the library: the runtime's state directory, cgroup and sync loop here, init the
   * shim's clone (begun by startNativeShim while the shim started, or begun now).
   */
  const createFromPlan = (): Promise<number> => {
    const c = early ?? beginCreate(dir, options, info);
    early = undefined;
    return fromPlan('init', () => c.pid, c.s, () => rt.delete(true));
  };

  /** exec for the library: the exec plan spawned by the shim. */
  const execFromPlan = (execId: string, processJson: Uint8Array, stdio: StdioSpec): Promise<number> =>
    fromPlan(
      execId,
      async (s) =>
        (
          await startExecRemote(
            { root: info.runtimeRoot, id: options.id, process: parseProcess(Buffer.from(processJson).toString('utf8'), `exec ${execId} process`), detach: true, pidFile: path.join(dir, `${execId}.pid`), preserveFds: 0, consoleSocket: s.consolePath || undefined, remoteFdBase: PLAN_FD_BASE },
            s.spawn,
          )
        ).pid,
      planSpawner(dir, execId, stdio),
      async () => {
        // the process started but the shim cannot track it: it must not run untracked
        const pid = Number(fs.readFileSync(path.join(dir, `${execId}.pid`), 'utf8'));
        if (pid > 0) process.kill(pid, 'SIGKILL');
      },
    );

  const get = (execId: string | undefined): LocalProc => {
    const p = procs.get(nameOf(execId));
    if (p === undefined) throw new TsrunError('NotFound', `process ${execId ?? 'init'} does not exist: not found`);
    return p;
  };
  const stateOf = (p: LocalProc): ProcessState => ({
    ...(p.execId !== undefined ? { execId: p.execId } : {}),
    pid: p.pid,
    status: p.status,
    stdio: p.stdio,
    ...(p.exit ? { exitStatus: p.exit.exitStatus, exitedAt: p.exit.exitedAt } : {}),
  });
  let shimPid = 0;
  try {
    // Both at once: one round trip (answers come back in order). Undelivered exits follow SUBSCRIBE's answer.
    const [hello] = await Promise.all([call(TYPE.hello), call(TYPE.subscribe)]);
    shimPid = u32(hello.fields, TAG.pid) ?? 0;
    // what the shim knows (re-adoption): processes it runs and exits already reported; a shim
    // just started knows nothing yet, and the round trip is part of every container's start
    const st = fresh ? undefined : await call(TYPE.state);
    for (const raw of st?.fields.get(TAG.proc) ?? []) {
      const f = fieldsOf(raw, 0);
      const name = str(f, TAG.name) ?? '';
      const execId = name === 'init' ? undefined : name;
      const state = u32(f, TAG.state);
      const pid = u32(f, TAG.pid) ?? 0;
      const known = procs.get(name);
      const p: LocalProc = known ?? { ...(execId !== undefined ? { execId } : {}), pid, status: 'running', stdio: options.stdio, waiters: [] };
      p.pid = pid;
      if (state === 1 && name === 'init' && info.library === true) {
        // A create from a plan that a tsrund before this one did not finish: its init saw the
        // sync socket close and exits. The task is stopped; delete removes what create left.
        await call(TYPE.forget, [[TAG.name, 'init']]).catch(() => undefined);
        p.exit = { pid, exitStatus: 137, exitedAt: nowRfc3339Nano() };
        p.status = 'stopped';
      } else if (state === 3 && p.exit === undefined) {
        p.exit = { ...(execId !== undefined ? { execId } : {}), pid, exitStatus: u32(f, TAG.status) ?? 0, exitedAt: str(f, TAG.time) ?? nowRfc3339Nano() };
        p.status = 'stopped';
      } else if (state === 2 && p.exit === undefined) {
        // init is "created" until started: the runtime knows which
        p.status = name === 'init' ? await runtimeStatus() : 'running';
      }
      procs.set(name, p);
    }
    const init = procs.get('init');
    if (init !== undefined && init.exit === undefined && init.pid > 0) await watchInit(init.pid);
  } catch (err) {
    sock.destroy();
    throw err;
  }

  /** init's status as the runtime reports it (created until started); on re-adoption only. */
  async function runtimeStatus(): Promise<ProcessStatus> {
    const out = await new Promise<string>((resolve) => {
      const c = spawn(info.runtimePath, ['--root', info.runtimeRoot, 'state', options.id], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      c.stdout.on('data', (b: Buffer) => (text += b.toString()));
      c.on('close', () => resolve(text));
      c.on('error', () => resolve(''));
    });
    try {
      const s = (JSON.parse(out) as { status?: string }).status;
      if (s === 'created' || s === 'running' || s === 'paused' || s === 'stopped') return s;
    } catch {
      // unknown
    }
    return 'running';
  }

  const removeDir = (): void => {
    // plan-<name>.bin: a tsrund killed during SPAWN_PLAN left it (its re-adoption discards that create)
    for (const f of fs.readdirSync(dir)) {
      if (f === FILES.runtimeRoot || /^(config|options|native-shim|log)\.json$|\.pid$|^exec-.*\.json$|^pty-.*\.sock$|^plan-.*\.bin$/.test(f)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    }
    try {
      fs.rmdirSync(dir);
    } catch {
      // something else (tsrund's rootfs mount point) is left: the directory stays
    }
  };

  const conn: ShimConnection = {
    namespace: options.namespace,
    id: options.id,
    dir,
    shimPid,
    async create() {
      const p = get(undefined);
      const pid = info.library === true
        ? await createFromPlan()
        : await spawnThrough('init', 'create', [...(options.noPivot ? ['--no-pivot'] : []), ...(options.noNewKeyring ? ['--no-new-keyring'] : [])], options.stdio, options.log);
      p.pid = pid;
      p.status = 'created';
      await watchInit(pid);
      return { pid };
    },
    async start(execId) {
      const p = get(execId);
      if (p.exit) throw new TsrunError('FailedPrecondition', `process ${nameOf(execId)} has already exited`);
      if (execId === undefined) {
        await rt.start();
        if (p.status === 'created') p.status = 'running';
        return { pid: p.pid };
      }
      if (p.processJson === undefined) throw new TsrunError('FailedPrecondition', `exec ${execId} already started`);
      const procFile = path.join(dir, `exec-${execId}.json`);
      writeAtomic(procFile, p.processJson, 0o600);
      try {
        p.pid = info.library === true ? await execFromPlan(execId, p.processJson, p.stdio) : await spawnThrough(execId, 'exec', ['--process', procFile, '--detach'], p.stdio);
      } finally {
        fs.rmSync(procFile, { force: true });
      }
      delete p.processJson;
      if (p.status === 'created') p.status = 'running';
      deliver({ type: 'exec-started', execId, pid: p.pid });
      return { pid: p.pid };
    },
    wait: (execId) => {
      let p: LocalProc;
      try {
        p = get(execId);
      } catch (e) {
        return Promise.reject(e);
      }
      if (p.exit) return Promise.resolve(p.exit);
      if (closed) return Promise.reject(gone());
      return new Promise((resolve) => p.waiters.push(resolve));
    },
    state: async (execId) => stateOf(get(execId)),
    list: async () => [...procs.values()].map(stateOf),
    async kill(signal, o) {
      const p = get(o?.execId);
      if (o?.execId === undefined) {
        if (p.exit && o?.all !== true) throw new TsrunError('NotFound', 'process already finished: not found');
        await rt.kill(signal, o?.all === true);
        return;
      }
      if (p.exit || p.processJson !== undefined) throw new TsrunError('NotFound', 'process already finished: not found');
      await call(TYPE.signal, [[TAG.name, o.execId], [TAG.signal, signal]]);
    },
    async exec(execId, processJson, stdio) {
      if (procs.has(execId)) throw new TsrunError('AlreadyExists', `exec ${execId} already exists`);
      if (get(undefined).exit) throw new TsrunError('FailedPrecondition', 'container is not running');
      procs.set(execId, { execId, pid: 0, status: 'created', stdio, processJson, waiters: [] });
    },
    async resizePty(width, height, execId) {
      const p = get(execId);
      if (p.exit || !p.stdio.terminal) return;
      await call(TYPE.resize, [[TAG.name, nameOf(execId)], [TAG.width, width], [TAG.height, height]]);
    },
    async closeStdin(execId) {
      get(execId);
      await call(TYPE.closeStdin, [[TAG.name, nameOf(execId)]]);
    },
    async pause() {
      await rt.pause();
      const p = get(undefined);
      if (p.status === 'running') p.status = 'paused';
    },
    async resume() {
      await rt.resume();
      const p = get(undefined);
      if (p.status === 'paused') p.status = 'running';
    },
    async pids() {
      const byPid = new Map([...procs.values()].filter((p) => p.execId !== undefined && p.pid > 0).map((p) => [p.pid, p.execId!]));
      return (await rt.ps()).map((pid) => ({ pid, ...(byPid.has(pid) ? { execId: byPid.get(pid)! } : {}) }));
    },
    stats: () => rt.stats(),
    update: (resourcesJson) => rt.update(Buffer.from(resourcesJson).toString('utf8')),
    async deleteProcess(execId) {
      const p = get(execId);
      if (p.exit === undefined && p.processJson === undefined) throw new TsrunError('FailedPrecondition', `exec ${execId} is still running`);
      if (p.exit !== undefined) await call(TYPE.forget, [[TAG.name, execId]]);
      procs.delete(execId);
      return p.exit ?? { execId, pid: 0, exitStatus: 0, exitedAt: nowRfc3339Nano() };
    },
    async delete() {
      const init = get(undefined);
      let exit = init.exit;
      if (exit === undefined && init.status !== 'created' && init.pid !== 0) throw new TsrunError('FailedPrecondition', `cannot delete running task ${options.id}: failed precondition`);
      if (exit === undefined) {
        // created, never started (or never created): the runtime kills it
        await rt.delete(true).catch((e: unknown) => {
          if (!(e instanceof TsrunError && e.code === 'NotFound')) throw e;
        });
        exit = await Promise.race([
          new Promise<ProcessExit>((resolve) => init.waiters.push(resolve)),
          new Promise<ProcessExit>((resolve) => setTimeout(() => resolve({ pid: init.pid, exitStatus: 137, exitedAt: nowRfc3339Nano() }), 2000).unref()),
        ]);
      } else {
        await rt.delete(false).catch(async (e: unknown) => {
          if (e instanceof TsrunError && e.code === 'NotFound') return;
          await rt.delete(true);
        });
      }
      // The shim removes its own files (shim.sock, shim.pid, exit records) after SHUTDOWN and then
      // exits, which closes this connection: the directory is emptied only after that, or its
      // rmdir could lose the race and leave it. That happens after Delete answered: the caller
      // holds a new task of the same id back until this connection closed (local.ts's
      // `releasing`, which closes it itself after a bound), and a tsrund killed before it finds
      // an unmarked directory at restart, which it discards with the shim (adopt.ts).
      if (closed) throw gone();
      deleted = true;
      closeListeners.unshift(() => {
        try {
          removeDir();
        } catch {
          // already gone
        }
      });
      call(TYPE.shutdown).catch(() => sock.destroy());
      return init.status === 'created' && init.exit === undefined ? { ...exit, exitStatus: 137 } : exit;
    },
    onEvent: (l) => {
      eventListeners.push(l);
      if (queued.length > 0) {
        const q = queued.splice(0);
        queueMicrotask(() => {
          for (const e of q) for (const x of eventListeners) x(e);
        });
      }
    },
    onClose: (l) => {
      if (closed) queueMicrotask(l);
      else closeListeners.push(l);
    },
    close: () => {
      sock.destroy();
      onClosed();
    },
  };
  return conn;
}

/** The native shim is gone: kill what is left of its container, report init's exit, remove the dir. */
export async function reapDeadNativeShim(shimDir: string): Promise<ProcessExit> {
  const dir = path.resolve(shimDir);
  const pid = readShimPid(dir);
  if (nodeShim.isShimAlive(pid, dir)) throw new TsrunError('FailedPrecondition', `native shim ${dir} (pid ${pid}) is still running`);
  const now = nowRfc3339Nano();
  let exit: ProcessExit = { pid: 0, exitStatus: 137, exitedAt: now };
  try {
    const e = readJson<{ pid: number; exitStatus: number; exitedAt: string }>(path.join(dir, 'exit-init.json'));
    exit = { pid: e.pid, exitStatus: e.exitStatus, exitedAt: e.exitedAt };
  } catch {
    // no exit recorded: the container dies with its shim (137)
  }
  try {
    const options = readJson<ShimOptions>(path.join(dir, FILES.options));
    const info = readJson<NativeDirInfo>(path.join(dir, NATIVE_MARKER));
    const rt = binaryRuntime({ id: options.id, bundle: dir, root: info.runtimeRoot, noPivot: false, noNewKeyring: false, path: info.runtimePath, systemdCgroup: info.systemdCgroup });
    await rt.kill(9, true).catch(() => undefined);
    await rt.delete(true).catch((err: unknown) => {
      if (!(err instanceof TsrunError && err.code === 'NotFound')) throw err;
    });
  } catch (err) {
    throw new TsrunError('Internal', `reap dead native shim ${dir}: ${(err as Error).message}`, { cause: err });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return exit;
}

/** The ShimDriver for tsrund's `"shim": "native"`: native shims for new containers, either kind re-adopted. */
export const nativeShimDriver = {
  startShim: startNativeShim,
  connectShim: (dir: string): Promise<ShimConnection> => (isNativeDir(dir) ? connectNativeShim(dir) : nodeShim.connectShim(dir)),
  listShimDirs: (stateRoot: string): ShimDirEntry[] => nodeShim.listShimDirs(stateRoot),
  reapDeadShim: (dir: string): Promise<ProcessExit> => (isNativeDir(dir) ? reapDeadNativeShim(dir) : nodeShim.reapDeadShim(dir)),
};
