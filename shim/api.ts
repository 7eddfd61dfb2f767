/*
 * The contract between tsrund and tsrun-shim, as TypeScript types.
 *
 *   tsrund ──startShim()──▶ spawns `tsrun-shim` detached (own session, not in any container cgroup)
 *      │                     in <stateRoot>/<namespace>/<id>/ ; the shim listens on that dir's shim.sock
 *      └──connectShim()──▶ ShimConnection: request/response calls + a stream of ShimEvents
 *
 * The wire format (framed protobuf over the unix socket) lives in shim/protocol/ and is described in
 * docs/shim-protocol.md; nothing outside shim/ depends on it. tsrund only uses these types and the
 * functions exported from supervisor/shims/client.ts:
 *
 *   startShim(opts: ShimStartOptions): Promise<ShimConnection>
 *   connectShim(shimDir: string): Promise<ShimConnection>          // re-adopt after a tsrund restart
 *   listShimDirs(stateRoot: string): ShimDirEntry[]               // what is on disk
 *   reapDeadShim(shimDir: string): Promise<ProcessExit>           // shim gone: kill the container's cgroup, report
 *
 * Process ids: the container's init process is named by `execId === undefined`; exec processes by
 * their exec id. Exit statuses follow containerd: the exit code, or 128+signal.
 */

/** How the shim drives the container: the runtime library in its own process, or an OCI runtime binary. */
export type RuntimeChoice =
  | { readonly kind: 'library' }
  | {
      readonly kind: 'binary';
      /** absolute path or a name looked up in PATH: runc, crun, /usr/local/bin/tsrun */
      readonly path: string;
      /** the runtime's --root; default <shimDir>/runtime-root */
      readonly root?: string;
      readonly systemdCgroup?: boolean;
    };

/** Where one process's stdio goes. Empty strings mean /dev/null (ctr --null-io). */
export interface StdioSpec {
  /** a FIFO path made by the client (the shim opens it O_RDONLY|O_NONBLOCK), or "" */
  readonly stdin: string;
  /** a FIFO path, a `file:///abs/path` URI to append to, or "" */
  readonly stdout: string;
  /** as stdout; "" with a terminal */
  readonly stderr: string;
  readonly terminal: boolean;
}

/** docker's json-file log driver settings: every line of stdout/stderr also goes to this file. */
export interface JsonLogSpec {
  readonly path: string;
  /** bytes before rotation; 0 = never rotate */
  readonly maxSize: number;
  /** files kept including the live one (path, path.1, …); at least 1 */
  readonly maxFiles: number;
}

/** What tsrund hands the shim to start it for one container. */
export interface ShimStartOptions {
  /** <stateRoot>/<namespace>/<id>: the shim's own directory (created by startShim) */
  readonly stateRoot: string;
  readonly namespace: string;
  readonly id: string;
  /** the OCI runtime spec bytes (JSON) exactly as stored; written as <bundle>/config.json */
  readonly spec: Uint8Array;
  readonly runtime: RuntimeChoice;
  readonly stdio: StdioSpec;
  readonly log?: JsonLogSpec;
  readonly noPivot?: boolean;
  readonly noNewKeyring?: boolean;
  /** the tsrun-shim executable; default bin/tsrun-shim next to the running tsrund */
  readonly shimBinary?: string;
}

/** A process's status as containerd's Status enum names it. */
export type ProcessStatus = 'created' | 'running' | 'paused' | 'stopped' | 'unknown';

/** Exit of one process. */
export interface ProcessExit {
  readonly execId?: string;
  readonly pid: number;
  readonly exitStatus: number;
  /** RFC 3339 with nanoseconds */
  readonly exitedAt: string;
}

/** What `state` reports for one process. */
export interface ProcessState {
  readonly execId?: string;
  readonly pid: number;
  readonly status: ProcessStatus;
  readonly stdio: StdioSpec;
  readonly exitStatus?: number;
  readonly exitedAt?: string;
}

/** Events a shim pushes to the connected tsrund. */
export type ShimEvent =
  | { readonly type: 'exit'; readonly exit: ProcessExit }
  | { readonly type: 'oom' }
  | { readonly type: 'exec-started'; readonly execId: string; readonly pid: number };

/** One shim directory found on disk. */
export interface ShimDirEntry {
  readonly namespace: string;
  readonly id: string;
  readonly dir: string;
  /** pid of the shim process as it recorded it, if any */
  readonly shimPid?: number;
}

/** A live connection to one shim. Every method rejects with a TsrunError (NotFound, FailedPrecondition…). */
export interface ShimConnection {
  readonly namespace: string;
  readonly id: string;
  readonly dir: string;
  readonly shimPid: number;
  /** create the container (runtime `create`): init exists but has not exec'd; returns its pid */
  create(): Promise<{ pid: number }>;
  /** start init (execId undefined) or a registered exec; returns its pid */
  start(execId?: string): Promise<{ pid: number }>;
  /** resolves when the process has exited (at once if it already has) */
  wait(execId?: string): Promise<ProcessExit>;
  state(execId?: string): Promise<ProcessState>;
  /** every process the shim knows: init first, then execs */
  list(): Promise<ProcessState[]>;
  kill(signal: number, opts?: { execId?: string; all?: boolean }): Promise<void>;
  /** register an exec process (OCI Process JSON); it runs on start(execId) */
  exec(execId: string, processJson: Uint8Array, stdio: StdioSpec): Promise<void>;
  resizePty(width: number, height: number, execId?: string): Promise<void>;
  closeStdin(execId?: string): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** host pids of every process in the container, with the exec id of those that are execs */
  pids(): Promise<Array<{ pid: number; execId?: string }>>;
  /** cgroup statistics (runtime/cgroups/stats.ts statsJson shape, bigints as decimal strings) */
  stats(): Promise<unknown>;
  /** apply linux.resources JSON */
  update(resourcesJson: Uint8Array): Promise<void>;
  /** forget a stopped exec process */
  deleteProcess(execId: string): Promise<ProcessExit>;
  /** runtime delete of the stopped container; the shim exits after answering */
  delete(): Promise<ProcessExit>;
  onEvent(listener: (e: ShimEvent) => void): void;
  /** called once when the connection drops (shim died or closed) */
  onClose(listener: () => void): void;
  close(): void;
}
