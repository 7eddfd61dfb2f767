/*
 * Create a container whose init another process spawns: tsrund with the native shim
 * (docs/native-shim.md). The runtime library's own create (createSteps) runs here with every
 * step awaited, so the caller's event loop goes on while init sets itself up and hooks run:
 *
 *   spawn  the caller's spawner (the shim's SPAWN_PLAN): init is the spawner's child
 *   recv   the sync socket on a libuv pool thread (native.syncRecvAsync)
 *   hooks  child processes of ours, awaited (runHooksAsync)
 *   reap   the spawner reaps; we wait until the process is gone
 *
 * The container's state directory is the one `tsrun create` writes, so `tsrun` (kill, delete,
 * state) and the library go on working with it.
 */
import * as fs from 'node:fs';
import * as native from '../native';
import { TsrunError, codeForErrno } from '../../spec/errors';
import { SYNC_TIMEOUT_MS, type Step, type Steps } from './child-sync';
import { createSteps, type CreateOptions } from './create';
import { execSteps, type ExecOptions, type StartedExec } from './exec';
import { runHooksAsync } from './hooks';
import type { ContainerState } from './state-store';

/** Spawns an encoded plan somewhere else; `fds` are the ones it names from remoteFdBase + 3 on. */
export type RemoteSpawn = (plan: Buffer, fds: readonly number[]) => Promise<native.Spawned>;

/** How long a killed process may take to be gone before create's cleanup goes on regardless. */
const GONE_TIMEOUT_MS = 5000;

/** createContainer with init spawned by `spawn` (opts.remoteFdBase says how the plan numbers fds). */
export async function createContainerRemote(opts: CreateOptions & { readonly remoteFdBase: number }, spawn: RemoteSpawn): Promise<ContainerState> {
  return runStepsAsync(createSteps(opts), spawn);
}

/** startExec with the process spawned by `spawn` (opts.remoteFdBase says how the plan numbers fds). */
export async function startExecRemote(opts: ExecOptions & { readonly remoteFdBase: number }, spawn: RemoteSpawn): Promise<StartedExec> {
  return runStepsAsync(execSteps(opts), spawn);
}

async function runStepsAsync<R>(g: Steps<R>, spawn: RemoteSpawn): Promise<R> {
  let next = g.next();
  while (next.done !== true) {
    let value: unknown;
    try {
      value = await runStep(next.value, spawn);
    } catch (err) {
      next = g.throw(err);
      continue;
    }
    next = g.next(value);
  }
  return next.value;
}

async function runStep(s: Step, spawn: RemoteSpawn): Promise<unknown> {
  switch (s.kind) {
    case 'spawn':
      return spawn(s.plan, s.fds);
    case 'recv':
      return native.syncRecvAsync(s.fd, s.timeoutMs);
    case 'hooks':
      return runHooksAsync(s.name, s.hooks, s.state);
    case 'reap':
      return gone(s.pid);
  }
}

/** Until pid has exited (a zombie counts: the spawner reaps it, and it holds nothing any more). */
async function gone(pid: number): Promise<void> {
  const deadline = Date.now() + GONE_TIMEOUT_MS;
  for (let wait = 1; Date.now() < deadline; wait = Math.min(wait * 2, 50)) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    if (/^\d+ \(.*\) [ZX] /s.test(stat)) return;
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * One request on a fresh connection to a unix socket, with fds attached (SCM_RIGHTS), and its
 * answer with the fd that came with it (-1 when none): the native shim's SPAWN_PLAN. The connect
 * and the send are immediate on a listening local socket; the answer is awaited on a pool thread.
 */
export async function requestWithFds(socketPath: string, frame: Buffer, fds: readonly number[], timeoutMs = SYNC_TIMEOUT_MS): Promise<{ answer: Buffer; fd: number }> {
  const sock = native.unixConnect(socketPath);
  try {
    let sent = native.sendFds(sock, frame, fds);
    while (sent < frame.length) sent += fs.writeSync(sock, frame, sent);
    const got = await native.recvWithFdAsync(sock, timeoutMs);
    if (got === null) throw new TsrunError('Unavailable', `${socketPath}: the connection closed before an answer`);
    return { answer: got.data, fd: got.fd };
  } finally {
    fs.closeSync(sock);
  }
}

/** A remote spawner's failure with the helper's errno (when it sent one), as native.spawn words it. */
export function spawnError(err: TsrunError, errno: number | undefined): TsrunError {
  if (errno === undefined || errno <= 0) return new TsrunError(err.code, err.message, { cause: err, stage: 'clone' });
  const name = native.errnoName(errno);
  return new TsrunError(codeForErrno(name), err.message, { cause: err, errno: name, stage: 'clone' });
}
