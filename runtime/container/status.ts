/*
 * Live status, computed on every read: the stored pid only counts as our init while
 * /proc/<pid>/stat shows the start time recorded at create, so a reused pid is never mistaken
 * for the container.
 */
import * as fs from 'node:fs';
import type { ContainerState, ProcessIdentity } from './state-store';

/** OCI statuses (paused comes with the cgroup freezer). */
export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What status computation needs from the machine; tests pass fakes. */
export interface ProcView {
  /** Contents of /proc/<pid>/stat, or null when the process does not exist. */
  readStat(pid: number): string | null;
  /** Whether the exec fifo still exists (init has not been started). */
  fifoExists(): boolean;
}

/** Parsed fields of /proc/<pid>/stat we care about. */
export interface ProcStat {
  readonly state: string;
  readonly ppid: number;
  readonly startTime: string;
}

/** Parse /proc/<pid>/stat; comm may contain spaces and parentheses, so split after the last ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
  const state = rest[0];
  const ppid = rest[1];
  const start = rest[19];
  if (state === undefined || start === undefined || ppid === undefined) return null;
  return { state, ppid: parseInt(ppid, 10), startTime: start };
}

/** The host view of /proc. */
export function hostProcView(fifoPath: string): ProcView {
  return {
    readStat(pid) {
      try {
        return fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return null;
      }
    },
    fifoExists() {
      return fs.existsSync(fifoPath);
    },
  };
}

/** True while the stored init pid is still our process and not a zombie. */
export function isInitAlive(state: Pick<ContainerState, 'pid' | 'pidStartTime'>, view: ProcView): boolean {
  if (state.pid <= 0) return false;
  const text = view.readStat(state.pid);
  if (text === null) return false;
  const st = parseProcStat(text);
  if (!st || st.startTime !== state.pidStartTime) return false;
  return st.state !== 'Z' && st.state !== 'X' && st.state !== 'x';
}

/** True while the `tsrun create` named by a record is still running. */
export function isCreatorAlive(creator: ProcessIdentity, view: ProcView = hostProcView('')): boolean {
  return isInitAlive({ pid: creator.pid, pidStartTime: creator.startTime }, view);
}

/**
 * The container's status right now. A record create has not finished is "creating" while that
 * create runs, and "stopped" once it is gone: the container was never made and only waits for
 * `delete` to remove what the create left.
 */
export function computeStatus(state: Pick<ContainerState, 'pid' | 'pidStartTime' | 'creating'>, view: ProcView): Status {
  if (state.creating !== undefined) return isCreatorAlive(state.creating, view) ? 'creating' : 'stopped';
  if (!isInitAlive(state, view)) return 'stopped';
  return view.fifoExists() ? 'created' : 'running';
}
