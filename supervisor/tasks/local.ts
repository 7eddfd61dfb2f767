/*
 * Tasks: one shim per container, driven through supervisor/shims/client.ts (the ShimDriver passed in), with
 * containerd's task semantics (docs/containerd-api.md §6) and event ordering enforced here:
 *
 *   /tasks/create ─▶ /tasks/start ─▶ /tasks/exit ─▶ /tasks/delete
 *   - an exit reported while Start is in flight is held until /tasks/start is published;
 *   - an init exit is held while started execs are still running (at most EXEC_GRACE_MS), so exec
 *     exits come first;
 *   - each process's exit is published once per tsrund lifetime (a re-adopted shim's already
 *     stopped processes are published again after a restart: at-least-once);
 *   - the operations that change a task or reach its shim are queued per task (task.ts
 *     serialize): one Delete wins and publishes /tasks/delete, whatever races it answers NotFound.
 *
 * Process status, pid, stdio and exit are kept here, so Get/List/Wait (called many times per ctr
 * command) never touch the shim. A shim that dies (connection closed without Delete) is resolved
 * with reapDeadShim: its processes get exits and the task stays STOPPED until deleted.
 */
import type { ProcessExit, ShimConnection } from '../../shim/api';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crashPoint } from '../../shim/crash-points';
import { TsrunError } from '../../spec/errors';
import { errors } from '../errors';
import { emit, type Exchange } from '../events/exchange';
import type { Logger } from '../log';
import { parseRfc3339 } from '../proto/index';
import type { Store } from '../store/db';
import { jsonLogFromLabels, LABELS } from '../labels';
import { adoptAll } from './adopt';
import { taskMarkers } from './markers';
import { exitView, type InitExitListener, type ProcessView, type ShimDriver, type TaskContext, type TaskOptions, type Tasks } from './api';
import { controlMethods } from './control';
import { execMethods } from './exec';
import { mountRootfs, rootfsDir, unmountRootfs } from './rootfs';
import { chooseRuntime } from './runtime-choice';
import { newProc, newTask, nowRfc3339, serialize, taskKey, type Proc, type Task } from './task';

export { chooseRuntime } from './runtime-choice';
export type { CreateInput, ExitView, InitExitListener, ProcessView, ShimDriver, TaskOptions, Tasks } from './api';

/** How long a new task of a deleted task's id waits for the old shim to go. */
const SHIM_EXIT_WAIT_MS = 3000;


/** A task manager over `driver`, publishing on `events`. */
export function createTasks(store: Store, events: Exchange, driver: ShimDriver, opts: TaskOptions, log: Logger): Tasks {
  const tasks = new Map<string, Task>();
  const creating = new Set<string>();
  /** deleted tasks whose shim has not exited yet */
  const releasing = new Map<string, Promise<void>>();
  const initExitListeners: InitExitListener[] = [];
  const execGraceMs = opts.execGraceMs ?? 2000;
  const keyOf = taskKey;
  const markers = taskMarkers(opts.shimRoot);

  const getTask = (ns: string, id: string): Task => {
    const t = tasks.get(keyOf(ns, id));
    if (t === undefined) throw errors.taskMissing(id);
    return t;
  };
  const getProc = (t: Task, execId: string | undefined): Proc => {
    if (execId === undefined) return t.init;
    const p = t.execs.get(execId);
    if (p === undefined) throw errors.processMissing(execId);
    return p;
  };
  const liveConn = (t: Task): ShimConnection => {
    if (t.conn === undefined) throw errors.processFinished();
    return t.conn;
  };

  const finalize = (t: Task, p: Proc, exit: ProcessExit): void => {
    if (p.exit !== undefined) return;
    p.exit = exit;
    p.status = 'stopped';
    if (exit.pid !== 0) p.pid = exit.pid;
    emit(events, t.namespace, 'taskExit', {
      containerId: t.id,
      id: p.execId ?? t.id,
      pid: p.pid,
      exitStatus: exit.exitStatus,
      exitedAt: parseRfc3339(exit.exitedAt),
    });
    const waiters = p.waiters;
    p.waiters = [];
    for (const w of waiters) w(exit);
    if (p === t.init) {
      for (const l of initExitListeners) {
        try {
          l(t.namespace, t.id, exit);
        } catch (e) {
          log.warn('init exit listener failed', { id: t.id, error: e instanceof Error ? e.message : String(e) });
        }
      }
    }
  };

  const runningExecs = (t: Task): Proc[] =>
    [...t.execs.values()].filter((p) => p.exit === undefined && (p.status === 'running' || p.status === 'paused' || p.starting));

  const releaseInit = (t: Task): void => {
    const held = t.heldInitExit;
    if (held === undefined) return;
    clearTimeout(held.timer);
    t.heldInitExit = undefined;
    finalize(t, t.init, held.exit);
  };

  const handleExit = (t: Task, exit: ProcessExit): void => {
    if (t.queued !== undefined) {
      t.queued.push(exit);
      return;
    }
    const p = exit.execId === undefined ? t.init : t.execs.get(exit.execId);
    if (p === undefined || p.exit !== undefined) return;
    if (p.starting) {
      p.pendingExit = exit;
      return;
    }
    if (p === t.init) {
      if (t.heldInitExit !== undefined) return;
      if (runningExecs(t).length > 0) {
        t.heldInitExit = { exit, timer: setTimeout(() => releaseInit(t), execGraceMs) };
        return;
      }
      finalize(t, p, exit);
      return;
    }
    finalize(t, p, exit);
    if (t.heldInitExit !== undefined && runningExecs(t).length === 0) releaseInit(t);
  };

  /** The shim went away without Delete: reap it and close every process with an exit. */
  const shimGone = (t: Task): Promise<void> => {
    t.conn = undefined;
    t.reaping ??= reapTask(t);
    return t.reaping;
  };
  const reapTask = async (t: Task): Promise<void> => {
    let exit: ProcessExit;
    try {
      exit = await driver.reapDeadShim(t.dir);
    } catch (e) {
      log.warn('reaping a dead shim failed', { id: t.id, dir: t.dir, error: e instanceof Error ? e.message : String(e) });
      exit = { pid: t.init.pid, exitStatus: 137, exitedAt: nowRfc3339() };
    }
    log.warn('shim died', { namespace: t.namespace, id: t.id, exitStatus: exit.exitStatus });
    for (const p of t.execs.values()) {
      p.starting = false;
      const pending = p.pendingExit;
      p.pendingExit = undefined;
      if (p.exit === undefined && p.status !== 'created') {
        finalize(t, p, pending ?? { execId: p.execId!, pid: p.pid, exitStatus: 137, exitedAt: exit.exitedAt });
      }
    }
    t.init.starting = false;
    const held = t.heldInitExit?.exit ?? t.init.pendingExit;
    if (t.heldInitExit !== undefined) clearTimeout(t.heldInitExit.timer);
    t.heldInitExit = undefined;
    t.init.pendingExit = undefined;
    finalize(t, t.init, held ?? { ...exit, pid: exit.pid !== 0 ? exit.pid : t.init.pid });
  };

  const attach = (t: Task, conn: ShimConnection): void => {
    conn.onEvent((e) => {
      switch (e.type) {
        case 'exit':
          handleExit(t, e.exit);
          break;
        case 'oom': {
          emit(events, t.namespace, 'taskOOM', { containerId: t.id });
          const c = store.getContainer(t.namespace, t.id);
          if (c !== undefined && c.labels[LABELS.oomKilled] !== 'true') store.updateContainer({ ...c, labels: { ...c.labels, [LABELS.oomKilled]: 'true' } });
          break;
        }
        case 'exec-started':
          // published by start() after the shim answers, so it always follows /tasks/exec-added
          break;
        default: {
          const never: never = e;
          void never;
        }
      }
    });
    conn.onClose(() => {
      if (t.closing || t.conn !== conn) return;
      void shimGone(t);
    });
  };

  const view = (t: Task, p: Proc): ProcessView => ({
    id: p.execId ?? t.id,
    pid: p.pid,
    status: p.status,
    stdio: p.stdio,
    exitStatus: p.exit?.exitStatus ?? 0,
    exitedAt: p.exit === undefined ? undefined : parseRfc3339(p.exit.exitedAt),
  });

  /**
   * Undo a Create that failed after its shim started: delete through the shim, or, when the shim
   * died (killed mid-create), reap what it left (container, cgroup, directory), so the id can be
   * created again.
   */
  const destroyConn = async (conn: ShimConnection): Promise<void> => {
    try {
      await conn.delete();
      conn.close();
      return;
    } catch (e) {
      log.debug('shim delete after a failed create', { id: conn.id, error: e instanceof Error ? e.message : String(e) });
      conn.close();
    }
    try {
      await driver.reapDeadShim(conn.dir);
    } catch (e) {
      log.warn('cleaning up after a failed create', { id: conn.id, dir: conn.dir, error: e instanceof Error ? e.message : String(e) });
    }
  };

  /** Run `op` on the task in the per-task queue (NotFound if it is gone by then). */
  const queued = <T>(ns: string, id: string, op: (t: Task) => Promise<T>): Promise<T> => {
    let t: Task;
    try {
      t = getTask(ns, id);
    } catch (e) {
      return Promise.reject(e);
    }
    return serialize(t, () => op(t));
  };

  const ctx: TaskContext = { tasks, events, getTask, getProc, liveConn, queued };

  return {
    async create(ns, id, input) {
      const key = keyOf(ns, id);
      if (tasks.has(key) || creating.has(key)) throw errors.taskExists(id);
      const c = store.getContainer(ns, id);
      if (c === undefined) throw errors.containerMissing(id, ns);
      if (input.rootfsMounts > 0 && input.rootfs === undefined) throw errors.invalid('rootfs mounts are not supported here: create the container with a rootfs path in its spec');
      if (input.checkpoint) throw errors.invalid('restoring from a checkpoint is not supported');
      creating.add(key);
      let spec = c.spec.value;
      const mountDir = rootfsDir(opts.shimRoot, ns, id);
      try {
        const previous = releasing.get(key);
        if (previous !== undefined) await previous;
        if (input.rootfs !== undefined && input.rootfs.length > 0) spec = mountRootfs(mountDir, input.rootfs, spec);
        const choice = chooseRuntime(c, input.options, opts.defaultRuntime);
        const labels = { ...c.labels };
        // A new task: the last one's OOM kill is history (docker clears State.OOMKilled on start).
        delete labels[LABELS.oomKilled];
        const log = jsonLogFromLabels(c.labels, opts.logRoot ?? path.join(opts.shimRoot, '.logs'), ns, id);
        if (log !== undefined) {
          fs.mkdirSync(path.dirname(log.path), { recursive: true, mode: 0o700 });
          // tsctl reads the path back from the label (docker's LogPath)
          labels[LABELS.logPath] = log.path;
        }
        if (Object.keys(labels).length !== Object.keys(c.labels).length || Object.entries(labels).some(([k, v]) => c.labels[k] !== v)) store.updateContainer({ ...c, labels });
        crashPoint('create:before-shim');
        const conn = await driver.startShim({
          stateRoot: opts.shimRoot,
          namespace: ns,
          id,
          spec,
          runtime: choice.runtime,
          stdio: input.stdio,
          ...(log !== undefined ? { log } : {}),
          ...(choice.noPivot ? { noPivot: true } : {}),
          ...(choice.noNewKeyring ? { noNewKeyring: true } : {}),
          ...(opts.shimBinary !== undefined ? { shimBinary: opts.shimBinary } : {}),
        });
        const t = newTask(ns, id, conn.dir, conn, newProc(undefined, 0, 'created', input.stdio));
        // A shim that dies before create answered is cleaned up below, with no task and no exit.
        t.closing = true;
        attach(t, conn);
        let pid: number;
        try {
          crashPoint('create:shim-started');
          ({ pid } = await conn.create());
          crashPoint('create:container-created');
          // from here on a restarted tsrund adopts the task instead of undoing the create
          markers.put(ns, id);
          crashPoint('create:recorded');
        } catch (e) {
          await destroyConn(conn);
          // A shim that died under create is cleaned up by now: not a transient fault of tsrund
          // (Unavailable makes clients retry blindly).
          if (e instanceof TsrunError && e.code === 'Unavailable') {
            throw new TsrunError('Internal', `create task ${id}: the shim exited during create (${e.message}); what it made is removed`, { cause: e });
          }
          throw e;
        }
        t.closing = false;
        t.init.pid = pid;
        tasks.set(key, t);
        emit(events, ns, 'taskCreate', {
          containerId: id,
          bundle: conn.dir,
          rootfs: [],
          io: { stdin: input.stdio.stdin, stdout: input.stdio.stdout, stderr: input.stdio.stderr, terminal: input.stdio.terminal },
          pid,
        });
        return { pid };
      } catch (e) {
        if (spec !== c.spec.value) unmountRootfs(mountDir);
        throw e;
      } finally {
        creating.delete(key);
      }
    },

    start: (ns, id, execId) => queued(ns, id, async (t) => {
      const p = getProc(t, execId);
      if (p.exit !== undefined) throw new TsrunError('FailedPrecondition', `process ${p.execId ?? id} has already exited: failed precondition`);
      const conn = liveConn(t);
      p.starting = true;
      try {
        const { pid } = await conn.start(execId);
        p.pid = pid;
        if (p.status === 'created') p.status = 'running';
        if (execId === undefined) emit(events, ns, 'taskStart', { containerId: id, pid });
        else emit(events, ns, 'taskExecStarted', { containerId: id, execId, pid });
        return { pid };
      } finally {
        p.starting = false;
        const pending = p.pendingExit;
        p.pendingExit = undefined;
        if (pending !== undefined) handleExit(t, pending);
      }
    }),

    async wait(ns, id, execId) {
      const t = getTask(ns, id);
      const p = getProc(t, execId);
      const exit = p.exit ?? (await new Promise<ProcessExit>((resolve) => p.waiters.push(resolve)));
      return exitView(p.execId ?? id, exit);
    },

    get(ns, id, execId) {
      const t = getTask(ns, id);
      return view(t, getProc(t, execId));
    },

    list(ns) {
      const out: ProcessView[] = [];
      for (const t of tasks.values()) if (t.namespace === ns) out.push(view(t, t.init));
      return out;
    },

    kill: (ns, id, execId, signal, all) => queued(ns, id, async (t) => {
      const p = getProc(t, execId);
      if (p.exit !== undefined || (p === t.init && t.heldInitExit !== undefined)) throw errors.processFinished();
      const conn = liveConn(t);
      await conn.kill(signal, { ...(execId !== undefined ? { execId } : {}), ...(all ? { all: true } : {}) });
    }),

    delete: (ns, id) => queued(ns, id, async (t) => {
      const init = t.init;
      if (t.conn !== undefined && init.exit === undefined && t.heldInitExit === undefined && (init.status === 'running' || init.status === 'paused')) {
        throw new TsrunError('FailedPrecondition', `task ${id} must be stopped before deletion: ${init.status}: failed precondition`);
      }
      releaseInit(t);
      const key = keyOf(ns, id);
      let exit: ProcessExit | undefined;
      if (t.conn !== undefined) {
        const conn = t.conn;
        t.closing = true;
        try {
          exit = await conn.delete();
        } catch (e) {
          t.closing = false;
          if (!(e instanceof TsrunError && e.code === 'Unavailable')) throw e;
          // The shim died under the Delete: reap it like any dead shim, and the Delete goes on.
          log.warn('shim died during delete', { namespace: ns, id, error: e.message });
          await shimGone(t);
        }
        if (exit !== undefined) {
          // The shim removes its directory and exits after answering; a new task of the same id
          // (restart policy, `ctr task start` again) waits for that in create().
          const released = new Promise<void>((resolve) => {
            conn.onClose(resolve);
            setTimeout(resolve, SHIM_EXIT_WAIT_MS).unref();
          }).then(() => {
            conn.close();
            if (releasing.get(key) === released) releasing.delete(key);
          });
          releasing.set(key, released);
          t.conn = undefined;
        }
      } else if (t.reaping !== undefined) {
        await t.reaping;
      }
      exit ??= init.exit ?? { pid: init.pid, exitStatus: 255, exitedAt: nowRfc3339() };
      finalize(t, init, exit);
      for (const p of t.execs.values()) for (const w of p.waiters.splice(0)) w(p.exit ?? exit);
      t.deleted = true;
      tasks.delete(key);
      markers.remove(ns, id);
      try {
        unmountRootfs(rootfsDir(opts.shimRoot, ns, id));
      } catch (e) {
        log.warn('rootfs unmount failed', { id, error: e instanceof Error ? e.message : String(e) });
      }
      const v = exitView('', init.exit ?? exit);
      emit(events, ns, 'taskDelete', { containerId: id, pid: v.pid, exitStatus: v.exitStatus, exitedAt: v.exitedAt, id: '' });
      return v;
    }),

    ...execMethods(ctx),
    ...controlMethods(ctx),

    hasTask: (ns, id) => tasks.has(keyOf(ns, id)) || creating.has(keyOf(ns, id)),
    hasTasks(ns) {
      for (const t of tasks.values()) if (t.namespace === ns) return true;
      return false;
    },

    adopt: () => adoptAll({ tasks, driver, log, finalize, attach, handleExit }, opts.shimRoot, markers),

    onInitExit(listener) {
      initExitListeners.push(listener);
    },

    detachAll() {
      for (const t of tasks.values()) {
        if (t.conn === undefined) continue;
        t.closing = true;
        t.conn.close();
      }
    },
  };
}
