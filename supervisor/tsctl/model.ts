/*
 * What tsctl knows about a container: the container record (labels, spec, created time) joined with
 * its task (pid, status, exit) from tsrund, and the docker state derived from both:
 *
 *   no task, or task CREATED           → created
 *   task RUNNING / PAUSED              → running / paused
 *   label tsctl.restart-state          → restarting (whatever the task says meanwhile)
 *   task STOPPED                       → exited
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';
import { RpcError, type TsrundClient } from '../client';
import { fromTimestamp, type Int64 } from '../proto/index';
import { TaskStatus } from '../proto/messages';
import { COUNT_LABEL, POLICY_LABEL, STATE_LABEL } from '../restart/policy';
import { LABELS } from '../labels';

/** docker's container states (the seeds' state machine, minus "destroyed"). */
export type DockerState = 'created' | 'running' | 'paused' | 'restarting' | 'exited';

/** A container as tsctl shows it. */
export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly createdMs: number;
  readonly spec: Record<string, unknown>;
  readonly state: DockerState;
  readonly pid: number;
  readonly exitCode: number;
  /** ms since the epoch, undefined before the first exit */
  readonly finishedMs: number | undefined;
  readonly startedMs: number | undefined;
  readonly restartCount: number;
  readonly restartPolicy: string;
  readonly logPath: string | undefined;
  /** the shim reported an OOM kill during the last task (docker's State.OOMKilled) */
  readonly oomKilled: boolean;
}

/** A decoded containerd.v1.types.Process (the fields tsctl reads). */
export interface WireProcess {
  id: string;
  pid: number;
  status: number;
  exitStatus: number;
  exitedAt: { seconds: Int64; nanos: number } | null;
}

/** A decoded Container message (the fields tsctl reads). */
export interface WireContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  spec: { typeUrl: string; value: Uint8Array } | null;
  createdAt: { seconds: Int64; nanos: number } | null;
}

function ms(t: { seconds: Int64; nanos: number } | null): number | undefined {
  const ts = fromTimestamp(t);
  if (ts.seconds <= 0) return undefined;
  return ts.seconds * 1000 + Math.floor(ts.nanos / 1e6);
}

/** An RFC 3339 label as ms since the epoch, or undefined. */
function labelMs(text: string | undefined): number | undefined {
  const t = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}

/** Start time of a live process from /proc (ms since the epoch), or undefined. */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]);
    const btime = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
    if (btime === null || !Number.isFinite(startTicks)) return undefined;
    return Number(btime[1]) * 1000 + (startTicks * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Join a container record with its task (or none). */
export function toInfo(c: WireContainer, task: WireProcess | undefined): ContainerInfo {
  const labels = { ...c.labels };
  let spec: Record<string, unknown> = {};
  try {
    if (c.spec !== null) spec = JSON.parse(Buffer.from(c.spec.value).toString('utf8')) as Record<string, unknown>;
  } catch {
    spec = {};
  }
  let command: string[] = [];
  try {
    command = JSON.parse(labels[LABELS.command] ?? '[]') as string[];
  } catch {
    command = [];
  }
  let state: DockerState;
  // No task but a start on record: a restart that a stop ended half-way removed the exited task
  const exitedWithoutTask = task === undefined && labels[LABELS.startedAt] !== undefined;
  switch (task?.status) {
    case undefined:
      state = exitedWithoutTask ? 'exited' : 'created';
      break;
    case TaskStatus.CREATED:
    case TaskStatus.UNKNOWN:
      state = 'created';
      break;
    case TaskStatus.RUNNING:
      state = 'running';
      break;
    case TaskStatus.PAUSED:
    case TaskStatus.PAUSING:
      state = 'paused';
      break;
    default:
      state = 'exited';
  }
  if (labels[STATE_LABEL] === 'restarting') state = 'restarting';
  const startedLabel = labels[LABELS.startedAt];
  const startedFromLabel = startedLabel === undefined ? undefined : Date.parse(startedLabel);
  const running = state === 'running' || state === 'paused';
  const startedMs = running && task !== undefined ? (processStartMs(task.pid) ?? startedFromLabel) : startedFromLabel;
  return {
    id: c.id,
    name: labels[LABELS.name] ?? c.id.slice(0, 12),
    image: labels[LABELS.image] ?? c.image,
    command,
    labels,
    createdMs: ms(c.createdAt) ?? 0,
    spec,
    state,
    pid: running ? (task?.pid ?? 0) : 0,
    exitCode:
      state === 'restarting' || exitedWithoutTask
        ? Number(labels[LABELS.exitCode] ?? task?.exitStatus ?? 0)
        : state === 'exited'
          ? (task?.exitStatus ?? 0)
          : 0,
    finishedMs: task !== undefined && task.status === TaskStatus.STOPPED ? ms(task.exitedAt) : labelMs(labels[LABELS.finishedAt]),
    startedMs: startedMs !== undefined && Number.isFinite(startedMs) ? startedMs : undefined,
    restartCount: Number(labels[COUNT_LABEL] ?? 0) || 0,
    restartPolicy: labels[POLICY_LABEL] ?? 'no',
    logPath: labels[LABELS.logPath],
    oomKilled: labels[LABELS.oomKilled] === 'true',
  };
}

/** Every container of the namespace with its task. */
export async function listContainers(client: TsrundClient): Promise<ContainerInfo[]> {
  const [cs, ts] = await Promise.all([
    client.call<{ containers: WireContainer[] }>('Containers', 'List', {}),
    client.call<{ tasks: WireProcess[] }>('Tasks', 'List', {}),
  ]);
  const tasks = new Map(ts.tasks.map((t) => [t.id, t]));
  return cs.containers.map((c) => toInfo(c, tasks.get(c.id)));
}

/** The "No such container" error (docker exits 1 with it). */
export function noSuchContainer(ref: string): TsrunError {
  return new TsrunError('NotFound', `No such container: ${ref}`);
}

/** Resolve a reference as docker does: full id, then exact name, then unique id prefix. */
export function resolveRef(all: readonly ContainerInfo[], ref: string): ContainerInfo {
  const byId = all.find((c) => c.id === ref);
  if (byId !== undefined) return byId;
  const name = ref.startsWith('/') ? ref.slice(1) : ref;
  const byName = all.find((c) => c.name === name);
  if (byName !== undefined) return byName;
  if (/^[0-9a-f]+$/.test(ref)) {
    const matches = all.filter((c) => c.id.startsWith(ref));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new TsrunError('InvalidArgument', `multiple IDs found with provided prefix: ${ref}`);
  }
  throw noSuchContainer(ref);
}

/** Look one container up by reference. */
export async function findContainer(client: TsrundClient, ref: string): Promise<ContainerInfo> {
  return resolveRef(await listContainers(client), ref);
}

/** Re-read one container by id (after a change). */
export async function getContainer(client: TsrundClient, id: string): Promise<ContainerInfo> {
  const { container } = await client.call<{ container: WireContainer }>('Containers', 'Get', { id });
  let task: WireProcess | undefined;
  try {
    task = (await client.call<{ process: WireProcess }>('Tasks', 'Get', { containerId: id })).process;
  } catch (e) {
    if (!(e instanceof RpcError) || e.errorCode() !== 'NotFound') throw e;
  }
  return toInfo(container, task);
}

/** Set (value string) or remove (undefined) labels of a container. */
export async function setLabels(client: TsrundClient, id: string, patch: Record<string, string | undefined>): Promise<void> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(patch)) labels[k] = v ?? '';
  await client.call('Containers', 'Update', { container: { id, labels }, updateMask: { paths: Object.keys(patch).map((k) => `labels.${k}`) } });
}

/** The status of the container's task (containerd's Status enum, lower-case), or undefined without one. */
export async function taskStatus(client: TsrundClient, id: string): Promise<'created' | 'running' | 'stopped' | 'paused' | 'unknown' | undefined> {
  try {
    const { process } = await client.call<{ process: WireProcess }>('Tasks', 'Get', { containerId: id });
    return (['unknown', 'created', 'running', 'stopped', 'paused', 'paused'] as const)[process.status] ?? 'unknown';
  } catch (e) {
    if (e instanceof RpcError && e.errorCode() === 'NotFound') return undefined;
    throw e;
  }
}

/** Does the container have a task (of any status)? */
export async function hasTask(client: TsrundClient, id: string): Promise<boolean> {
  try {
    await client.call('Tasks', 'Get', { containerId: id });
    return true;
  } catch (e) {
    if (e instanceof RpcError && e.errorCode() === 'NotFound') return false;
    throw e;
  }
}
