/*
 * Re-adoption (Tasks.adopt after a tsrund restart): connect to a shim found under the shim root,
 * rebuild its task from the shim's process list, and publish the exits that happened while tsrund
 * was down. A shim that cannot be reached is reaped and its task closed with an exit; a shim whose
 * create never finished (tsrund died inside Create) is deleted.
 */
import type { ProcessExit, ProcessState, ShimConnection, ShimDirEntry, StdioSpec } from '../../shim/api';
import type { Logger } from '../log';
import type { ShimDriver } from './local';
import { newProc, nowRfc3339, taskKey, type Proc, type Task } from './task';

/** What adoption needs from the task manager. */
export interface AdoptContext {
  readonly tasks: Map<string, Task>;
  readonly driver: Pick<ShimDriver, 'connectShim' | 'reapDeadShim'>;
  readonly log: Logger;
  /** record and publish a process's exit */
  finalize(t: Task, p: Proc, exit: ProcessExit): void;
  /** follow the shim's events and its connection */
  attach(t: Task, conn: ShimConnection): void;
  /** an exit as the shim reports it, with the task's ordering rules */
  handleExit(t: Task, exit: ProcessExit): void;
}

/** Take back the task of the shim in `entry`. */
export async function adoptShim(ctx: AdoptContext, entry: ShimDirEntry): Promise<'adopted' | 'dead'> {
  const { tasks, driver, log, finalize, attach, handleExit } = ctx;
  const key = taskKey(entry.namespace, entry.id);
  let conn: ShimConnection;
  try {
    conn = await driver.connectShim(entry.dir);
  } catch (e) {
    log.warn('shim not reachable, reaping it', { dir: entry.dir, error: e instanceof Error ? e.message : String(e) });
    const exit = await driver.reapDeadShim(entry.dir).catch(
      (): ProcessExit => ({ pid: 0, exitStatus: 137, exitedAt: nowRfc3339() }),
    );
    const stdio: StdioSpec = { stdin: '', stdout: '', stderr: '', terminal: false };
    const t: Task = {
      namespace: entry.namespace,
      id: entry.id,
      dir: entry.dir,
      conn: undefined,
      init: newProc(undefined, exit.pid, 'running', stdio),
      execs: new Map(),
      closing: false,
      heldInitExit: undefined,
      queued: undefined,
    };
    tasks.set(key, t);
    finalize(t, t.init, exit);
    return 'dead';
  }
  const t: Task = {
    namespace: entry.namespace,
    id: entry.id,
    dir: conn.dir,
    conn,
    init: newProc(undefined, 0, 'unknown', { stdin: '', stdout: '', stderr: '', terminal: false }),
    execs: new Map(),
    closing: false,
    heldInitExit: undefined,
    queued: [],
  };
  tasks.set(key, t);
  attach(t, conn);
  let states: ProcessState[];
  try {
    states = await conn.list();
  } catch (e) {
    log.warn('listing a re-adopted shim failed', { dir: entry.dir, error: e instanceof Error ? e.message : String(e) });
    states = [];
  }
  const initState = states.find((s) => s.execId === undefined);
  if (initState === undefined || (initState.pid === 0 && initState.status === 'unknown')) {
    // tsrund died inside Create before the container existed: no client ever saw this task
    log.info('removing the shim of an interrupted create', { dir: entry.dir });
    tasks.delete(key);
    t.closing = true;
    try {
      await conn.delete();
      conn.close();
    } catch {
      conn.close();
      try {
        if (conn.shimPid > 0) process.kill(conn.shimPid, 'SIGKILL');
      } catch {
        // already gone
      }
      await driver.reapDeadShim(entry.dir).catch(() => undefined);
    }
    return 'dead';
  }
  const stoppedExits: ProcessExit[] = [];
  for (const s of states) {
    const p = s.execId === undefined ? t.init : newProc(s.execId, s.pid, s.status, s.stdio);
    p.pid = s.pid;
    p.status = s.status === 'stopped' ? 'running' : s.status;
    p.stdio = s.stdio;
    if (s.execId !== undefined) t.execs.set(s.execId, p);
    if (s.status === 'stopped') {
      const exit: ProcessExit = {
        pid: s.pid,
        exitStatus: s.exitStatus ?? 255,
        exitedAt: s.exitedAt ?? nowRfc3339(),
        ...(s.execId !== undefined ? { execId: s.execId } : {}),
      };
      if (s.execId === undefined) stoppedExits.push(exit);
      else stoppedExits.unshift(exit);
    }
  }
  const queued = t.queued ?? [];
  t.queued = undefined;
  for (const e of [...stoppedExits, ...queued]) handleExit(t, e);
  return 'adopted';
}
