/*
 * RUN: the command in a real container through tsrund, on an active snapshot of the previous step.
 *
 *   spec       tsctl run's (docker's capabilities, seccomp profile, devices), the step's Env, User,
 *              WorkingDir (made if missing, inside the rootfs), network namespace with only lo
 *   container  Containers.Create (no snapshot key: the builder owns the snapshot) → Tasks.Create with
 *              the snapshot's mounts and fifos → Start → Wait; output copied as it comes
 *   always     task and container deleted, fifos removed, whatever happened
 */
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { TsrunError } from '../../spec/errors';
import type { TsrundClient } from '../client';
import { LABELS } from '../labels';
import { SPEC_TYPE_URL } from '../proto/index';
import { makeWorkdir, withMountedSnapshot, type SnapshotMount } from '../tsctl/image-run';
import { applyNetwork } from '../tsctl/network';
import { findSeccompProfile } from '../tsctl/seccomp';
import { buildSpec } from '../tsctl/spec';
import { openFifos } from '../tsctl/stdio';
import { deleteTask } from '../tsctl/task';

/** What one RUN needs. */
export interface RunRequest {
  readonly namespace: string;
  readonly mounts: readonly SnapshotMount[];
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly user: string | undefined;
  readonly workdir: string | undefined;
  readonly output: Writable;
  /** called with the container id once it exists (docker prints "Running in …") */
  readonly started?: (id: string) => void;
}

/** Run the command; resolves to its exit status. */
export async function runInContainer(client: TsrundClient, req: RunRequest): Promise<number> {
  const id = randomBytes(32).toString('hex');
  const workdir = req.workdir !== undefined && req.workdir !== '' ? req.workdir : '/';
  const spec = await withMountedSnapshot(req.mounts, async (root) => {
    makeWorkdir(root, workdir);
    const s = buildSpec({
      id,
      namespace: req.namespace,
      image: root,
      args: req.args,
      env: req.env,
      tty: false,
      binds: [],
      readonlyRootfs: false,
      capAdd: [],
      capDrop: [],
      workdir,
      ...(req.user !== undefined && req.user !== '' ? { user: req.user } : {}),
      seccomp: findSeccompProfile(),
      fromImage: true,
    });
    applyNetwork(s, { mode: { kind: 'none' } });
    return s;
  });
  await client.call('Containers', 'Create', {
    container: {
      id,
      labels: { [LABELS.logDriver]: 'none', 'tsctl.build': 'true' },
      image: '',
      runtime: { name: 'io.containerd.runc.v2' },
      spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) },
    },
  });
  req.started?.(id);
  const fifos = openFifos({ withStdin: false, tty: false, input: () => process.stdin, output: req.output, errput: req.output });
  try {
    try {
      await client.call('Tasks', 'Create', { containerId: id, rootfs: req.mounts, stdin: '', stdout: fifos.stdout, stderr: fifos.stderr, terminal: false });
    } catch (e) {
      throw new TsrunError('Internal', `start the RUN container: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const output = fifos.attach();
    const waited = client.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: id });
    waited.catch(() => undefined);
    try {
      await client.call('Tasks', 'Start', { containerId: id });
    } catch (e) {
      throw new TsrunError('Internal', `start the RUN container: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const { exitStatus } = await waited;
    await fifos.drained(5000);
    void output;
    return exitStatus;
  } finally {
    fifos.close();
    await deleteTask(client, id).catch(() => undefined);
    await client.call('Containers', 'Delete', { id }).catch(() => undefined);
  }
}
