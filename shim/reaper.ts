/*
 * Reaping without stealing from child_process.
 *
 * The shim is a child subreaper (PR_SET_CHILD_SUBREAPER): container processes whose parent (the
 * OCI runtime binary) exits are re-parented to it, and it must reap them to learn their exit
 * status. Node's child_process reaps its own children with waitpid(pid, WNOHANG) from libuv's
 * SIGCHLD handler; a waitpid(-1) here would steal those statuses, and a blocking waitpid on a
 * koffi worker would hold one of libuv's four threadpool threads per process.
 *
 * So on every SIGCHLD (and on a slow timer as a safety net) the reaper lists its own children
 * from /proc/self/task/<tid>/children (zombies included), skips the pids child_process owns
 * (registered by spawnOwned), and calls waitpid(pid, WNOHANG) on each of the others. A reaped
 * pid is reported to the listener with its raw wait status. docs/shim-protocol.md has the why.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as native from '../runtime/native';

/** Called with each reaped pid and its raw wait status. */
export type ExitListener = (pid: number, status: number) => void;

const owned = new Set<number>();
let listener: ExitListener | undefined;
let timer: NodeJS.Timeout | undefined;

/** child_process.spawn whose child the reaper leaves to libuv. */
export function spawnOwned(file: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(file, args, opts);
  const pid = child.pid;
  if (pid !== undefined) {
    owned.add(pid);
    child.once('exit', () => owned.delete(pid));
  }
  return child;
}

/** Children of this process, from /proc (all threads: a re-parented orphan may hang off any). */
export function ownChildren(): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const p of fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(/\s+/)) {
        const n = parseInt(p, 10);
        if (Number.isInteger(n) && n > 0) out.push(n);
      }
    } catch {
      // The thread ended while we looked.
    }
  }
  return out;
}

/** Reap every exited child that child_process does not own; returns how many were reaped. */
export function reapNow(): number {
  let n = 0;
  for (const pid of ownChildren()) {
    if (owned.has(pid)) continue;
    let r: native.WaitResult;
    try {
      r = native.waitpid(pid, native.WNOHANG);
    } catch {
      continue; // ECHILD: reaped elsewhere (libuv's own child that exited in between)
    }
    if (r.pid === pid) {
      n++;
      listener?.(pid, r.status);
    }
  }
  return n;
}

/** Become a subreaper and start reaping; the listener gets every exit. */
export function startReaper(onExit: ExitListener, pollMs = 1000): void {
  listener = onExit;
  native.prctl(native.PR.SET_CHILD_SUBREAPER, 1n);
  process.on('SIGCHLD', () => void reapNow());
  timer = setInterval(() => void reapNow(), pollMs);
  timer.unref();
}

/** Stop the safety-net timer (the shim is exiting). */
export function stopReaper(): void {
  if (timer) clearInterval(timer);
  timer = undefined;
}

/** The exit status containerd reports: the exit code, or 128+signal. */
export function exitStatusOf(status: number): number {
  return native.exitCodeOf(status);
}
