/*
 * Task steps several commands share: start a container's task detached (its output only in the
 * json-file log), stop with a grace period, remove a container with its task and log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { TsrunError } from '../../spec/errors';
import { RpcError, type TsrundClient } from '../client';
import { formatRfc3339, now } from '../proto/index';
import { STOPPED_LABEL } from '../restart/policy';
import { LABELS } from '../labels';
import { removeSnapshot, rootfsMounts, SNAPSHOTTER } from './image-run';
import { setLabels, taskStatus, type ContainerInfo } from './model';

/** Sleep `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Signal number of a name ("TERM", "SIGTERM", "9"). */
export function signalNumber(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as keyof typeof os.constants.signals;
  const n = os.constants.signals[name];
  if (n === undefined) throw new TsrunError('InvalidArgument', `invalid signal: ${text}`);
  return n;
}

/** Is the error tsrund's NotFound? */
export function isNotFound(e: unknown): boolean {
  return e instanceof RpcError && e.errorCode() === 'NotFound';
}

/** Delete the container's task if it has one (it must be stopped or created). */
export async function deleteTask(client: TsrundClient, id: string): Promise<void> {
  try {
    await client.call('Tasks', 'Delete', { containerId: id });
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** Start the container's task detached: a fresh task (the old stopped one deleted), no stdio but the log. */
export async function startDetached(client: TsrundClient, id: string): Promise<number> {
  await deleteTask(client, id);
  try {
    const rootfs = await rootfsMounts(client, id);
    await client.call('Tasks', 'Create', { containerId: id, rootfs, stdin: '', stdout: '', stderr: '', terminal: false });
    const { pid } = await client.call<{ pid: number }>('Tasks', 'Start', { containerId: id });
    try {
      await setLabels(client, id, { [LABELS.startedAt]: formatRfc3339(now()) });
    } catch (e) {
      // run -d --rm of a short command: it may have exited and been removed (auto-remove) already
      if (!isNotFound(e)) throw e;
    }
    return pid;
  } catch (e) {
    await deleteTask(client, id).catch(() => undefined);
    throw e;
  }
}

/** Wait for the init exit with a deadline; true when it exited. */
async function waitExit(client: TsrundClient, id: string, ms: number): Promise<boolean> {
  try {
    await client.call('Tasks', 'Wait', { containerId: id }, { timeoutMs: ms });
    return true;
  } catch (e) {
    if (e instanceof RpcError && e.code === 4 /* DEADLINE_EXCEEDED */) return false;
    if (isNotFound(e)) return true;
    throw e;
  }
}

/** docker stop: mark manually stopped, SIGTERM (or `signal`), after `graceS` seconds SIGKILL to every process. */
export async function stopContainer(client: TsrundClient, c: ContainerInfo, graceS: number, signal = 15): Promise<void> {
  await setLabels(client, c.id, { [STOPPED_LABEL]: 'true' });
  // A restart policy may have started the task again since `c` was read: look once more now that
  // tsrund can see the label (it will not restart it after this).
  const status = await taskStatus(client, c.id);
  if (status !== 'running' && status !== 'paused' && status !== 'created') return;
  c = { ...c, state: status === 'created' ? 'running' : status };
  try {
    if (c.state === 'paused') await client.call('Tasks', 'Resume', { containerId: c.id }).catch(() => undefined);
    await client.call('Tasks', 'Kill', { containerId: c.id, signal, all: false });
  } catch (e) {
    if (isNotFound(e)) return; // already finished
    throw e;
  }
  if (await waitExit(client, c.id, Math.max(0, graceS) * 1000)) return;
  try {
    await client.call('Tasks', 'Kill', { containerId: c.id, signal: 9, all: true });
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  await waitExit(client, c.id, 30_000);
}

/** Remove a stopped container: its task, record, image snapshot and json-file log directory. */
export async function removeContainer(client: TsrundClient, c: ContainerInfo): Promise<void> {
  const record = readRecord(client, c.id);
  await deleteTask(client, c.id);
  await removeRecord(client, c.id, record);
}

/** What removeRecord needs of a record: none of it changes when the task is deleted. */
interface RecordFields {
  snapshotter: string;
  snapshotKey: string;
  labels: Record<string, string>;
}

/**
 * Read the record for removeRecord, to be started beside the task's deletion (a round trip
 * fewer in rm and run --rm); a failure comes out where the promise is awaited.
 */
export function readRecord(client: TsrundClient, id: string): Promise<RecordFields> {
  const p = client.call<{ container: RecordFields }>('Containers', 'Get', { id }).then((r) => r.container);
  p.catch(() => undefined);
  return p;
}

/**
 * Remove the record of a container without a task, then its snapshot, json-file log directory
 * and network (and whatever `alongside` removes once the record is gone), which depend on the
 * record only, not on each other. Removed already: NotFound.
 */
export async function removeRecord(client: TsrundClient, id: string, record: Promise<RecordFields> = readRecord(client, id), alongside?: () => Promise<unknown>): Promise<void> {
  const container = await record;
  await client.call('Containers', 'Delete', { id });
  const also = alongside === undefined ? Promise.resolve() : alongside();
  const snapshot = container.snapshotKey !== '' ? removeSnapshot(client, container.snapshotter || SNAPSHOTTER, container.snapshotKey) : Promise.resolve();
  // tsrund releases the network with the record too; this waits for it, so rm returns with
  // the namespace, veth and rules gone (an older tsrund without the service has none to release).
  const network = client.call('Networks', 'Detach', { id }).then(
    () => undefined,
    (e: unknown) => {
      if (!(e instanceof RpcError && e.isUnimplemented())) throw e;
    },
  );
  const log = Promise.resolve().then(() => removeLog(container.labels[LABELS.logPath]));
  const results = await Promise.allSettled([snapshot, log, network, also]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** Remove a container's log directory (the label's path, one directory per container). */
export function removeLog(logPath: string | undefined): void {
  if (logPath === undefined || logPath === '' || !path.isAbsolute(logPath)) return;
  fs.rmSync(path.dirname(logPath), { recursive: true, force: true });
}
