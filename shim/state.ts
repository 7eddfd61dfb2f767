/*
 * The shim's directory and its state file. Layout of <stateRoot>/<namespace>/<id>/:
 *
 *   config.json        the OCI spec as tsrund stored it (the directory is the bundle)
 *   options.json       how startShim configured the shim (runtime choice, init stdio, json log)
 *   shim.pid           the shim's pid, written once it listens
 *   shim.sock          the unix socket clients connect to
 *   shim-state.json    ShimState below: written temp → rename after every change
 *   init.pid, <exec>.pid, log.json, runtime-root/, exec-<exec>.json   the OCI runtime's files
 *
 * shim-state.json is what reapDeadShim and listShimDirs read when the shim itself is gone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../spec/errors';
import type { JsonLogSpec, ProcessStatus, RuntimeChoice, StdioSpec } from './api';

/** Version of shim-state.json; bump on an incompatible change. */
export const SHIM_STATE_VERSION = 1;

/** File names inside a shim directory. */
export const FILES = {
  config: 'config.json',
  options: 'options.json',
  pid: 'shim.pid',
  sock: 'shim.sock',
  state: 'shim-state.json',
  log: 'shim.log',
  runtimeLog: 'log.json',
  initPid: 'init.pid',
  runtimeRoot: 'runtime-root',
} as const;

/** What startShim hands the shim process (options.json). */
export interface ShimOptions {
  readonly namespace: string;
  readonly id: string;
  readonly runtime: RuntimeChoice;
  readonly stdio: StdioSpec;
  readonly log?: JsonLogSpec;
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
}

/** One process as stored. */
export interface StoredProcess {
  /** undefined for init */
  readonly execId?: string;
  pid: number;
  status: ProcessStatus;
  readonly stdio: StdioSpec;
  exitStatus?: number;
  exitedAt?: string;
}

/** An exit recorded while no client was subscribed; sent to the next subscriber. */
export interface StoredExit {
  readonly execId?: string;
  readonly pid: number;
  readonly exitStatus: number;
  readonly exitedAt: string;
}

/** shim-state.json. */
export interface ShimState {
  readonly version: number;
  readonly namespace: string;
  readonly id: string;
  readonly runtime: RuntimeChoice;
  /** the OCI runtime's --root (library: the runtime library's root) */
  readonly runtimeRoot: string;
  shimPid: number;
  /** undefined until create() succeeded */
  init?: StoredProcess;
  execs: StoredProcess[];
  undelivered: StoredExit[];
}

/**
 * Write a file temp → rename, so a reader sees the old or the new content, never half. No fsync:
 * the shim directory is volatile state (under tsrund's --state, /run by default) that a reboot
 * makes meaningless together with the containers it describes, and a killed shim's writes are in
 * the page cache already; an fsync per state change was ~0.5 ms each on the create path.
 */
export function writeAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw wrapSystemError(`write ${file}`, err);
  }
}

/** Save the shim state into dir. */
export function writeShimState(dir: string, s: ShimState): void {
  writeAtomic(path.join(dir, FILES.state), `${JSON.stringify(s)}\n`);
}

/** Read dir's shim state; NotFound when there is none, InvalidArgument when it is not ours. */
export function readShimState(dir: string): ShimState {
  const file = path.join(dir, FILES.state);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw wrapSystemError(`read shim state ${file}`, err);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('InvalidArgument', `read shim state ${file}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  const o = v as Partial<ShimState> | null;
  if (!o || typeof o !== 'object' || o.version !== SHIM_STATE_VERSION || typeof o.id !== 'string' || !Array.isArray(o.execs)) {
    throw new TsrunError('InvalidArgument', `read shim state ${file}: not a version ${SHIM_STATE_VERSION} shim state`);
  }
  return { ...o, undelivered: Array.isArray(o.undelivered) ? o.undelivered : [] } as ShimState;
}

/** Read options.json of a shim directory. */
export function readShimOptions(dir: string): ShimOptions {
  const file = path.join(dir, FILES.options);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ShimOptions;
  } catch (err) {
    throw wrapSystemError(`read shim options ${file}`, err);
  }
}

/** The runtime root a shim uses for a runtime choice. */
export function runtimeRootFor(dir: string, rt: RuntimeChoice): string {
  return rt.kind === 'binary' && rt.root !== undefined ? rt.root : path.join(dir, FILES.runtimeRoot);
}

/** The pid recorded in shim.pid, if any. */
export function readShimPid(dir: string): number | undefined {
  try {
    const n = parseInt(fs.readFileSync(path.join(dir, FILES.pid), 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** RFC 3339 with nanoseconds (Go's RFC3339Nano: trailing zeros of the fraction trimmed). */
export function rfc3339Nano(ms = Date.now(), extraNs = 0): string {
  const iso = new Date(Math.floor(ms)).toISOString();
  const frac = String(Math.floor(ms % 1000) * 1_000_000 + Math.round((ms % 1) * 1_000_000) + extraNs).padStart(9, '0').slice(0, 9);
  const trimmed = frac.replace(/0+$/, '');
  return `${iso.slice(0, 19)}${trimmed === '' ? '' : `.${trimmed}`}Z`;
}

/** Now, with sub-millisecond precision from the monotonic clock's fraction. */
export function nowRfc3339Nano(): string {
  return rfc3339Nano(performance.timeOrigin + performance.now());
}
