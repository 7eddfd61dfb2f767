/*
 * A task and its processes as tsrund keeps them (supervisor/tasks/local.ts drives them; adopt.ts
 * rebuilds them from a running shim after a restart).
 */
import type { ProcessExit, ProcessStatus, ShimConnection, StdioSpec } from '../../shim/api';
import { errors } from '../errors';
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
  /**
   * The end of the task's queue of operations that change it or reach its shim (Start, Kill,
   * Exec, Delete…): each starts after the one before has settled, so a Delete and whatever races
   * it happen in one order, the same for every client.
   */
  ops: Promise<void>;
  /** Delete took the task out of the map: operations queued behind it answer NotFound */
  deleted: boolean;
  /** reapDeadShim of its dead shim, under way (Delete waits for the exits it yields) */
  reaping: Promise<void> | undefined;
}

/** A task record with nothing in flight. */
export function newTask(namespace: string, id: string, dir: string, conn: ShimConnection | undefined, init: Proc, queued?: ProcessExit[]): Task {
  return {
    namespace,
    id,
    dir,
    conn,
    init,
    execs: new Map(),
    closing: false,
    heldInitExit: undefined,
    queued,
    ops: Promise.resolve(),
    deleted: false,
    reaping: undefined,
  };
}

/**
 * Run `op` after every operation queued on `t` before it has settled; NotFound if a Delete
 * queued before it removed the task. This is what makes concurrent Deletes of one task answer
 * once: the first removes it, the others find it gone.
 */
export function serialize<T>(t: Task, op: () => Promise<T>): Promise<T> {
  const run = t.ops.then(() => {
    if (t.deleted) throw errors.taskMissing(t.id);
    return op();
  });
  t.ops = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
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
