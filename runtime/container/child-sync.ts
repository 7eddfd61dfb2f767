/*
 * The runtime's side of the sync socket (the protocol ops.ts draws), for both processes the
 * helper spawns: a container's init (create) and a process exec'd into a running container. One
 * loop, so both read the child's messages, pass on its fds and turn its failures into
 * TsrunErrors the same way:
 *
 *   GO ─▶ { CONSOLE_FD → onConsole, SECCOMP_FD → onSeccomp, HOOKS → onHooks then RESUME (ABORT
 *          if it throws), PID → onPid then GO again }* ─▶ CREATED (done) | ERROR (childError)
 *          | EOF (childVanished)
 *
 * PID comes only from a create whose init is born after pivot_root (a joined pid namespace, see
 * docs/native-helper.md): the set-up process that was spawned reports init's pid and exits, and
 * init waits for a GO of its own.
 *
 * An fd that came with any other message is closed here; a message the caller has no handler for
 * is an Internal error (the plan and this loop disagree).
 */
import * as fs from 'node:fs';
import { TsrunError, describeErrno, type ErrorCode } from '../../spec/errors';
import * as native from '../native';
import { MSG, stageName } from '../plan/ops';
import type { Hook } from '../../spec';
import { runHooks, type HookState } from './hooks';

/** How long the runtime waits for one message: a hook may run that long. */
export const SYNC_TIMEOUT_MS = 5 * 60 * 1000;

/** Which child this is, for messages. */
export interface ChildKind {
  /** "container init" or "exec'd process". */
  readonly noun: string;
  /** What an ERROR message's text is prefixed with, as runc words it. */
  readonly failure: string;
}

export const INIT: ChildKind = { noun: 'container init', failure: 'unable to start container process' };
export const EXEC: ChildKind = { noun: "exec'd process", failure: 'exec failed' };

/**
 * The points where creating a container waits or starts something: written once as generator
 * steps (createSteps, childSyncSteps), run either synchronously (runSteps: the CLI, the Node
 * shim's library) or by a caller that awaits each step off its event loop (tsrund with the
 * native shim, runtime/container/remote-create.ts).
 */
export type Step =
  /** the plan's process: plan bytes, and (a remote spawner) the fds the plan names in order → native.Spawned */
  | { readonly kind: 'spawn'; readonly plan: Buffer; readonly fds: readonly number[] }
  /** one sync message → native.SyncMessage | null */
  | { readonly kind: 'recv'; readonly fd: number; readonly timeoutMs: number }
  /** hooks run in the runtime's namespaces (runHooks) → void */
  | { readonly kind: 'hooks'; readonly name: string; readonly hooks: readonly Hook[] | undefined; readonly state: HookState }
  /** a killed or finished spawned process is gone (reaped where it is our child) → void */
  | { readonly kind: 'reap'; readonly pid: number };

export type Steps<R> = Generator<Step, R, unknown>;

export function* spawnStep(plan: Buffer, fds: readonly number[]): Steps<native.Spawned> {
  return (yield { kind: 'spawn', plan, fds }) as native.Spawned;
}
export function* recvStep(fd: number, timeoutMs: number): Steps<native.SyncMessage | null> {
  return (yield { kind: 'recv', fd, timeoutMs }) as native.SyncMessage | null;
}
export function* hooksStep(name: string, hooks: readonly Hook[] | undefined, state: HookState): Steps<void> {
  if (hooks !== undefined && hooks.length > 0) yield { kind: 'hooks', name, hooks, state };
}
export function* reapStep(pid: number): Steps<void> {
  yield { kind: 'reap', pid };
}

/** Run steps in this thread: the runtime library's own way (it spawns the process itself). */
export function runSteps<R>(g: Steps<R>): R {
  let next = g.next();
  while (next.done !== true) {
    let value: unknown;
    try {
      value = runStep(next.value);
    } catch (err) {
      next = g.throw(err);
      continue;
    }
    next = g.next(value);
  }
  return next.value;
}

function runStep(s: Step): unknown {
  switch (s.kind) {
    case 'spawn':
      if (s.fds.length > 0) throw new TsrunError('Internal', 'a plan spawned in this process names its own fds: no fds to pass');
      return native.spawn(s.plan);
    case 'recv':
      return native.syncRecv(s.fd, s.timeoutMs);
    case 'hooks':
      return runHooks(s.name, s.hooks, s.state);
    case 'reap':
      try {
        native.waitpid(s.pid);
      } catch (err) {
        // already reaped (initVanished does that) or not our child
        if (!(err instanceof TsrunError && err.errno === 'ECHILD')) throw err;
      }
      return undefined;
  }
}

/** What the caller does with the messages that need it; each handler owns the fd it is given. */
export interface SyncHandlers {
  /** CONSOLE_FD: the pty master of process.terminal. */
  readonly onConsole: (fd: number) => void;
  /** SECCOMP_FD: the seccomp listener, for linux.seccomp.listenerPath. */
  readonly onSeccomp: (fd: number) => void;
  /** HOOKS at a SYNC op: run the hooks of that stage (steps); throwing aborts the child. */
  readonly onHooks?: (stage: number) => Steps<void> | void;
  /** PID: init was born with this host pid; returns the payload of init's own GO. */
  readonly onPid?: (pid: number) => Steps<Buffer>;
}

/**
 * Send GO with `goPayload` and answer the child until it reports CREATED; returns that report's
 * text ("dumpable=0 nspid=1"). Throws the child's own failure (childError), its disappearance
 * (childVanished), or what a handler threw. The caller owns child.syncFd and the child.
 */
export function runChildSync(child: native.Spawned, kind: ChildKind, goPayload: Buffer, h: SyncHandlers, timeoutMs = SYNC_TIMEOUT_MS): string {
  return runSteps(childSyncSteps(child, kind, goPayload, h, timeoutMs));
}

/** runChildSync as steps. */
export function* childSyncSteps(child: native.Spawned, kind: ChildKind, goPayload: Buffer, h: SyncHandlers, timeoutMs = SYNC_TIMEOUT_MS): Steps<string> {
  native.syncSend(child.syncFd, MSG.GO, goPayload);
  let pid = child.pid;
  for (;;) {
    const msg = yield* recvStep(child.syncFd, timeoutMs);
    if (msg === null) throw childVanished(pid, kind);
    if (msg.type === MSG.CONSOLE_FD) {
      h.onConsole(msg.fd);
      continue;
    }
    if (msg.type === MSG.SECCOMP_FD) {
      h.onSeccomp(msg.fd);
      continue;
    }
    if (msg.fd >= 0) fs.closeSync(msg.fd);
    if (msg.type === MSG.PID && h.onPid !== undefined) {
      pid = msg.value;
      native.syncSend(child.syncFd, MSG.GO, yield* h.onPid(pid));
      continue;
    }
    if (msg.type === MSG.CREATED) return msg.payload.toString('utf8');
    if (msg.type === MSG.ERROR) throw childError(msg, kind);
    if (msg.type === MSG.HOOKS && h.onHooks !== undefined) {
      try {
        const steps = h.onHooks(msg.stage);
        if (steps) yield* steps;
      } catch (err) {
        native.syncSend(child.syncFd, MSG.ABORT);
        throw err;
      }
      native.syncSend(child.syncFd, MSG.RESUME);
      continue;
    }
    throw new TsrunError('Internal', `unexpected sync message type ${msg.type} from the ${kind.noun} (pid ${pid})`);
  }
}

/** The child's ERROR message as a TsrunError: its text, the errno's description unless value = 1, and the stage. */
export function childError(msg: native.SyncMessage, kind: ChildKind): TsrunError {
  const text = msg.payload.toString('utf8').replace(/\0+$/, '');
  const errno = msg.errno > 0 ? native.errnoName(msg.errno) : undefined;
  const full = msg.value === 1 || !errno ? text : `${text}: ${describeErrno(errno)}`;
  const stage = stageName(msg.stage);
  const code: ErrorCode = errno === 'ENOENT' ? 'NotFound' : errno === 'EACCES' || errno === 'EPERM' ? 'PermissionDenied' : 'FailedPrecondition';
  return new TsrunError(code, `${kind.failure}: ${stage}: ${full}`, { stage, ...(errno ? { errno } : {}) });
}

/** The child closed its end without reporting: say how it ended, when it already has. */
export function childVanished(pid: number, kind: ChildKind): TsrunError {
  let how = 'it closed the sync socket';
  try {
    const w = native.waitpid(pid, native.WNOHANG);
    if (w.pid === pid) how = `exit code ${native.exitCodeOf(w.status)}`;
  } catch {
    // Already reaped or not our child: say what we know.
  }
  return new TsrunError('Internal', `${kind.noun} (pid ${pid}) went away before reporting (${how})`);
}
