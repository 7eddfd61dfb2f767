/*
 * tsrund's side of the shim contract (shim/api.ts): start a shim, connect to one, list the shim
 * directories on disk, and clean up after a shim that died.
 *
 *   startShim ─ mkdir <stateRoot>/<ns>/<id> (exclusive) ─ config.json, options.json
 *             ─ spawn `node tsrun-shim <dir>` detached (setsid), stdio /dev/null, fd 3 = readiness pipe
 *             ─ "ok\n" on fd 3 ─ connectShim(dir)
 *   connectShim ─ connect shim.sock ─ hello (namespace, id, shim pid) ─ subscribe (events; buffered exits)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { TsrunError, wrapSystemError, type ErrorCode } from '../../spec/errors';
import type { ProcessExit, ProcessState, ProcessStatus, ShimConnection, ShimDirEntry, ShimEvent, ShimStartOptions, StdioSpec } from '../../shim/api';
import { decodeFrame, encodeFrame, type WireExit, type WireProcState, type WireRequest, type WireResponse } from '../../shim/protocol/messages';
import { frameBytes, frameReader } from '../../shim/protocol/framing';
import { FILES, nowRfc3339Nano, readShimPid, readShimState, runtimeRootFor, writeAtomic, type ShimOptions } from '../../shim/state';
import { crashPoint } from '../../shim/crash-points';
import { withSocketPath } from '../../shim/sockpath';

const CODES: ReadonlySet<string> = new Set(['NotFound', 'AlreadyExists', 'InvalidArgument', 'FailedPrecondition', 'PermissionDenied', 'Unavailable', 'Internal']);

/** How long startShim waits for the shim to say it is ready. */
const START_TIMEOUT_MS = 30_000;

/** Where the tsrun-shim executable is: the option, $TSRUN_SHIM, else bin/tsrun-shim near this code. */
export function locateShimBinary(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const env = process.env['TSRUN_SHIM'];
  if (env) return path.resolve(env);
  const main = require.main?.filename ?? process.argv[1];
  const candidates = [
    ...(main ? [path.join(path.dirname(main), 'tsrun-shim'), path.resolve(path.dirname(main), '..', 'bin', 'tsrun-shim')] : []),
    path.join(__dirname, 'tsrun-shim'),
    path.resolve(__dirname, '..', '..', 'bin', 'tsrun-shim'),
    path.resolve(process.cwd(), 'bin', 'tsrun-shim'),
  ];
  const found = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
  if (!found) throw new TsrunError('NotFound', `tsrun-shim binary not found (looked at ${candidates.join(', ')}): run 'make bin/tsrun-shim' or set TSRUN_SHIM`);
  return found;
}

/** Make the shim directory <stateRoot>/<ns>/<id> (exclusive) with config.json and options.json; returns it. */
export function prepareShimDir(opts: ShimStartOptions): string {
  for (const [k, v] of [['namespace', opts.namespace], ['id', opts.id]] as const) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v)) throw new TsrunError('InvalidArgument', `start shim: invalid ${k} ${JSON.stringify(v)}`);
  }
  const dir = path.join(path.resolve(opts.stateRoot), opts.namespace, opts.id);
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o711 });
  try {
    fs.mkdirSync(dir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new TsrunError('AlreadyExists', `shim for ${opts.namespace}/${opts.id}: ${dir} already exists`, { cause: err });
    throw wrapSystemError(`make shim dir ${dir}`, err);
  }
  try {
    const options: ShimOptions = {
      namespace: opts.namespace,
      id: opts.id,
      runtime: opts.runtime,
      stdio: opts.stdio,
      ...(opts.log ? { log: opts.log } : {}),
      noPivot: opts.noPivot === true,
      noNewKeyring: opts.noNewKeyring === true,
    };
    writeAtomic(path.join(dir, FILES.config), opts.spec, 0o600);
    writeAtomic(path.join(dir, FILES.options), JSON.stringify(options), 0o600);
    crashPoint('create:shim-dir');
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

/** A shim's "ok" or JSON error line as an error (undefined for ok). */
export function shimAnswerError(answer: string | undefined, what: string): TsrunError | undefined {
  if (answer !== undefined && answer.trim() === 'ok') return undefined;
  let e: { code?: string; message?: string } = {};
  try {
    e = JSON.parse(answer ?? '') as typeof e;
  } catch {
    e = { message: answer?.trim() || 'exited before it was ready' };
  }
  return new TsrunError(CODES.has(e.code ?? '') ? (e.code as ErrorCode) : 'Internal', `${what}: ${e.message ?? 'failed'}`);
}

/** Kill the shim a failed start left in `dir` (if it wrote its pid) and remove the directory. */
export function abandonShimDir(dir: string): void {
  const pid = readShimPid(dir);
  if (pid && isShimAlive(pid, dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Node options of every shim: a small young generation and no V8 worker threads (a shim runs
 * little JavaScript and mostly waits), ≈3 MiB less Pss per shim than node's defaults.
 */
export const SHIM_NODE_ARGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=0', '--single-threaded'];

/** argv to run the shim binary: through this node (with SHIM_NODE_ARGS) when its #! line names node. */
export function shimCommand(binary: string, args: readonly string[], nodeArgs: readonly string[] = SHIM_NODE_ARGS): [string, string[]] {
  const usesNode = /node/.test(fs.readFileSync(binary, { encoding: 'utf8', flag: 'r' }).slice(0, 64).split('\n')[0] ?? '');
  return usesNode ? [process.execPath, [...nodeArgs, binary, ...args]] : [binary, [...args]];
}

/**
 * The environment a shim starts with: ours without NODE_EXTRA_CA_CERTS, whose certificates node
 * would parse at every shim's start-up (47 ms on the bench host) for TLS a shim never speaks.
 */
export function shimEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  return env;
}

/** Start a Node shim for one container and connect to it. */
export async function startShim(opts: ShimStartOptions): Promise<ShimConnection> {
  const binary = locateShimBinary(opts.shimBinary);
  const dir = prepareShimDir(opts);
  try {
    const [file, args] = shimCommand(binary, [dir]);
    const child = spawn(file, args, {
      cwd: dir,
      env: shimEnv(),
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    });
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const pipe = child.stdio[3] as net.Socket | null;
      const timer = setTimeout(() => reject(new TsrunError('Unavailable', `start shim ${binary}: not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new TsrunError('Unavailable', `start shim ${binary}: ${e.message}`, { cause: e }));
      });
      pipe?.on('data', (b: Buffer) => (text += b.toString()));
      pipe?.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    (child.stdio[3] as net.Socket | null)?.destroy();
    child.unref();
    const failed = shimAnswerError(answer, `start shim for ${opts.namespace}/${opts.id}`);
    if (failed) throw failed;
    return await connectShim(dir);
  } catch (err) {
    abandonShimDir(dir);
    throw err;
  }
}

function toExit(w: WireExit | null | undefined): ProcessExit {
  if (!w) throw new TsrunError('Internal', 'shim answer without an exit');
  return { ...(w.execId ? { execId: w.execId } : {}), pid: w.pid, exitStatus: w.exitStatus, exitedAt: w.exitedAt };
}

function toState(w: WireProcState): ProcessState {
  const s = w.stdio;
  const stdio: StdioSpec = { stdin: s?.stdin ?? '', stdout: s?.stdout ?? '', stderr: s?.stderr ?? '', terminal: s?.terminal === true };
  return {
    ...(w.execId ? { execId: w.execId } : {}),
    pid: w.pid,
    status: w.status as ProcessStatus,
    stdio,
    ...(w.hasExit ? { exitStatus: w.exitStatus, exitedAt: w.exitedAt } : {}),
  };
}

/** Connect to a running shim (also to re-adopt it after a tsrund restart). */
export async function connectShim(shimDir: string): Promise<ShimConnection> {
  const dir = path.resolve(shimDir);
  const sockPath = path.join(dir, FILES.sock);
  const sock = await withSocketPath(sockPath, (usable) => new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection(usable);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(new TsrunError(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'NotFound' : 'Unavailable', `connect to shim ${sockPath}: ${e.message}`, { cause: e })),
    );
  }));
  return attachShim(sock, dir);
}

/** The protocol over a connected socket. */
async function attachShim(sock: net.Socket, dir: string): Promise<ShimConnection> {
  let nextId = 1;
  let closed = false;
  const pending = new Map<number, { method: string; resolve: (r: WireResponse) => void; reject: (e: Error) => void }>();
  const eventListeners: Array<(e: ShimEvent) => void> = [];
  const closeListeners: Array<() => void> = [];
  const queued: ShimEvent[] = [];
  const reader = frameReader();
  /** the shim answered delete: it is going away, and later calls find no task (not a transient fault) */
  let deleted = false;
  const gone = (method: string): TsrunError =>
    deleted ? new TsrunError('NotFound', `cannot ${method} a deleted task: not found`) : new TsrunError('Unavailable', `shim ${dir}: connection closed`);

  const deliver = (e: ShimEvent): void => {
    if (eventListeners.length === 0) {
      queued.push(e);
      return;
    }
    for (const l of eventListeners) l(e);
  };
  const onClosed = (): void => {
    if (closed) return;
    closed = true;
    for (const p of pending.values()) p.reject(gone(p.method));
    pending.clear();
    for (const l of closeListeners) l();
  };
  sock.on('data', (data: Buffer) => {
    let frames: Buffer[];
    try {
      frames = reader.push(data);
    } catch {
      sock.destroy();
      return;
    }
    for (const f of frames) {
      const frame = decodeFrame(f);
      if (frame.event) {
        const ev = frame.event;
        if (ev.type === 'exit') deliver({ type: 'exit', exit: toExit(ev.exit) });
        else if (ev.type === 'exec-started') deliver({ type: 'exec-started', execId: ev.execId ?? '', pid: ev.pid ?? 0 });
        else if (ev.type === 'oom') deliver({ type: 'oom' });
      } else if (frame.response) {
        const p = pending.get(frame.id);
        pending.delete(frame.id);
        p?.resolve(frame.response);
      }
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', onClosed);

  const call = (req: WireRequest): Promise<WireResponse> => {
    if (closed) return Promise.reject(gone(req.method ?? 'call'));
    const id = nextId++;
    return new Promise<WireResponse>((resolve, reject) => {
      pending.set(id, { method: req.method ?? 'call', resolve, reject });
      sock.write(frameBytes(encodeFrame({ id, request: req })));
    }).then((r) => {
      if (r.errorCode) throw new TsrunError(CODES.has(r.errorCode) ? (r.errorCode as ErrorCode) : 'Internal', r.errorMessage ?? r.errorCode);
      return r;
    });
  };
  const ex = (execId: string | undefined): { execId: string } => ({ execId: execId ?? '' });

  let hello: WireResponse;
  try {
    // Both at once: one round trip instead of two (answers come back in either order).
    [hello] = await Promise.all([call({ method: 'hello' }), call({ method: 'subscribe' })]);
  } catch (err) {
    sock.destroy();
    throw err;
  }
  const conn: ShimConnection = {
    namespace: hello.namespace ?? '',
    id: hello.id ?? '',
    dir,
    shimPid: hello.shimPid ?? 0,
    create: async () => ({ pid: (await call({ method: 'create' })).pid ?? 0 }),
    start: async (execId) => ({ pid: (await call({ method: 'start', ...ex(execId) })).pid ?? 0 }),
    wait: async (execId) => toExit((await call({ method: 'wait', ...ex(execId) })).exit),
    state: async (execId) => {
      const p = (await call({ method: 'state', ...ex(execId) })).processes?.[0];
      if (!p) throw new TsrunError('Internal', 'shim state answer without a process');
      return toState(p);
    },
    list: async () => ((await call({ method: 'list' })).processes ?? []).map(toState),
    kill: async (signal, opts) => void (await call({ method: 'kill', signal, all: opts?.all === true, ...ex(opts?.execId) })),
    exec: async (execId, processJson, stdio) => void (await call({ method: 'exec', execId, processJson, stdio: { ...stdio } })),
    resizePty: async (width, height, execId) => void (await call({ method: 'resizePty', width, height, ...ex(execId) })),
    closeStdin: async (execId) => void (await call({ method: 'closeStdin', ...ex(execId) })),
    pause: async () => void (await call({ method: 'pause' })),
    resume: async () => void (await call({ method: 'resume' })),
    pids: async () => ((await call({ method: 'pids' })).pids ?? []).map((p) => ({ pid: p.pid, ...(p.execId ? { execId: p.execId } : {}) })),
    stats: async () => JSON.parse(Buffer.from((await call({ method: 'stats' })).json ?? []).toString('utf8') || 'null') as unknown,
    update: async (resourcesJson) => void (await call({ method: 'update', resourcesJson })),
    deleteProcess: async (execId) => toExit((await call({ method: 'deleteProcess', execId })).exit),
    delete: async () => {
      const exit = toExit((await call({ method: 'delete' })).exit);
      deleted = true;
      return exit;
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

/** Every shim directory under stateRoot (<ns>/<id> holding options.json or shim-state.json). */
export function listShimDirs(stateRoot: string): ShimDirEntry[] {
  const out: ShimDirEntry[] = [];
  const list = (d: string): fs.Dirent[] => {
    try {
      return fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  for (const ns of list(stateRoot)) {
    if (!ns.isDirectory()) continue;
    for (const c of list(path.join(stateRoot, ns.name))) {
      if (!c.isDirectory()) continue;
      const dir = path.join(stateRoot, ns.name, c.name);
      if (!fs.existsSync(path.join(dir, FILES.options)) && !fs.existsSync(path.join(dir, FILES.state))) continue;
      const shimPid = readShimPid(dir);
      out.push({ namespace: ns.name, id: c.name, dir, ...(shimPid ? { shimPid } : {}) });
    }
  }
  return out;
}

/**
 * Whether pid is a live tsrun-shim serving dir: its argv names the dir (started for it), or it
 * holds the dir open (a Node shim keeps an O_DIRECTORY fd on its container's; its retitled
 * command line is one string).
 */
export function isShimAlive(pid: number | undefined, dir: string): boolean {
  if (!pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.includes(dir)) return true;
    if (!argv.some((a) => a.includes('tsrun-shim'))) return false;
    const target = path.resolve(dir);
    return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** The shim is gone: kill what is left of its container, report init's exit, remove the dir. */
export async function reapDeadShim(shimDir: string): Promise<ProcessExit> {
  const dir = path.resolve(shimDir);
  const pid = readShimPid(dir);
  if (isShimAlive(pid, dir)) throw new TsrunError('FailedPrecondition', `shim ${dir} (pid ${pid}) is still running`);
  let st: ReturnType<typeof readShimState> | undefined;
  try {
    st = readShimState(dir);
  } catch {
    st = undefined;
  }
  const now = nowRfc3339Nano();
  let exit: ProcessExit = { pid: 0, exitStatus: 137, exitedAt: now };
  if (st?.init) {
    const i = st.init;
    exit = i.exitStatus !== undefined && i.exitedAt !== undefined
      ? { pid: i.pid, exitStatus: i.exitStatus, exitedAt: i.exitedAt }
      : { pid: i.pid, exitStatus: 137, exitedAt: now };
  }
  const id = st?.id ?? path.basename(dir);
  const runtime = st?.runtime ?? { kind: 'library' as const };
  const root = st?.runtimeRoot ?? runtimeRootFor(dir, runtime);
  const problems: Error[] = [];
  if (runtime.kind === 'library') {
    const { killContainer, deleteContainer } = await import('../../runtime/container/lifecycle');
    try {
      killContainer(root, id, 9, true);
    } catch {
      // not running, or no container: delete --force below decides
    }
    try {
      await deleteContainer(root, id, true);
    } catch (err) {
      if (!(err instanceof TsrunError && err.code === 'NotFound')) problems.push(err as Error);
    }
  } else {
    const { binaryRuntime } = await import('../../shim/runtime/binary');
    const rt = binaryRuntime({ id, bundle: dir, root, noPivot: false, noNewKeyring: false, path: runtime.path, systemdCgroup: runtime.systemdCgroup === true });
    await rt.kill(9, true).catch(() => undefined);
    try {
      await rt.delete(true);
    } catch (err) {
      if (!(err instanceof TsrunError && err.code === 'NotFound')) problems.push(err as Error);
    }
  }
  if (problems.length > 0) {
    throw new TsrunError('Internal', `reap dead shim ${dir}: ${problems.map((e) => e.message).join('; ')}`, { cleanup: problems });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return exit;
}
