/*
 * Re-adoption (Tasks.adopt after a tsrund restart): connect to a shim found under the shim root,
 * rebuild its task from the shim's process list, and publish the exits that happened while tsrund
 * was down. A shim that cannot be reached is reaped and its task closed with an exit.
 *
 * A shim directory of a Create that never answered (no task marker, tasks/markers.ts; or, in a
 * directory from before markers, a shim that has no container) is an interrupted create: it is
 * deleted with everything it made, and leaves no task and no event behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProcessExit, ProcessState, ShimConnection, ShimDirEntry, StdioSpec } from '../../shim/api';
import type { Logger } from '../log';
import type { ShimDriver } from './local';
import { rootfsDir, unmountLeftoverRootfs } from './rootfs';
import type { TaskMarkers } from './markers';
import { newProc, newTask, nowRfc3339, taskKey, type Proc, type Task } from './task';

/** How long an interrupted create still running in its shim is given to finish before it is undone. */
const CREATE_SETTLE_MS = 10_000;
/** How long a discarded shim is given to exit after its delete (or SIGKILL). */
const SHIM_GONE_MS = 3000;
const POLL_MS = 20;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** What adoption needs from the task manager. */
export interface AdoptContext {
  readonly tasks: Map<string, Task>;
  readonly driver: Pick<ShimDriver, 'connectShim' | 'reapDeadShim' | 'listShimDirs'>;
  readonly log: Logger;
  /** record and publish a process's exit */
  finalize(t: Task, p: Proc, exit: ProcessExit): void;
  /** follow the shim's events and its connection */
  attach(t: Task, conn: ShimConnection): void;
  /** an exit as the shim reports it, with the task's ordering rules */
  handleExit(t: Task, exit: ProcessExit): void;
}

/**
 * Take back every shim under `shimRoot` (Tasks.adopt): marked tasks are adopted, interrupted
 * creates discarded. Without the marker directory the shims were started by a tsrund that kept
 * no markers: all are adopted, and marked from now on.
 */
export async function adoptAll(ctx: AdoptContext, shimRoot: string, markers: TaskMarkers): Promise<{ adopted: number; dead: number; discarded: number }> {
  const { tasks, driver, log } = ctx;
  let entries: ShimDirEntry[];
  try {
    entries = driver.listShimDirs(shimRoot);
  } catch (e) {
    log.warn('listing shim directories failed', { root: shimRoot, error: message(e) });
    entries = [];
  }
  const legacy = !markers.ensure();
  const results = await Promise.all(
    entries.map((e) =>
      adoptShim(ctx, e, legacy || markers.has(e.namespace, e.id)).catch((err: unknown) => {
        log.error('re-adopting a shim failed', { dir: e.dir, error: message(err) });
        return 'dead' as const;
      }),
    ),
  );
  // a marker without its task: tsrund died between the shim's delete and the marker's removal
  for (const m of markers.list()) if (!tasks.has(taskKey(m.namespace, m.id))) markers.remove(m.namespace, m.id);
  // Directories tsrund began for a shim and died in before writing anything but a temp file: no
  // shim ever served them (listShimDirs skips them), but their name blocks a new Create of the id.
  // Only empty ones or ones holding nothing but temp files go (a group's shared directories hold
  // more and are not listed either).
  const listed = new Set(entries.map((e) => e.dir));
  for (const ns of readdirOrEmpty(shimRoot)) {
    if (ns.startsWith('.')) continue;
    for (const id of readdirOrEmpty(path.join(shimRoot, ns))) {
      const dir = path.join(shimRoot, ns, id);
      if (listed.has(dir) || tasks.has(taskKey(ns, id))) continue;
      try {
        if (!fs.statSync(dir).isDirectory()) continue;
        if (!readdirOrEmpty(dir).every((f) => /^\..*\.tmp-\d+$/.test(f))) continue;
        fs.rmSync(dir, { recursive: true, force: true });
        log.info('removed the directory of a shim that never started', { dir });
      } catch (e) {
        log.warn('leftover shim directory', { dir, error: message(e) });
      }
    }
  }
  // rootfs mounts (image containers) of tasks that are not here: an interrupted create, or a
  // crash between mounting and starting the shim. Only mount points are touched: with a
  // --shim-root of the user's choice the directory may hold something else.
  const mounts = path.dirname(rootfsDir(shimRoot, 'ns', 'id'));
  for (const ns of readdirOrEmpty(path.dirname(mounts))) {
    for (const id of readdirOrEmpty(path.join(path.dirname(mounts), ns))) {
      if (tasks.has(taskKey(ns, id))) continue;
      try {
        if (unmountLeftoverRootfs(rootfsDir(shimRoot, ns, id))) log.info('unmounted a leftover rootfs', { namespace: ns, id });
      } catch (e) {
        log.warn('leftover rootfs mount', { namespace: ns, id, error: message(e) });
      }
    }
  }
  if (legacy) for (const t of tasks.values()) markers.put(t.namespace, t.id);
  return {
    adopted: results.filter((r) => r === 'adopted').length,
    dead: results.filter((r) => r === 'dead').length,
    discarded: results.filter((r) => r === 'discarded').length,
  };
}

/**
 * Take back the task of the shim in `entry`; `created` says whether tsrund's Create of it
 * answered (its marker exists), else the shim is an interrupted create and is discarded.
 */
export async function adoptShim(ctx: AdoptContext, entry: ShimDirEntry, created: boolean): Promise<'adopted' | 'dead' | 'discarded'> {
  if (!created) {
    await discardInterruptedCreate(ctx, entry);
    return 'discarded';
  }
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
    const t = newTask(entry.namespace, entry.id, entry.dir, undefined, newProc(undefined, exit.pid, 'running', stdio));
    tasks.set(key, t);
    finalize(t, t.init, exit);
    return 'dead';
  }
  const t: Task = newTask(entry.namespace, entry.id, conn.dir, conn, newProc(undefined, 0, 'unknown', { stdin: '', stdout: '', stderr: '', terminal: false }), []);
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
    tasks.delete(key);
    t.closing = true;
    await discardInterruptedCreate(ctx, entry, conn);
    return 'discarded';
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

/**
 * Undo a Create that tsrund died inside: let a create still running in the shim finish (so it
 * does not make a container after we looked), then delete through the shim; if the shim is gone
 * or does not answer, kill it (only a shim of this container alone: a group's shim serves others)
 * and reap what is left (container, cgroup, directory). Nothing is published.
 */
async function discardInterruptedCreate(ctx: AdoptContext, entry: ShimDirEntry, connected?: ShimConnection): Promise<void> {
  const { driver, log } = ctx;
  log.info('removing an interrupted create', { namespace: entry.namespace, id: entry.id, dir: entry.dir });
  let conn = connected;
  if (conn === undefined) conn = await driver.connectShim(entry.dir).catch(() => undefined);
  if (conn !== undefined) {
    const c = conn;
    const closed = new Promise<void>((resolve) => c.onClose(resolve));
    try {
      const deadline = Date.now() + CREATE_SETTLE_MS;
      for (;;) {
        const init = (await c.list()).find((s) => s.execId === undefined);
        // the shim's init record exists with pid 0 while its create is running
        if (init === undefined || init.pid !== 0 || init.status !== 'created' || Date.now() > deadline) break;
        await sleep(POLL_MS);
      }
      await c.delete();
      // the shim removes its directory and exits after answering; a new Create of the id waits for neither
      await Promise.race([closed, sleep(SHIM_GONE_MS)]);
      c.close();
      return;
    } catch (e) {
      log.warn('deleting the shim of an interrupted create failed, killing it', { dir: entry.dir, error: message(e) });
      c.close();
    }
  }
  const pid = conn?.shimPid || entry.shimPid;
  if (pid !== undefined && pid > 0 && ownShim(pid, entry.dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // reapDeadShim refuses while the shim is alive: a SIGKILLed process takes a moment to go
  const deadline = Date.now() + SHIM_GONE_MS;
  for (;;) {
    try {
      await driver.reapDeadShim(entry.dir);
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        log.error('cleaning up an interrupted create failed', { dir: entry.dir, error: message(e) });
        return;
      }
      await sleep(POLL_MS);
    }
  }
}

/** Whether pid is a shim started for `dir` alone (its argv or title names the directory). */
function ownShim(pid: number, dir: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a === dir || a.endsWith(` ${dir}`));
  } catch {
    return false;
  }
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
