/*
 * Start a daemon (the native shim: docs/native-shim.md) and wait for its readiness line, without
 * fork()ing this process: child_process.spawn has libuv fork() the whole of tsrund, and copying
 * its page tables, then taking the copy-on-write faults until the child execs, was most of the
 * native shim's start. posix_spawn (the addon's spawnDetached, called on a pool thread) clones with CLONE_VM|CLONE_VFORK.
 *
 * The daemon writes its readiness line on fd 3 and closes it; it double-forks, so its first
 * process exits at once. That process is our child but not libuv's (libuv waits only for the
 * pids it spawned), so it is reaped here once the pipe ended: its write end closes when it exits.
 */
import * as net from 'node:net';
import { TsrunError } from '../spec/errors';
import * as native from '../runtime/native';

/** Spawn `binary` as [argv0, arg] and return what it wrote on fd 3 before closing it. */
export async function startDetached(binary: string, argv0: string, arg: string, timeoutMs: number, what: string): Promise<string> {
  let spawned: { pid: number; readyFd: number };
  try {
    spawned = await native.spawnDetachedAsync(binary, argv0, arg);
  } catch (e) {
    throw new TsrunError('Unavailable', `${what}: ${(e as Error).message}`, { cause: e });
  }
  const pipe = new net.Socket({ fd: spawned.readyFd, readable: true, writable: false });
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new TsrunError('Unavailable', `${what}: not ready within ${timeoutMs} ms`)), timeoutMs);
      pipe.on('data', (b: Buffer) => (text += b.toString()));
      pipe.once('error', (e) => {
        clearTimeout(timer);
        reject(new TsrunError('Unavailable', `${what}: ${e.message}`, { cause: e }));
      });
      pipe.once('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
  } finally {
    pipe.destroy();
    reapFirst(spawned.pid);
  }
}

/**
 * Reap the daemon's first process: at once when it is gone (the usual case), else it is killed
 * (it is still ours and unreaped, so the pid is its own: a daemon that never answered) and reaped
 * on a pool thread.
 */
function reapFirst(pid: number): void {
  try {
    if (native.waitpid(pid, native.WNOHANG).pid === pid) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  native.waitpidAsync(pid).catch(() => undefined);
}
