/*
 * `tsctl run [OPTIONS] IMAGE [COMMAND [ARG…]]` (and `create`): flags → spec (../spec.ts) →
 * Containers.Create with tsctl's labels → Tasks.Create (fifos when attached, nothing but the
 * json-file log when detached) → Tasks.Start. Attached: Wait, copy output, exit with the
 * container's status; --rm removes it afterwards.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mount, Spec } from '../../../spec';
import { TsrunError } from '../../../spec/errors';
import { RpcError } from '../../client';
import { formatRfc3339, now, packAny, SPEC_TYPE_URL } from '../../proto/index';
import { parsePolicy, POLICY_LABEL } from '../../restart/policy';
import { parseArgs, type OptionDef, type Parsed } from '../args';
import { startFailureExit, usage, withExit, type Ctx } from '../context';
import { LABELS } from '../../labels';
import { listContainers, setLabels, type ContainerInfo } from '../model';
import { buildSpec, expandEnv, mergeEnv, parseBytes, parseEnvFile, type RunConfig } from '../spec';
import { mergeCommand, prepareSnapshot, removeSnapshot, resolveImage, SNAPSHOTTER, STOP_SIGNAL_LABEL, withMountedSnapshot, type ResolvedImage, type SnapshotMount } from '../image-run';
import { createRunLease, exposedPorts, IMAGE_LABELS, imageVolumeRequests, makeWorkdir, type RunLease } from '../image-run';
import { openFifos, rawTerminal } from '../stdio';
import { deleteTask, isNotFound, readRecord, removeContainer, removeRecord, signalNumber, startDetached } from '../task';
import { findSeccompProfile } from '../seccomp';
import { crashPoint } from '../../../shim/crash-points';
import { preloadLibc } from '../../diff/syscalls';
import { mergeMounts, parseMountFlag, parseTmpfsFlag, parseVolumeFlag, parseVolumesFrom, removeAnonymousVolumes, resolveMounts } from '../mounts';
import { applyNetwork, modeLabel, NETWORK_MODE_LABEL, NETWORK_OPTIONS, prepareNetwork, releaseNetwork } from '../network';

/** run's options. */
export const RUN_OPTIONS: readonly OptionDef[] = [
  { name: 'detach', short: 'd', kind: 'bool', help: 'run in the background and print the container id' },
  { name: 'interactive', short: 'i', kind: 'bool', help: 'keep stdin open' },
  { name: 'tty', short: 't', kind: 'bool', help: 'allocate a pseudo-terminal' },
  { name: 'rm', kind: 'bool', help: 'remove the container when it exits' },
  { name: 'name', kind: 'string', help: 'name the container' },
  { name: 'env', short: 'e', kind: 'list', help: 'set an environment variable (KEY=VALUE, or KEY to pass ours)' },
  { name: 'env-file', kind: 'list', help: 'read environment variables from a file' },
  { name: 'volume', short: 'v', kind: 'list', help: 'bind /host:/ctr, volume NAME:/ctr, or anonymous volume /ctr [:ro|rw|nocopy]' },
  { name: 'mount', kind: 'list', help: 'type=bind|volume|tmpfs,source=…,target=…[,readonly]' },
  { name: 'tmpfs', kind: 'list', help: 'mount a tmpfs at /ctr[:OPTIONS]' },
  { name: 'volumes-from', kind: 'list', help: 'the binds and volumes of CONTAINER[:ro|rw]' },
  { name: 'workdir', short: 'w', kind: 'string', help: 'working directory inside the container' },
  { name: 'user', short: 'u', kind: 'string', help: 'user[:group] (names or ids)' },
  { name: 'hostname', short: 'h', kind: 'string', help: 'container host name' },
  { name: 'memory', short: 'm', kind: 'string', help: 'memory limit (e.g. 64m)' },
  { name: 'cpus', kind: 'string', help: 'number of CPUs (quota over a 100ms period)' },
  { name: 'pids-limit', kind: 'string', help: 'process limit' },
  { name: 'restart', kind: 'string', help: 'no | always | on-failure[:N] | unless-stopped' },
  { name: 'runtime', kind: 'string', help: 'OCI runtime binary (default: tsrund\'s)' },
  { name: 'read-only', kind: 'bool', help: 'mount the root filesystem read-only' },
  { name: 'cap-add', kind: 'list', help: 'add a capability' },
  { name: 'cap-drop', kind: 'list', help: 'drop a capability' },
  { name: 'security-opt', kind: 'list', help: 'seccomp=unconfined or seccomp=PROFILE.json' },
  { name: 'log-driver', kind: 'string', help: 'json-file (default) or none' },
  { name: 'log-opt', kind: 'list', help: 'max-size=SIZE, max-file=N' },
  { name: 'label', short: 'l', kind: 'list', help: 'set a label KEY=VALUE' },
  { name: 'entrypoint', kind: 'string', help: 'replace the image\'s ENTRYPOINT (and drop its CMD); "" for none' },
  { name: 'sig-proxy', kind: 'bool', help: 'forward signals to the container (default true when attached)' },
  ...NETWORK_OPTIONS,
];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const LEFT = ['amber', 'brave', 'calm', 'dusty', 'eager', 'fuzzy', 'gentle', 'hasty', 'icy', 'jolly', 'keen', 'lucid', 'mellow', 'noble', 'odd', 'proud', 'quiet', 'rusty', 'sunny', 'tidy'];
const RIGHT = ['otter', 'falcon', 'maple', 'comet', 'badger', 'cedar', 'heron', 'lynx', 'pebble', 'quartz', 'raven', 'spruce', 'tulip', 'walrus', 'yak', 'zephyr', 'bison', 'koala', 'mole', 'newt'];

function randomName(taken: ReadonlySet<string>): string {
  for (;;) {
    const b = randomBytes(3);
    const n = `${LEFT[b[0]! % LEFT.length]}_${RIGHT[b[1]! % RIGHT.length]}`;
    const name = taken.has(n) ? `${n}${b[2]! % 10}` : n;
    if (!taken.has(name)) return name;
  }
}

function int(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw usage(`invalid argument ${JSON.stringify(text)} for "${flag}" flag: not an integer`);
  return n;
}

type Created = {
  id: string;
  name: string;
  detach: boolean;
  interactive: boolean;
  tty: boolean;
  rm: boolean;
  sigProxy: boolean;
  /** Tasks.Create's rootfs: the snapshot's mounts as Prepare gave them, none for a directory */
  rootfs: SnapshotMount[];
  /** the spec's mounts (its anonymous volumes go with --rm) */
  mounts: Mount[];
  /** the run's lease deleted (never fails): awaited before tsctl ends */
  released: Promise<void>;
};

/**
 * Create the container record from run's flags; returns its id and what the caller needs. An
 * image's unpack and the container's snapshot are made under a lease, deleted once the record
 * holds the snapshot (or the create failed): a tsctl killed before leaves only what expires.
 */
async function createContainer(ctx: Ctx, argv: readonly string[], command: 'run' | 'create'): Promise<Created> {
  const held: Held = {};
  let created: Omit<Created, 'released'>;
  try {
    created = await createUnderLease(ctx, argv, held, command);
  } catch (e) {
    const lease = held.lease ?? (await held.pending?.catch(() => undefined));
    await lease?.release().catch(() => undefined);
    throw e;
  }
  // the record holds the snapshot now: the lease's deletion need not hold up the task's start
  const released = held.lease?.release().catch(() => undefined) ?? Promise.resolve();
  return { ...created, released };
}

/** The run's lease once made, and its creation while under way (a failure before it is awaited still deletes it). */
interface Held {
  lease?: RunLease;
  pending?: Promise<RunLease>;
}

async function createUnderLease(ctx: Ctx, argv: readonly string[], held: Held, command: 'run' | 'create'): Promise<Omit<Created, 'released'>> {
  const a = parseArgs(argv, RUN_OPTIONS, true);
  const [imageArg, ...cmd] = a.operands;
  if (imageArg === undefined) throw usage('"run" requires at least 1 argument: tsctl run [OPTIONS] IMAGE [COMMAND] [ARG...]');
  // an empty name would resolve to the working directory as a rootfs (docker: invalid reference format)
  if (imageArg === '') throw usage('invalid reference format: the image name is empty');
  // an existing directory is a rootfs or bundle (tsctl's own form); anything else an image reference
  const dir = path.resolve(imageArg);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    st = undefined;
  }
  // the container list (for the name) is read while the image is resolved; the image's error comes first
  const listed = listContainers(ctx.client);
  listed.catch(() => undefined);
  // and so is the run's lease made (one round trip less before the snapshot's Prepare)
  if (st?.isDirectory() !== true) {
    held.pending = createRunLease(ctx.client, 'run');
    held.pending.catch(() => undefined);
  }
  // the image resolves while the flags are checked
  const resolving = st?.isDirectory() === true ? Promise.resolve(undefined) : resolveImage(ctx.client, imageArg);
  resolving.catch(() => undefined);
  const run: EarlyRun = { resolved: false };
  try {
    return await createResolving(ctx, a, resolving, run, { imageArg, dir, cmd, held, listed, command });
  } catch (e) {
    // the image's error comes first, as when the image was resolved before anything else
    if (!run.resolved) await resolving;
    throw e;
  }
}

/** How far createResolving got, for its caller's error. */
interface EarlyRun {
  /** the image has been awaited (its error, if any, is what was thrown) */
  resolved: boolean;
}

async function createResolving(
  ctx: Ctx,
  a: Parsed,
  resolving: Promise<ResolvedImage | undefined>,
  run: EarlyRun,
  o: { imageArg: string; dir: string; cmd: readonly string[]; held: Held; listed: Promise<ContainerInfo[]>; command: 'run' | 'create' },
): Promise<Omit<Created, 'released'>> {
  const { imageArg, cmd, held } = o;
  const image = o.dir;
  const restart = a.strings.get('restart') ?? 'no';
  try {
    parsePolicy(restart);
  } catch (e) {
    throw withExit(e as Error, 125);
  }
  const rm = a.bools.has('rm');
  if (rm && restart !== 'no') throw usage('conflicting options: --restart and --rm');
  const all = await o.listed;
  const taken = new Set(all.map((c) => c.name));
  const given = a.strings.get('name');
  if (given !== undefined) {
    const name = given.startsWith('/') ? given.slice(1) : given;
    if (!NAME_RE.test(name)) throw usage(`invalid container name (${given}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const other = all.find((c) => c.name === name);
    if (other !== undefined) {
      throw withExit(
        new TsrunError('AlreadyExists', `Conflict. The container name "/${name}" is already in use by container "${other.id}". You have to remove (or rename) that container to be able to reuse that name.`),
        125,
      );
    }
  }
  const name = given?.replace(/^\//, '') ?? randomName(taken);
  const id = randomBytes(32).toString('hex');
  let env = expandEnv(a.lists.get('env') ?? [], ctx.env);
  for (const f of a.lists.get('env-file') ?? []) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw withExit(new TsrunError('NotFound', `open ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : String(e)}`), 125);
    }
    env = [...parseEnvFile(text, ctx.env), ...env];
  }
  let seccomp: unknown;
  let seccompSet = false;
  for (const o of a.lists.get('security-opt') ?? []) {
    const [k, v = ''] = o.split(/[=:](.*)/s, 2);
    if (k !== 'seccomp') throw usage(`invalid --security-opt ${JSON.stringify(o)}: only seccomp=unconfined|PROFILE is supported`);
    seccompSet = true;
    if (v !== 'unconfined') seccomp = JSON.parse(fs.readFileSync(v, 'utf8')) as unknown;
  }
  if (!seccompSet) seccomp = findSeccompProfile();
  let mountRequests;
  try {
    mountRequests = [
      ...(a.lists.get('volumes-from') ?? []).map(parseVolumesFrom),
      ...(a.lists.get('volume') ?? []).map(parseVolumeFlag),
      ...(a.lists.get('mount') ?? []).map(parseMountFlag),
      ...(a.lists.get('tmpfs') ?? []).map(parseTmpfsFlag),
    ];
  } catch (e) {
    throw withExit(e as Error, 125);
  }
  const img = await resolving;
  run.resolved = true;
  const tty = a.bools.has('tty');
  const merged = img === undefined ? undefined : mergeCommand(img.config, a.strings.get('entrypoint'), cmd);
  const workdir = a.strings.get('workdir') ?? img?.config.WorkingDir;
  const user = a.strings.get('user') ?? img?.config.User;
  if (img !== undefined) mountRequests = [...imageVolumeRequests(img, mountRequests), ...mountRequests];
  const mem = a.strings.get('memory');
  const cpus = a.strings.get('cpus');
  const cfg: RunConfig = {
    id,
    namespace: ctx.namespace,
    image,
    args: merged === undefined ? cmd : [...merged.entrypoint, ...merged.cmd],
    env: img === undefined ? env : mergeEnv(img.config.Env ?? [], env),
    tty,
    binds: [],
    readonlyRootfs: a.bools.has('read-only'),
    capAdd: a.lists.get('cap-add') ?? [],
    capDrop: a.lists.get('cap-drop') ?? [],
    ...(workdir !== undefined && workdir !== '' ? { workdir } : {}),
    ...(user !== undefined && user !== '' ? { user } : {}),
    ...(a.strings.has('hostname') ? { hostname: a.strings.get('hostname')! } : {}),
    ...(mem !== undefined ? { memory: parseBytes(mem, '--memory') } : {}),
    ...(cpus !== undefined ? { cpus: Number(cpus) } : {}),
    ...(a.strings.has('pids-limit') ? { pidsLimit: int(a.strings.get('pids-limit'), '--pids-limit')! } : {}),
    ...(seccomp !== undefined ? { seccomp } : {}),
  };
  for (const b of cfg.binds) {
    if (!fs.existsSync(b.source)) fs.mkdirSync(b.source, { recursive: true });
  }
  // the spec and the volumes' copy-up read the image's files: from the container's own snapshot
  // (rootfs undefined: nothing of the image is read, see readsImage)
  const build = async (c: RunConfig, rootfs: string | undefined): Promise<Spec> => {
    let spec: Spec;
    try {
      spec = buildSpec(c);
      if (img !== undefined && rootfs !== undefined && spec.process?.cwd !== undefined) makeWorkdir(rootfs, spec.process.cwd);
    } catch (e) {
      throw withExit(e as Error, 125);
    }
    try {
      const root = spec.root?.path !== undefined && img === undefined ? spec.root.path : rootfs;
      spec.mounts = mergeMounts(spec.mounts ?? [], root === undefined ? [] : await resolveMounts(ctx.client, mountRequests, root));
    } catch (e) {
      await removeAnonymousVolumes(ctx.client, spec.mounts ?? []).catch(() => undefined);
      throw withExit(e instanceof RpcError ? e.toTsrunError() : (e as Error), 125);
    }
    return spec;
  };
  let spec: Spec;
  let rootfs: SnapshotMount[] = [];
  if (img === undefined) spec = await build(cfg, image);
  else {
    held.lease = await (held.pending ?? createRunLease(ctx.client, 'run'));
    const preparing = prepareSnapshot(held.lease.client, img, id);
    const mount = readsImage(cfg, mountRequests);
    // the snapshot is mounted next (withMountedSnapshot), or the fifos are made (mknod): koffi's
    // load, a synchronous stretch, runs once the Prepare request is written (a timer comes after
    // http2's write) and while tsrund answers
    setTimeout(preloadLibc, 0);
    const mounts = await preparing;
    rootfs = mounts;
    try {
      spec = mount ? await withMountedSnapshot(mounts, (root) => build({ ...cfg, image: root, fromImage: true }, root)) : await build({ ...cfg, fromImage: true }, undefined);
    } catch (e) {
      await removeSnapshot(ctx.client, SNAPSHOTTER, id).catch(() => undefined);
      throw e;
    }
  }
  const labels: Record<string, string> = { ...(img?.config.Labels ?? {}) };
  if (img?.config.StopSignal !== undefined && img.config.StopSignal !== '') labels[STOP_SIGNAL_LABEL] = img.config.StopSignal;
  if (img !== undefined && merged !== undefined) {
    labels[IMAGE_LABELS.id] = img.id;
    labels[IMAGE_LABELS.entrypoint] = JSON.stringify(merged.entrypoint);
    labels[IMAGE_LABELS.cmd] = JSON.stringify(merged.cmd);
  }
  for (const l of a.lists.get('label') ?? []) {
    const [k = '', v = ''] = l.split(/=(.*)/s, 2);
    if (k.startsWith('tsctl.')) throw usage(`label ${k}: the tsctl. prefix is reserved`);
    labels[k] = v;
  }
  const logDriver = a.strings.get('log-driver') ?? 'json-file';
  if (logDriver !== 'json-file' && logDriver !== 'none') throw usage(`log driver ${JSON.stringify(logDriver)}: want json-file or none`);
  labels[LABELS.logDriver] = logDriver;
  for (const o of a.lists.get('log-opt') ?? []) {
    const [k = '', v = ''] = o.split(/=(.*)/s, 2);
    if (k === 'max-size') labels[LABELS.logMaxSize] = String(parseBytes(v, 'log-opt max-size'));
    else if (k === 'max-file') labels[LABELS.logMaxFile] = String(int(v, 'log-opt max-file') ?? 1);
    else throw usage(`unknown log opt '${k}' for json-file log driver`);
  }
  labels[LABELS.name] = name;
  labels[LABELS.image] = imageArg;
  labels[LABELS.command] = JSON.stringify(spec.process?.args ?? []);
  if (restart !== 'no') labels[POLICY_LABEL] = restart;
  const detach = a.bools.has('detach');
  if (rm && detach) labels[LABELS.autoRemove] = 'true';
  // run --rm: tsctl removes the container once it exits, so tsrund starts the network's release
  // right then, sooner than tsctl could ask for it (the container never runs again; not `create
  // --rm`, whose container `start` may run again)
  if (rm && !detach && o.command === 'run') labels[LABELS.releaseNetworkOnExit] = 'true';
  const runtime = a.strings.get('runtime');
  const exposed = img !== undefined ? exposedPorts(img.config) : [];
  const net = await prepareNetwork(ctx, a, { id, name, hostname: spec.hostname ?? id.slice(0, 12) }, all, exposed).catch(async (e: unknown) => {
    await removeAnonymousVolumes(ctx.client, spec.mounts ?? []).catch(() => undefined);
    if (img !== undefined) await removeSnapshot(ctx.client, SNAPSHOTTER, id).catch(() => undefined);
    throw withExit(e as Error, 125);
  });
  try {
    applyNetwork(spec, net);
    labels[NETWORK_MODE_LABEL] = modeLabel(net.mode);
    await ctx.client.call('Containers', 'Create', {
      container: {
        id,
        labels,
        image: img?.name ?? imageArg,
        ...(img !== undefined ? { snapshotter: SNAPSHOTTER, snapshotKey: id } : {}),
        runtime: {
          name: 'io.containerd.runc.v2',
          ...(runtime !== undefined ? { options: packAny('containerd.runc.v1.Options', { binaryName: runtime }) } : {}),
        },
        spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) },
      },
    });
  } catch (e) {
    if (net.attachment !== undefined) await releaseNetwork(ctx, id).catch(() => undefined);
    await removeAnonymousVolumes(ctx.client, spec.mounts ?? []).catch(() => undefined);
    if (img !== undefined) await removeSnapshot(ctx.client, SNAPSHOTTER, id).catch(() => undefined);
    throw e;
  }
  return {
    id,
    name,
    detach,
    interactive: a.bools.has('interactive'),
    tty,
    rm,
    sigProxy: !a.bools.has('tty') && !(a.strings.get('sig-proxy') === 'false'),
    rootfs,
    mounts: spec.mounts ?? [],
  };
}

/**
 * Does building the spec read the image's files? The user's name and groups (/etc/passwd,
 * /etc/group), a working directory other than / (made when missing) and volumes (copy-up) do;
 * otherwise the snapshot need not be mounted in tsctl at all.
 */
function readsImage(c: RunConfig, mountRequests: readonly unknown[]): boolean {
  return c.user !== undefined || (c.workdir !== undefined && path.posix.resolve('/', c.workdir) !== '/') || mountRequests.length > 0;
}

function startError(e: unknown): Error {
  const msg = e instanceof RpcError ? e.details : e instanceof Error ? e.message : String(e);
  return withExit(new TsrunError('Internal', `failed to start the container: ${msg}`, { cause: e }), startFailureExit(msg));
}

/** `tsctl create`: the container record only. */
export async function create(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const r = await createContainer(ctx, argv, 'create');
  await r.released;
  ctx.out(r.id);
  return 0;
}

/** `tsctl run`. */
export async function run(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const r = await createContainer(ctx, argv, 'run');
  try {
    return await runCreated(ctx, r);
  } finally {
    await r.released;
  }
}

async function runCreated(ctx: Ctx, r: Created): Promise<number> {
  const { client } = ctx;
  if (r.detach) {
    try {
      await startDetached(client, r.id);
    } catch (e) {
      if (r.rm) {
        const c = (await listContainers(client).catch(() => [])).find((x) => x.id === r.id);
        if (c !== undefined) await removeContainer(client, c).catch(() => undefined);
      }
      throw startError(e);
    }
    ctx.out(r.id);
    return 0;
  }
  const fifos = openFifos({ withStdin: r.interactive, tty: r.tty, input: () => ctx.stdin, output: ctx.stdout, errput: ctx.stderr });
  let restore = (): void => undefined;
  const cleanups: Array<() => void> = [];
  try {
    try {
      await client.call('Tasks', 'Create', { containerId: r.id, rootfs: r.rootfs, stdin: fifos.stdin, stdout: fifos.stdout, stderr: fifos.stderr, terminal: r.tty });
    } catch (e) {
      throw startError(e);
    }
    const output = fifos.attach();
    const waited = client.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: r.id });
    waited.catch(() => undefined);
    if (r.tty) {
      const resize = (): void => {
        const cols = ctx.stdout.columns ?? 0;
        const rows = ctx.stdout.rows ?? 0;
        if (cols > 0 && rows > 0) client.call('Tasks', 'ResizePty', { containerId: r.id, width: cols, height: rows }).catch(() => undefined);
      };
      resize();
      process.on('SIGWINCH', resize);
      cleanups.push(() => process.off('SIGWINCH', resize));
      if (r.interactive) restore = rawTerminal(ctx.stdin);
    }
    if (r.sigProxy) {
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
        const fwd = (): void => {
          client.call('Tasks', 'Kill', { containerId: r.id, signal: signalNumber(sig), all: false }).catch(() => undefined);
        };
        process.on(sig, fwd);
        cleanups.push(() => process.off(sig, fwd));
      }
    }
    try {
      await client.call('Tasks', 'Start', { containerId: r.id });
    } catch (e) {
      await deleteTask(client, r.id).catch(() => undefined);
      throw startError(e);
    }
    // recorded while the container runs (a short one has often exited before this returns); not
    // for --rm, whose record goes with the container: while it runs inspect reads /proc instead
    const labelled = r.rm ? Promise.resolve() : setLabels(client, r.id, { [LABELS.startedAt]: formatRfc3339(now()) }).catch(() => undefined);
    const { exitStatus } = await waited;
    // test-only (TSRUND_TEST_CRASH_AT, shim/crash-points.ts): tsctl killed once the task exited
    crashPoint('tsctl:run-exited');
    await labelled;
    await Promise.race([output, new Promise((res) => setTimeout(res, 2000).unref())]);
    return exitStatus;
  } finally {
    restore();
    for (const c of cleanups) c();
    fifos.close();
    if (r.interactive) ctx.stdin.pause();
    if (r.rm) {
      // The network's release is under way since the task's exit (tsrund starts it, see the
      // release-network-on-exit label); removeRecord's Detach waits for it.
      try {
        const record = readRecord(client, r.id);
        await deleteTask(client, r.id);
        // the anonymous volumes are free once the record is gone: removed beside its snapshot
        await removeRecord(client, r.id, record, () => removeAnonymousVolumes(client, r.mounts));
      } catch (e) {
        // removed meanwhile (tsctl rm -f): nothing is left to do
        if (!isNotFound(e)) ctx.warn(`tsctl: removing ${r.id.slice(0, 12)}: ${e instanceof RpcError ? e.details : String(e)}`);
      }
    }
  }
}
