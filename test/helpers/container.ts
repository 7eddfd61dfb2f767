/**
 * Container-level helpers on top of `Runtime`: typed `state`, create+start in one step,
 * waiting for a status, and a host-controlled gate a container can wait on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Bundle } from './bundle';
import type { OciMount } from './oci';
import { describe, type CreateOptions, type RunResult, type Runtime } from './runtime';
import { waitFor } from './wait';

/** Container statuses of the runtime-spec. */
export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** The JSON printed by `state` (runtime-spec "state" plus runc's extra fields). */
export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: Status;
  bundle: string;
  rootfs?: string;
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

const statuses: readonly string[] = ['creating', 'created', 'running', 'paused', 'stopped'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse and check `state` output; throws with the text when it is not a valid state. */
export function parseState(text: string): ContainerState {
  const v: unknown = JSON.parse(text);
  if (!isRecord(v)) throw new Error(`state is not a JSON object: ${text}`);
  const { ociVersion, id, pid, status, bundle } = v;
  if (typeof ociVersion !== 'string' || typeof id !== 'string' || typeof bundle !== 'string') {
    throw new Error(`state lacks ociVersion/id/bundle strings: ${text}`);
  }
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 0) throw new Error(`state pid is not a non-negative integer: ${text}`);
  if (typeof status !== 'string' || !statuses.includes(status)) throw new Error(`state status is not a spec status: ${text}`);
  const out: ContainerState = { ociVersion, id, pid, status: status as Status, bundle };
  if (typeof v['rootfs'] === 'string') out.rootfs = v['rootfs'];
  if (typeof v['created'] === 'string') out.created = v['created'];
  if (typeof v['owner'] === 'string') out.owner = v['owner'];
  return out;
}

/** `state <id>` parsed; throws with the runtime's output when it fails. */
export function readState(rt: Runtime, id: string): ContainerState {
  const r = rt.state(id);
  if (r.code !== 0) throw new Error(`state failed: ${describe(r)}`);
  return parseState(r.stdout);
}

/** The status of `id`, or 'missing' when `state` fails. */
export function statusOf(rt: Runtime, id: string): Status | 'missing' {
  const r = rt.state(id);
  if (r.code !== 0) return 'missing';
  return parseState(r.stdout).status;
}

/** Wait until `id` reaches `status` ('missing' = state fails); resolves to whether it did. */
export function waitForStatus(rt: Runtime, id: string, status: Status | 'missing', timeoutMs = 5000): Promise<boolean> {
  return waitFor(() => statusOf(rt, id) === status, timeoutMs, 25);
}

/** What `runDetached` started. */
export interface Detached {
  id: string;
  /** Host pid of the container's init, from `state` after `create`. */
  pid: number;
  /** The `create` call; its stdout/stderr files receive the container's stdio. */
  create: RunResult;
  start: RunResult;
}

/** `create` + `start` of bundle `b` (id defaults to `b.id`); throws if either fails. */
export function runDetached(b: Bundle, opts: CreateOptions & { id?: string } = {}): Detached {
  const { id = b.id, ...createOpts } = opts;
  const create = b.rt.create(id, b.dir, { pidFile: b.pidFile, ...createOpts });
  if (create.code !== 0) throw new Error(`create failed: ${describe(create)}`);
  const pid = readState(b.rt, id).pid;
  const start = b.rt.start(id);
  if (start.code !== 0) throw new Error(`start failed: ${describe(start)}`);
  return { id, pid, create, start };
}

/** A host-controlled gate: the container blocks in `wait` until the test calls `open()`. */
export interface Gate {
  /** Bind mount to add to `mounts` (host dir → /ctl). */
  mount: OciMount;
  /** Shell snippet that blocks until the gate opens. */
  wait: string;
  /** The host directory behind /ctl (the container may leave files there). */
  hostDir: string;
  open(): void;
}

/** A gate backed by `<sandbox>/<name>` bind-mounted at /ctl. */
export function makeGate(b: Pick<Bundle, 'hostDir'>, name = 'ctl'): Gate {
  const hostDir = b.hostDir(name);
  return {
    mount: { destination: '/ctl', type: 'bind', source: hostDir, options: ['rbind', 'rw'] },
    wait: 'while [ ! -e /ctl/go ]; do sleep 0.05; done',
    hostDir,
    open: () => fs.writeFileSync(path.join(hostDir, 'go'), ''),
  };
}

/** Every line of a JSON-lines log file, parsed (unparsable lines become `{unparsable: line}`). */
export function logLines(file: string): unknown[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l): unknown => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        return { unparsable: l };
      }
    });
}

/** RFC 3339 date-time (what Go's time.Time accepts when decoding JSON). */
export const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** True if `v` is a `{"level":"error","msg":"…","time":RFC3339}` object. */
export function isErrorLogLine(v: unknown): boolean {
  return isRecord(v) && v['level'] === 'error' && typeof v['msg'] === 'string' && v['msg'] !== '' && typeof v['time'] === 'string' && rfc3339.test(v['time']);
}
