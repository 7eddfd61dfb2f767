/*
 * The task manager's contract (supervisor/tasks/local.ts implements it; services/tasks.ts,
 * daemon.ts and restart/policy.ts use it), and what its parts share (TaskContext).
 */
import type { ProcessExit, ProcessStatus, ShimConnection, ShimDirEntry, ShimStartOptions, StdioSpec } from '../../shim/api';
import type { Exchange } from '../events/exchange';
import { parseRfc3339, type AnyValue, type Timestamp } from '../proto/index';
import type { Proc, Task } from './task';

/** The functions of supervisor/shims/client.ts tsrund uses (injected so tests can fake them). */
export interface ShimDriver {
  startShim(opts: ShimStartOptions): Promise<ShimConnection>;
  connectShim(shimDir: string): Promise<ShimConnection>;
  listShimDirs(stateRoot: string): ShimDirEntry[];
  reapDeadShim(shimDir: string): Promise<ProcessExit>;
}

/** A process as Tasks.Get/List report it. */
export interface ProcessView {
  id: string;
  pid: number;
  status: ProcessStatus;
  stdio: StdioSpec;
  exitStatus: number;
  exitedAt: Timestamp | undefined;
}

/** Exit facts as Wait/Delete answer them. */
export interface ExitView {
  id: string;
  pid: number;
  exitStatus: number;
  exitedAt: Timestamp;
}

/** What Tasks.Create needs beyond the container record. */
export interface CreateInput {
  stdio: StdioSpec;
  options: AnyValue | null;
  rootfsMounts: number;
  /** the mounts themselves (image containers): mounted for the shim by tasks/rootfs.ts */
  rootfs?: ReadonlyArray<{ type: string; source: string; target: string; options: string[] }>;
  checkpoint: boolean;
}

/** Called after a task's init exit is published (the restart-policy loop listens). */
export type InitExitListener = (namespace: string, id: string, exit: ProcessExit) => void;

/** The task logic the Tasks service adapts. */
export interface Tasks {
  create(namespace: string, id: string, input: CreateInput): Promise<{ pid: number }>;
  start(namespace: string, id: string, execId: string | undefined): Promise<{ pid: number }>;
  wait(namespace: string, id: string, execId: string | undefined): Promise<ExitView>;
  get(namespace: string, id: string, execId: string | undefined): ProcessView;
  list(namespace: string): ProcessView[];
  kill(namespace: string, id: string, execId: string | undefined, signal: number, all: boolean): Promise<void>;
  delete(namespace: string, id: string): Promise<ExitView>;
  exec(namespace: string, id: string, execId: string, spec: AnyValue | null, stdio: StdioSpec): Promise<void>;
  deleteProcess(namespace: string, id: string, execId: string): Promise<ExitView>;
  resizePty(namespace: string, id: string, execId: string | undefined, width: number, height: number): Promise<void>;
  closeIO(namespace: string, id: string, execId: string | undefined): Promise<void>;
  pause(namespace: string, id: string): Promise<void>;
  resume(namespace: string, id: string): Promise<void>;
  listPids(namespace: string, id: string): Promise<Array<{ pid: number; execId?: string }>>;
  /** (container id, cgroup stats) of the namespace's tasks that match the filters */
  stats(namespace: string, filters: readonly string[]): Promise<Array<{ id: string; stats: unknown }>>;
  update(namespace: string, id: string, resources: AnyValue | null): Promise<void>;
  hasTask(namespace: string, id: string): boolean;
  hasTasks(namespace: string): boolean;
  /**
   * find every live shim under the shim root and take its tasks back; exits missed while down are
   * published; shims of Creates that never answered are removed (`discarded`)
   */
  adopt(): Promise<{ adopted: number; dead: number; discarded: number }>;
  onInitExit(listener: InitExitListener): void;
  /** close every shim connection (the shims and containers keep running) */
  detachAll(): void;
}

/** Settings of the task manager. */
export interface TaskOptions {
  shimRoot: string;
  /** "library" or an OCI runtime binary path */
  defaultRuntime: string;
  shimBinary: string | undefined;
  /** how long an init exit waits for running execs' exits (ms) */
  execGraceMs?: number;
  /** json-file logs of containers labelled tsctl.log-driver=json-file; default <shimRoot>/.logs (listShimDirs skips it: no options.json) */
  logRoot?: string;
}

/** Exit facts of a process as Wait/Delete answer them. */
export function exitView(id: string, e: ProcessExit): ExitView {
  return { id, pid: e.pid, exitStatus: e.exitStatus, exitedAt: parseRfc3339(e.exitedAt) };
}

/** What the task manager's parts (local.ts, exec.ts, control.ts) share. */
export interface TaskContext {
  readonly tasks: Map<string, Task>;
  readonly events: Exchange;
  /** the task, or NotFound */
  getTask(ns: string, id: string): Task;
  /** init (execId undefined) or an exec of t, or NotFound */
  getProc(t: Task, execId: string | undefined): Proc;
  /** t's shim connection, or FailedPrecondition when its shim is gone */
  liveConn(t: Task): ShimConnection;
  /** run `op` on the task in its queue of operations (task.ts serialize), or NotFound */
  queued<T>(ns: string, id: string, op: (t: Task) => Promise<T>): Promise<T>;
}
