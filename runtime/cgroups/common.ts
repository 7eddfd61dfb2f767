/*
 * Steps both drivers take the same way: removing a cgroup tree while its last processes
 * leave, and signalling every process with the cgroup frozen so none can fork past the loop.
 */
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import type { DriverContext, Signal } from './driver';
import { cgroupTree, errnoOf, procsOf } from './fs';

/** Poll interval while waiting on the kernel (runc and crun poll the same way). */
export const POLL_MS = 10;

/** True for SIGKILL by number or name. */
export function isSigkill(signal: Signal): boolean {
  return signal === 9 || signal === 'SIGKILL';
}

/**
 * Remove `dir` and every cgroup below it, children first. rmdir fails with EBUSY while a
 * cgroup still holds processes (exiting ones linger until reaped), so each is retried every
 * POLL_MS for up to ctx.timeoutMs; then the error names the pids still there. A cgroup that
 * is already gone is fine: `delete --force` may run twice.
 */
export function removeTree(ctx: DriverContext, dir: string): void {
  for (const d of cgroupTree(ctx.fs, dir).reverse()) {
    for (let waited = 0; ; waited += POLL_MS) {
      try {
        ctx.fs.rmdir(d);
        break;
      } catch (err) {
        const errno = errnoOf(err);
        if (errno === 'ENOENT') break;
        if (errno !== 'EBUSY') throw wrapSystemError(`remove cgroup ${d}`, err);
        if (waited >= ctx.timeoutMs) {
          const left = procsOf(ctx.fs, d);
          const who = left.length === 0 ? 'no processes are left, the kernel still holds it' : `pids left: ${left.join(', ')}`;
          throw new TsrunError('Unavailable', `remove cgroup ${d}: still busy after ${ctx.timeoutMs} ms (${who})`, { cause: err, errno });
        }
        ctx.sleep(POLL_MS);
      }
    }
  }
}

/** The freezer half of a driver, as `signalAll` needs it. */
export interface Freezer {
  readonly canFreeze: boolean;
  isFrozen(): boolean;
  freeze(state: 'frozen' | 'thawed'): void;
}

/**
 * Send `signal` to every pid `pids()` lists. With a freezer the cgroup is frozen first so no
 * process forks a child the loop misses, then thawed; a container that was already paused
 * stays paused, except after SIGKILL, which a frozen process only acts on once thawed.
 * A process that exits in between (ESRCH) is not an error.
 */
export function signalAll(ctx: DriverContext, freezer: Freezer, pids: () => number[], signal: Signal): void {
  let froze = false;
  const wasFrozen = freezer.canFreeze && freezer.isFrozen();
  if (freezer.canFreeze && !wasFrozen) {
    try {
      freezer.freeze('frozen');
      froze = true;
    } catch {
      // Best effort: without the freeze a process forking right now may be missed, which is
      // what a runtime without a freezer does anyway; the signal still goes out.
    }
  }
  let failure: unknown;
  try {
    for (const pid of pids()) {
      try {
        ctx.signal(pid, signal);
      } catch (err) {
        if (errnoOf(err) !== 'ESRCH') throw wrapSystemError(`signal process ${pid} (${String(signal)})`, err);
      }
    }
  } catch (err) {
    failure = err;
  }
  if (froze || (wasFrozen && isSigkill(signal))) {
    try {
      freezer.freeze('thawed');
    } catch (err) {
      failure = failure === undefined ? err : withCleanup(failure, err);
    }
  }
  if (failure !== undefined) throw failure;
}

/** `primary` with `cleanup` attached (STYLE §5: a cleanup failure is never swallowed). */
export function withCleanup(primary: unknown, cleanup: unknown): TsrunError {
  const p = primary instanceof TsrunError ? primary : wrapSystemError('cgroup operation', primary);
  const extra = cleanup instanceof Error ? cleanup : new Error(String(cleanup));
  return new TsrunError(p.code, p.message, {
    cause: p.cause ?? p,
    ...(p.errno === undefined ? {} : { errno: p.errno }),
    ...(p.stage === undefined ? {} : { stage: p.stage }),
    cleanup: [...p.cleanup, extra],
  });
}

/** `dir` and its ancestors up to (not including) `mountpoint`, top-down. */
export function levelsBelow(mountpoint: string, dir: string): string[] {
  const rel = path.relative(mountpoint, dir);
  if (rel === '' || rel.startsWith('..')) return [];
  const out: string[] = [];
  let cur = mountpoint;
  for (const part of rel.split(path.sep)) {
    cur = path.join(cur, part);
    out.push(cur);
  }
  return out;
}
