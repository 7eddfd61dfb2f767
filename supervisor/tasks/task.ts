/*
 * A task and its processes as tsrund keeps them (supervisor/tasks/local.ts drives them; adopt.ts
 * rebuilds them from a running shim after a restart).
 */
import type { ProcessExit, ProcessStatus, ShimConnection, StdioSpec } from '../../shim/api';
import { formatRfc3339, now } from '../proto/index';

export interface Proc {
  readonly execId: string | undefined;
  pid: number;
  status: ProcessStatus;
  stdio: StdioSpec;
  exit: ProcessExit | undefined;
  /** a start() call is in flight: exits wait for its /tasks/start */
  starting: boolean;
  pendingExit: ProcessExit | undefined;
  waiters: Array<(e: ProcessExit) => void>;
}

export interface Task {
  readonly namespace: string;
  readonly id: string;
  readonly dir: string;
  conn: ShimConnection | undefined;
  readonly init: Proc;
  readonly execs: Map<string, Proc>;
  /** we closed the connection (Delete): its onClose is expected */
  closing: boolean;
  heldInitExit: { exit: ProcessExit; timer: NodeJS.Timeout } | undefined;
  /** shim events that arrived while the task was being re-adopted */
  queued: ProcessExit[] | undefined;
}

/** The key of a task in the task map. */
export function taskKey(namespace: string, id: string): string {
  return `${namespace}/${id}`;
}

export function newProc(execId: string | undefined, pid: number, status: ProcessStatus, stdio: StdioSpec): Proc {
  return { execId, pid, status, stdio, exit: undefined, starting: false, pendingExit: undefined, waiters: [] };
}

/** Now, as the RFC 3339 text shim exits carry. */
export function nowRfc3339(): string {
  return formatRfc3339(now());
}
