/*
 * Finding and signalling a container's processes without cgroups: by the namespaces its init was
 * created in (a private pid namespace, else its mount namespace), and always through a pidfd so a
 * recycled pid is never signalled.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { TsrunError } from '../../spec/errors';
import * as native from '../native';
import type { ContainerState } from './state-store';
import { parseProcStat } from './status';
import { cgroupOfState } from './cgroup';

/** Signal numbers by name (without the SIG prefix). */
const SIGNALS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(osConstants.signals).map(([k, v]) => [k.replace(/^SIG/, ''), v]),
);

/** Parse "KILL", "SIGKILL", "kill", "9" into a signal number; InvalidArgument otherwise. */
export function parseSignal(s: string): number {
  if (/^\d+$/.test(s)) {
    const n = parseInt(s, 10);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = s.toUpperCase().replace(/^SIG/, '');
    const rt = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
    if (rt) return name.startsWith('RTMIN') ? 34 + parseInt(rt[1] ?? '0', 10) : 64 - parseInt(rt[1] ?? '0', 10);
    const n = SIGNALS[name];
    if (n !== undefined) return n;
  }
  throw new TsrunError('InvalidArgument', `invalid signal ${JSON.stringify(s)}`);
}

function readLink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** Namespace links of a live process, recorded at create. */
export function namespaceLinks(pid: number): { pid?: string; mnt?: string } {
  const out: { pid?: string; mnt?: string } = {};
  const p = readLink(`/proc/${pid}/ns/pid`);
  const m = readLink(`/proc/${pid}/ns/mnt`);
  if (p) out.pid = p;
  if (m) out.mnt = m;
  return out;
}

/**
 * Host pids of every process in the container (init first when alive): the cgroup's list when
 * the container has one, else the processes in the namespaces it created (a scan of /proc).
 */
export function containerPids(state: ContainerState): number[] {
  if (state.cgroupPath !== undefined) {
    const pids = cgroupOfState(state).pids();
    return pids.sort((a, b) => (a === state.pid ? -1 : b === state.pid ? 1 : a - b));
  }
  if (state.processScope === 'init') {
    const st = parseProcStat(readOr(`/proc/${state.pid}/stat`));
    return st && st.startTime === state.pidStartTime ? [state.pid] : [];
  }
  const kind = state.processScope;
  const ns = state.namespaces[kind];
  if (!ns) return [];
  const own = readLink(`/proc/self/ns/${kind}`);
  // Never treat the host's own namespace as the container's: that would signal the whole machine.
  if (own === ns) return [];
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = parseInt(name, 10);
    if (readLink(`/proc/${pid}/ns/${kind}`) === ns) pids.push(pid);
  }
  pids.sort((a, b) => (a === state.pid ? -1 : b === state.pid ? 1 : a - b));
  return pids;
}

/** Signal one process only if it still has the start time we expect (or any, if startTime is undefined). */
export function signalProcess(pid: number, sig: number, startTime: string | undefined): boolean {
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(pid);
  } catch (err) {
    if (err instanceof TsrunError && err.errno === 'ESRCH') return false;
    throw err;
  }
  try {
    // The pidfd pins the process: if the start time matches now, the signal reaches that process.
    if (startTime !== undefined) {
      const st = parseProcStat(readOr(`/proc/${pid}/stat`));
      if (!st || st.startTime !== startTime) return false;
    }
    try {
      native.pidfdSendSignal(pidfd, sig, `signal ${sig} to process ${pid}`);
    } catch (err) {
      if (err instanceof TsrunError && err.errno === 'ESRCH') return false;
      throw err;
    }
    return true;
  } finally {
    fs.closeSync(pidfd);
  }
}

function readOr(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** Signal every process of the container; returns how many were signalled. */
export function signalAll(state: ContainerState, sig: number): number {
  let n = 0;
  for (const pid of containerPids(state)) {
    const st = parseProcStat(readOr(`/proc/${pid}/stat`));
    if (st && signalProcess(pid, sig, st.startTime)) n++;
  }
  return n;
}

/** Wait until none of the container's processes is alive (zombies count as gone). */
export async function waitGone(state: ContainerState, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = containerPids(state).filter((pid) => {
      const st = parseProcStat(readOr(`/proc/${pid}/stat`));
      return st !== null && st.state !== 'Z' && st.state !== 'X';
    });
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 10));
  }
}
