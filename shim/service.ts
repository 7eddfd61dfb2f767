/*
 * The task logic of one shim: the container's init and its exec processes, their exits, and the
 * events. Rules (docs/shim-protocol.md §Events):
 *
 *   - start answers with the pid before that process's exit is reported, even if it exited first
 *     (its exit waits on a gate opened after the start response is written; an exit reaped before
 *     the pid was known waits in `unclaimed` until start learns the pid);
 *   - an exit is reported only after the process's stdout/stderr were copied out (drained);
 *   - every exec exit is reported before init's exit;
 *   - an exit that happens while no client is subscribed is stored (shim-state.json) and sent to
 *     the next client that subscribes.
 */
import * as fs from 'node:fs';
import { TsrunError } from '../spec/errors';
import type { JsonLogSpec, ProcessExit, ProcessState, ProcessStatus, ShimEvent, StdioSpec } from './api';
import type { JsonLog } from './json-log';
import { crashPoint } from './crash-points';
import { exitStatusOf } from './reaper';
import { SHIM_STATE_VERSION, nowRfc3339Nano, writeShimState, type ShimOptions, type ShimState, type StoredExit, type StoredProcess } from './state';
import { openProcessIo, type ProcessIo } from './stdio';
import type { OomWatch } from './oom';
import type { Runtime } from './runtime/types';

/** How long an exit waits for the process's output to reach the client. */
const DRAIN_MS = 2000;
/** How long init's exit waits for exec exits to be reported. */
const EXEC_EXIT_WAIT_MS = 5000;

/** A runtime's kill failed because init is already gone (its wording, or ESRCH). */
function initGone(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /container not running|process already finished|no such process/i.test(text) || (err instanceof TsrunError && err.errno === 'ESRCH');
}

/** A subscriber of events (one client connection). */
export interface Subscriber {
  /** false when the connection is already gone (the event was not handed to it) */
  send(e: ShimEvent): boolean;
}

interface Proc {
  readonly execId?: string;
  pid: number;
  status: ProcessStatus;
  readonly stdio: StdioSpec;
  processJson?: string;
  io?: ProcessIo | undefined;
  exit?: ProcessExit;
  exiting: boolean;
  startGate?: Promise<void>;
  readonly waiters: Array<{ resolve: (e: ProcessExit) => void; reject: (e: Error) => void }>;
  readonly reported: Promise<void>;
  markReported: () => void;
}

/** The shim's task service. */
export interface Service {
  create(): Promise<{ pid: number }>;
  start(execId?: string): Promise<{ pid: number }>;
  wait(execId?: string): Promise<ProcessExit>;
  state(execId?: string): ProcessState;
  list(): ProcessState[];
  kill(signal: number, execId: string | undefined, all: boolean): Promise<void>;
  exec(execId: string, processJson: string, stdio: StdioSpec): void;
  resizePty(width: number, height: number, execId?: string): Promise<void>;
  closeStdin(execId?: string): void;
  pause(): Promise<void>;
  resume(): Promise<void>;
  pids(): Promise<Array<{ pid: number; execId?: string }>>;
  stats(): Promise<unknown>;
  update(resourcesJson: string): Promise<void>;
  deleteProcess(execId: string): ProcessExit;
  delete(): Promise<ProcessExit>;
  subscribe(s: Subscriber): void;
  unsubscribe(s: Subscriber): void;
  /** A child the reaper collected. */
  reaped(pid: number, status: number): void;
}

/** What the service needs from its surroundings. */
export interface ServiceDeps {
  readonly dir: string;
  readonly options: ShimOptions;
  readonly runtime: Runtime;
  readonly runtimeRoot: string;
  readonly openLog: (spec: JsonLogSpec) => JsonLog;
  readonly warn: (msg: string) => void;
  /** watch init's cgroup for OOM kills (shim/oom.ts); none: no oom events */
  readonly watchOom?: (pid: number, onOom: () => void) => OomWatch | undefined;
}

function newProc(execId: string | undefined, stdio: StdioSpec): Proc {
  let markReported: () => void = () => undefined;
  const reported = new Promise<void>((r) => (markReported = r));
  return { ...(execId === undefined ? {} : { execId }), pid: 0, status: 'created', stdio, exiting: false, waiters: [], reported, markReported };
}

function withExec<T extends object>(execId: string | undefined, o: T): T & { execId?: string } {
  return execId === undefined ? o : { ...o, execId };
}

/** Build the service. */
export function createService(d: ServiceDeps): Service {
  const { options: o, runtime } = d;
  let init: Proc | undefined;
  let paused = false;
  const execs = new Map<string, Proc>();
  const subscribers = new Set<Subscriber>();
  let undelivered: StoredExit[] = [];
  /** Exits reaped before their pid was known: pid → status and time. */
  const unclaimed = new Map<number, { status: number; at: string; when: number }>();
  const log = o.log ? d.openLog(o.log) : undefined;
  let oom: OomWatch | undefined;

  const stored = (p: Proc): StoredProcess =>
    withExec(p.execId, {
      pid: p.pid,
      status: p.status,
      stdio: p.stdio,
      ...(p.exit ? { exitStatus: p.exit.exitStatus, exitedAt: p.exit.exitedAt } : {}),
    });
  const persist = (): void => {
    const s: ShimState = {
      version: SHIM_STATE_VERSION,
      namespace: o.namespace,
      id: o.id,
      runtime: o.runtime,
      runtimeRoot: d.runtimeRoot,
      shimPid: process.pid,
      ...(init ? { init: stored(init) } : {}),
      execs: [...execs.values()].map(stored),
      undelivered,
    };
    try {
      writeShimState(d.dir, s);
    } catch (err) {
      d.warn(`save shim state: ${(err as Error).message}`);
    }
  };

  const emit = (e: ShimEvent): void => {
    let delivered = false;
    for (const s of subscribers) if (s.send(e)) delivered = true;
    if (!delivered && e.type === 'exit') {
      undelivered.push(e.exit);
      persist();
    }
  };

  const find = (execId: string | undefined): Proc => {
    if (execId === undefined || execId === '') {
      if (!init) throw new TsrunError('NotFound', `task ${o.id} not found: not created`);
      return init;
    }
    const p = execs.get(execId);
    if (!p) throw new TsrunError('NotFound', `process ${execId} of task ${o.id} not found`);
    return p;
  };

  const isLive = (p: Proc): boolean => p.pid > 0 && p.exit === undefined && !p.exiting;

  const handleExit = async (p: Proc, status: number, at: string): Promise<void> => {
    p.exiting = true;
    if (p.startGate) await p.startGate;
    if (p.io) await p.io.drain(DRAIN_MS);
    if (p === init) {
      // Exec exits first. With the container's own pid namespace they are dead already; without
      // one, they would outlive init: kill them, as the runc shim does.
      const running = [...execs.values()].filter((e) => e.pid > 0 && e.exit === undefined);
      for (const e of running) {
        if (!e.exiting) {
          try {
            process.kill(e.pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(running.map((e) => e.reported)), new Promise((r) => (timer = setTimeout(r, EXEC_EXIT_WAIT_MS)))]);
      if (timer) clearTimeout(timer);
    }
    p.io?.close();
    if (p === init) {
      // An OOM kill is reported before the exit it caused.
      oom?.poll();
      oom?.stop();
    }
    const exit: ProcessExit = withExec(p.execId, { pid: p.pid, exitStatus: exitStatusOf(status), exitedAt: at });
    p.exit = exit;
    p.status = 'stopped';
    if (p === init) paused = false;
    persist();
    emit({ type: 'exit', exit });
    for (const w of p.waiters.splice(0)) w.resolve(exit);
    p.markReported();
  };

  const claim = (p: Proc): void => {
    const u = unclaimed.get(p.pid);
    if (!u) return;
    unclaimed.delete(p.pid);
    void handleExit(p, u.status, u.at);
  };

  /** A gate that opens after the current call's response went out (responses are written in a continuation). */
  const gate = (): { promise: Promise<void>; open: () => void } => {
    let open: () => void = () => undefined;
    const promise = new Promise<void>((r) => (open = () => setImmediate(r)));
    return { promise, open };
  };

  const toState = (p: Proc): ProcessState => {
    let status: ProcessStatus = p.exit ? 'stopped' : p.status;
    if (p === init && status === 'running' && paused) status = 'paused';
    return withExec(p.execId, {
      pid: p.pid,
      status,
      stdio: p.stdio,
      ...(p.exit ? { exitStatus: p.exit.exitStatus, exitedAt: p.exit.exitedAt } : {}),
    });
  };

  const requireRunning = (what: string): Proc => {
    const p = find(undefined);
    if (p.exit || p.exiting) throw new TsrunError('FailedPrecondition', `cannot ${what} a stopped container`);
    return p;
  };

  return {
    async create() {
      if (init) throw new TsrunError('AlreadyExists', `task ${o.id}: already exists`);
      const p = newProc(undefined, o.stdio);
      init = p;
      let io: ProcessIo | undefined;
      try {
        io = await openProcessIo(d.dir, 'init', o.stdio, log);
        p.io = io;
        crashPoint('shim:create');
        p.pid = await runtime.create({ fds: io.childFds, ...(io.consoleSocket ? { consoleSocket: io.consoleSocket } : {}) });
        await io.childEndsClosed();
        crashPoint('shim:created');
      } catch (err) {
        init = undefined;
        io?.close();
        await runtime.delete(true).catch(() => undefined);
        throw err;
      }
      persist();
      oom = d.watchOom?.(p.pid, () => emit({ type: 'oom' }));
      claim(p);
      return { pid: p.pid };
    },

    async start(execId) {
      const p = find(execId);
      if (p.exit || p.exiting) throw new TsrunError('FailedPrecondition', `cannot start a process that has stopped`);
      if (p.status !== 'created') throw new TsrunError('FailedPrecondition', `cannot start an already running process`);
      const g = gate();
      p.startGate = g.promise;
      p.status = 'running';
      try {
        if (p === init) {
          await runtime.start();
        } else {
          const io = await openProcessIo(d.dir, `exec-${p.execId}`, p.stdio, undefined);
          p.io = io;
          try {
            p.pid = await runtime.exec(p.execId!, p.processJson ?? '{}', { fds: io.childFds, ...(io.consoleSocket ? { consoleSocket: io.consoleSocket } : {}) });
            await io.childEndsClosed();
          } catch (err) {
            io.close();
            p.io = undefined;
            throw err;
          }
          emit({ type: 'exec-started', execId: p.execId!, pid: p.pid });
        }
      } catch (err) {
        if (p !== init || !p.exiting) p.status = 'created';
        g.open();
        throw err;
      }
      persist();
      g.open();
      claim(p);
      return { pid: p.pid };
    },

    wait(execId) {
      const p = find(execId);
      if (p.exit) return Promise.resolve(p.exit);
      return new Promise((resolve, reject) => p.waiters.push({ resolve, reject }));
    },

    state: (execId) => toState(find(execId)),
    list: () => [...(init ? [toState(init)] : []), ...[...execs.values()].map(toState)],

    async kill(signal, execId, all) {
      const p = find(execId);
      if (p.exit || p.exiting) throw new TsrunError('NotFound', 'process already finished');
      if (p === init) {
        try {
          await runtime.kill(signal, all);
        } catch (err) {
          // Init may have exited and not been reaped yet: the runtime sees it stopped ("container
          // not running") before we see the exit. containerd's runc shim maps these the same way.
          if (p.exit || p.exiting || initGone(err)) throw new TsrunError('NotFound', 'process already finished', { cause: err });
          throw err;
        }
        return;
      }
      if (p.status === 'created' || p.pid <= 0) throw new TsrunError('FailedPrecondition', `process ${execId} not started`);
      try {
        // Not reaped yet (only this process reaps), so the pid still names this process.
        process.kill(p.pid, signal);
      } catch (err) {
        throw new TsrunError('NotFound', 'process already finished', { cause: err });
      }
    },

    exec(execId, processJson, stdio) {
      requireRunning('exec in');
      if (execs.has(execId)) throw new TsrunError('AlreadyExists', `exec ${execId}: already exists`);
      const p = newProc(execId, stdio);
      p.processJson = processJson;
      execs.set(execId, p);
      persist();
    },

    async resizePty(width, height, execId) {
      const p = find(execId);
      if (!p.stdio.terminal || p.exit) return;
      await p.io?.resize(width, height);
    },

    closeStdin(execId) {
      find(execId).io?.closeStdin();
    },

    async pause() {
      requireRunning('pause');
      await runtime.pause();
      paused = true;
    },
    async resume() {
      requireRunning('resume');
      await runtime.resume();
      paused = false;
    },

    async pids() {
      const byPid = new Map([...execs.values()].filter(isLive).map((e) => [e.pid, e.execId!] as const));
      return (await runtime.ps()).map((pid) => withExec(byPid.get(pid), { pid }));
    },
    stats: () => runtime.stats(),
    update: (json) => runtime.update(json),

    deleteProcess(execId) {
      const p = find(execId);
      if (p === init) throw new TsrunError('InvalidArgument', 'delete process: give an exec id (delete removes the task)');
      if (p.status === 'running' && !p.exit) throw new TsrunError('FailedPrecondition', `process ${execId} is running: kill it first`);
      execs.delete(execId);
      persist();
      return p.exit ?? { execId, pid: p.pid, exitStatus: 0, exitedAt: nowRfc3339Nano() };
    },

    async delete() {
      if (!init) {
        await runtime.delete(true).catch(() => undefined);
        return { pid: 0, exitStatus: 0, exitedAt: nowRfc3339Nano() };
      }
      const p = init;
      if (p.status === 'running' && !p.exit && !p.exiting) {
        throw new TsrunError('FailedPrecondition', `task ${o.id}: cannot delete a running task: kill it first`);
      }
      if (p.status === 'created' && !p.exit && !p.exiting) {
        // Never started: delete --force kills the waiting init; report its exit like any other.
        await runtime.delete(true);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([p.reported, new Promise((r) => (timer = setTimeout(r, EXEC_EXIT_WAIT_MS + DRAIN_MS)))]);
      if (timer) clearTimeout(timer);
      try {
        await runtime.delete(false);
      } catch (err) {
        if (!(err instanceof TsrunError && err.code === 'NotFound')) await runtime.delete(true).catch(() => undefined);
      }
      for (const e of execs.values()) e.io?.close();
      oom?.stop();
      log?.close();
      return p.exit ?? { pid: p.pid, exitStatus: 137, exitedAt: nowRfc3339Nano() };
    },

    subscribe(s) {
      subscribers.add(s);
      if (undelivered.length === 0) return;
      const pending = undelivered;
      undelivered = [];
      persist();
      setImmediate(() => {
        const lost = pending.filter((exit) => !s.send({ type: 'exit', exit }));
        if (lost.length > 0) {
          undelivered = [...lost, ...undelivered];
          persist();
        }
      });
    },
    unsubscribe(s) {
      subscribers.delete(s);
    },


    reaped(pid, status) {
      const at = nowRfc3339Nano();
      const p = [init, ...execs.values()].find((x): x is Proc => x !== undefined && x.pid === pid && x.exit === undefined && !x.exiting);
      if (p) {
        void handleExit(p, status, at);
        return;
      }
      unclaimed.set(pid, { status, at, when: Date.now() });
      // Orphans of the container (re-parented to us) that no start will claim: keep a minute.
      for (const [k, v] of unclaimed) if (Date.now() - v.when > 60_000) unclaimed.delete(k);
    },
  };
}

/** Remove what the shim created in its directory, then the directory if that leaves it empty. */
export function removeShimFiles(dir: string, names: readonly string[]): void {
  for (const n of names) fs.rmSync(`${dir}/${n}`, { recursive: true, force: true });
  try {
    for (const n of fs.readdirSync(dir)) if (n.startsWith('.pipe-') || n.startsWith('pty-') || /\.pid$/.test(n) || n.startsWith('.shim-state')) fs.rmSync(`${dir}/${n}`, { force: true });
    fs.rmdirSync(dir);
  } catch {
    // Not empty: what is left is tsrund's.
  }
}
