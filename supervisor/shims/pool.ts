/*
 * Warm shims and shared (grouped) shims, tsrund's side.
 *
 * A warm shim is `tsrun-shim --pool` started ahead of need: it has loaded the runtime
 * library and become a subreaper, said "ok\n" on its fd 3 (a socket pair with tsrund), and waits
 * there for one JSON line {dir, group?}. Taking one costs a line each way instead of a node start
 * (docs/shim-protocol.md §Warm shims). Idle warm shims exit when tsrund goes away (EOF on fd 3).
 *
 *   pool.startShim(opts) ─ prepareShimDir ─ take a warm shim (else start one)
 *                        ─ {"dir"} + hello + subscribe ─ "ok" + answers, on fd 3, which stays the
 *                          connection (handOffShim) ─ refill the pool in the background
 *
 * Grouped containers (opts.group) share one shim per (namespace, group): it listens on
 * <stateRoot>/<ns>/.groups/<group>.sock for further containers ({"dir"} → "ok"); the first
 * container of a group (or the first after the group's shim exited with its last container)
 * starts the group's shim as a warm shim given {dir, group}. Creates of one group are serialised.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import type { ShimConnection, ShimPoolOptions, ShimStartOptions } from '../../shim/api';
import { abandonShimDir, connectShim, handOffShim, locateShimBinary, prepareShimDir, shimAnswerError, shimCommand, shimEnv, startSingleShim, SHIM_NODE_ARGS } from './client';
import { withSocketPath } from '../../shim/sockpath';

/** How long a shim may take to start, or to take a container. */
const READY_TIMEOUT_MS = 30_000;

/**
 * At most this many shims boot at once (one per CPU, at least 2): 100 node starts at once on a
 * small machine starve tsrund itself until clients time out; queued, they finish as fast.
 */
const BOOT_LIMIT = Math.max(2, os.availableParallelism?.() ?? os.cpus().length);
let booting = 0;
const bootQueue: Array<() => void> = [];
const afterBoot: Array<() => void> = [];

/** A boot slot, waiting for one when all are taken. */
async function bootSlot(): Promise<void> {
  if (booting < BOOT_LIMIT) {
    booting++;
    return;
  }
  await new Promise<void>((r) => bootQueue.push(r));
}

/** A boot slot if one is free now (refills do not queue). */
function tryBootSlot(): boolean {
  if (booting >= BOOT_LIMIT || bootQueue.length > 0) return false;
  booting++;
  return true;
}

function releaseBootSlot(): void {
  const next = bootQueue.shift();
  if (next !== undefined) return next(); // the slot passes on
  booting--;
  for (const f of afterBoot) setImmediate(f);
}

/** Niceness of warming shims: they start in the background and must not slow the creates running meanwhile. */
const WARMING_NICE = 19;

/** A started `tsrun-shim --pool` and its fd-3 socket. */
interface WarmShim {
  readonly child: ChildProcess;
  readonly sock: net.Socket;
  /** resolves true once it said "ok", false when it died first */
  readonly ready: Promise<boolean>;
  /** ready has resolved true */
  isReady: boolean;
}

/** Read one line; undefined on EOF, close or timeout first. */
function readLine(sock: net.Socket, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const done = (v: string | undefined): void => {
      clearTimeout(timer);
      sock.off('data', onData).off('end', onEnd).off('close', onEnd).off('error', onEnd);
      resolve(v);
    };
    const onData = (b: Buffer): void => {
      text += b.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) done(text.slice(0, nl));
    };
    const onEnd = (): void => done(undefined);
    const timer = setTimeout(onEnd, timeoutMs);
    sock.on('data', onData).once('end', onEnd).once('close', onEnd).once('error', onEnd);
  });
}

/**
 * argv room for the title a warm shim takes once it serves a container (`tsrun-shim <dir>`, set
 * through process.title, which can only reuse the argv's own bytes): so `ps` and anything that
 * looks for a container's shim by its directory see it as they see a shim started for it, while
 * an idle warm shim names no container and no state root.
 */
export const TITLE_ROOM = `--title-room=${'.'.repeat(240)}`;

/** Start one `tsrun-shim --pool` when a boot slot is free. */
async function startWarm(binary: string, nodeArgs: readonly string[]): Promise<WarmShim> {
  await bootSlot();
  return spawnWarm(binary, nodeArgs, false);
}

/** Start one `tsrun-shim --pool`; the caller holds a boot slot, released once it is ready (or dead). */
function spawnWarm(binary: string, nodeArgs: readonly string[], background: boolean): WarmShim {
  const [file, args] = shimCommand(binary, ['--pool', TITLE_ROOM], nodeArgs);
  const child = spawn(file, args, { cwd: '/', env: shimEnv(), detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  child.on('error', () => undefined);
  if (background) setNice(child.pid, WARMING_NICE);
  const sock = child.stdio[3] as net.Socket;
  sock.on('error', () => undefined);
  const w: WarmShim = { child, sock, ready: readLine(sock, READY_TIMEOUT_MS).then((l) => l === 'ok'), isReady: false };
  void w.ready.then((ok) => {
    w.isReady = ok;
    releaseBootSlot();
  });
  // Idle warm shims must not keep tsrund's event loop alive.
  child.unref();
  sock.unref();
  return w;
}

/** Renice a process (all its threads: node's are few, and a shim resets itself when taken); best effort. */
function setNice(pid: number | undefined, nice: number): void {
  if (pid === undefined) return;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) os.setPriority(Number(tid), nice);
  } catch {
    // gone, or not allowed: it only runs at another priority
  }
}

/**
 * Hand a container directory (and maybe a group socket) to a warm shim and connect to it over
 * its fd-3 socket (handOffShim); throws the shim's error.
 */
async function assign(w: WarmShim, a: { dir: string; group?: string }, what: string): Promise<ShimConnection> {
  if (!w.isReady) setNice(w.child.pid, 0); // still warming: it is on the hot path now
  if (!(await w.ready)) {
    w.child.kill('SIGKILL');
    throw new TsrunError('Unavailable', `${what}: the warm shim exited before it was ready`);
  }
  w.sock.ref();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      handOffShim(w.sock, a.dir, JSON.stringify(a), what),
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new TsrunError('Unavailable', `${what}: no answer from the warm shim within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    w.sock.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Ask a group's running shim to take `dir`; undefined when no shim listens there (start one). */
async function addToGroup(ctl: string, dir: string, what: string): Promise<'added' | 'none'> {
  const sock = await withSocketPath(ctl, (usable) => new Promise<net.Socket | undefined>((resolve) => {
    const s = net.createConnection(usable);
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(undefined));
  }));
  if (sock === undefined) return 'none';
  try {
    const asked = Date.now();
    const answer = readLine(sock, READY_TIMEOUT_MS);
    sock.write(`${JSON.stringify({ dir })}\n`);
    const line = await answer;
    // A shim that accepted the connection but does not answer is alive and busy: starting a second
    // shim for the group would take its socket over, so that is an error, not "no shim".
    if (line === undefined && Date.now() - asked >= READY_TIMEOUT_MS) throw new TsrunError('Unavailable', `${what}: the group's shim did not answer within ${READY_TIMEOUT_MS} ms`);
    if (line === undefined) return 'none';
    const failed = shimAnswerError(line, what);
    if (failed?.code === 'Unavailable') return 'none'; // the group's shim is exiting
    if (failed) throw failed;
    return 'added';
  } finally {
    sock.destroy();
  }
}

/** The control socket of a group's shim. */
export function groupSocket(stateRoot: string, namespace: string, group: string): string {
  return path.join(path.resolve(stateRoot), namespace, '.groups', `${group}.sock`);
}

const groupLocks = new Map<string, Promise<unknown>>();

/** Start (or join) the shim of opts.group; `take` gives a warm shim, undefined to start one now. */
export async function startGroupedShim(opts: ShimStartOptions, take: (() => WarmShim | undefined) | undefined, nodeArgs: readonly string[] = SHIM_NODE_ARGS): Promise<ShimConnection> {
  const group = opts.group!;
  const ctl = groupSocket(opts.stateRoot, opts.namespace, group);
  const what = `start shim for ${opts.namespace}/${opts.id} in group ${group}`;
  const prev = groupLocks.get(ctl) ?? Promise.resolve();
  const mine = prev.catch(() => undefined).then(async () => {
    const dir = prepareShimDir(opts);
    try {
      if ((await addToGroup(ctl, dir, what)) === 'none') {
        fs.mkdirSync(path.dirname(ctl), { recursive: true, mode: 0o711 });
        const w = take?.() ?? (await startWarm(locateShimBinary(opts.shimBinary), nodeArgs));
        return await assign(w, { dir, group: ctl }, what);
      }
      return await connectShim(dir);
    } catch (err) {
      abandonShimDir(dir, { kill: false });
      throw err;
    }
  });
  groupLocks.set(ctl, mine);
  try {
    return await mine;
  } finally {
    if (groupLocks.get(ctl) === mine) groupLocks.delete(ctl);
  }
}

/** Start a shim for one container (alone, or in its group's shim) and connect to it. */
export async function startShim(opts: ShimStartOptions): Promise<ShimConnection> {
  return opts.group !== undefined ? startGroupedShim(opts, undefined) : startSingleShim(opts);
}

/** A pool of warm shims. */
export interface ShimPool {
  /** startShim through the pool */
  startShim(opts: ShimStartOptions): Promise<ShimConnection>;
  /** idle warm shims right now */
  idle(): number;
  /** kill the idle warm shims (tsrund is stopping; shims serving containers are not touched) */
  close(): void;
}

/** How long a refill waits while another ready shim is left (the length of a short container's run). */
const REFILL_DELAY_MS = 150;

/** Keep `o.size` warm shims ready. */
export function createShimPool(o: ShimPoolOptions): ShimPool {
  const binary = locateShimBinary(o.shimBinary);
  const nodeArgs = o.nodeArgs ?? SHIM_NODE_ARGS;
  const idle: WarmShim[] = [];
  let closed = false;
  const refill = (): void => {
    while (!closed && idle.length < o.size && tryBootSlot()) {
      const w = spawnWarm(binary, nodeArgs, true);
      idle.push(w);
      const drop = (): void => {
        const i = idle.indexOf(w);
        if (i >= 0) idle.splice(i, 1);
      };
      w.child.once('exit', drop);
      void w.ready.then((ok) => {
        if (!ok) {
          drop();
          w.child.kill('SIGKILL');
        }
      });
    }
  };
  // Prefer a ready shim; else the one that has warmed longest. Refills run at low priority, and
  // wait a while when a ready shim is still left for the next create: a node start on the other
  // core slowed the `ctr run --rm` it replaced a shim for by 10-15 ms (pool of 2: median 74 → 62
  // ms with the wait; bursts of `ctr run -d` the same, 84 ms).
  const take = (): WarmShim | undefined => {
    const i = idle.findIndex((x) => x.isReady);
    const [w] = idle.splice(i >= 0 ? i : 0, 1);
    if (idle.some((x) => x.isReady)) setTimeout(refill, REFILL_DELAY_MS).unref();
    else setImmediate(refill);
    return w;
  };
  afterBoot.push(refill);
  refill();
  return {
    async startShim(opts) {
      const mine = opts.shimBinary === undefined || path.resolve(opts.shimBinary) === binary;
      if (!mine || closed) return startShim(opts);
      if (opts.group !== undefined) return startGroupedShim(opts, take, nodeArgs);
      const dir = prepareShimDir(opts);
      try {
        const w = take() ?? (await startWarm(binary, nodeArgs));
        return await assign(w, { dir }, `start shim for ${opts.namespace}/${opts.id}`);
      } catch (err) {
        abandonShimDir(dir);
        throw err;
      }
    },
    idle: () => idle.length,
    close() {
      closed = true;
      const i = afterBoot.indexOf(refill);
      if (i >= 0) afterBoot.splice(i, 1);
      for (const w of idle.splice(0)) {
        w.sock.destroy();
        w.child.kill('SIGKILL');
      }
    },
  };
}
