/*
 * How the shim drives its container: one interface, two implementations —
 * library.ts (the runtime library in this process; no process per operation) and
 * binary.ts (an OCI runtime binary through its CLI, with containerd-shim-runc-v2's argv).
 */

/** Where a new process's stdio comes from: fds of the shim (-1 = /dev/null) or a console socket. */
export interface RuntimeStdio {
  readonly fds: readonly [number, number, number];
  readonly consoleSocket?: string;
}

/** One container as the shim drives it. Every method rejects with a TsrunError. */
export interface Runtime {
  /** `create`: init blocked before exec; returns its host pid. */
  create(stdio: RuntimeStdio): Promise<number>;
  start(): Promise<void>;
  /** `exec --detach`: returns the new process's host pid. */
  exec(execId: string, processJson: string, stdio: RuntimeStdio): Promise<number>;
  kill(signal: number, all: boolean): Promise<void>;
  delete(force: boolean): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** host pids in the container */
  ps(): Promise<number[]>;
  /** runc's `events --stats` data, counters as decimal strings */
  stats(): Promise<unknown>;
  update(resourcesJson: string): Promise<void>;
}

/** Parameters every implementation gets. */
export interface RuntimeParams {
  readonly id: string;
  /** the bundle (the shim dir) */
  readonly bundle: string;
  /** the runtime's --root */
  readonly root: string;
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
}
