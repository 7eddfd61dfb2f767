/* `tsctl ps [-a] [-q] [--no-trunc] [--format json|table]` and `tsctl inspect [-f TEMPLATE]`. */
import { attachmentsById, isLive, NETWORK_MODE_LABEL, networkSettings, portsText, type WireAttachment } from '../network';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { bytesDecimal, commandText, statusText, table, humanDuration } from '../format';
import { listContainers, resolveRef, type ContainerInfo } from '../model';
import { RpcError } from '../../client';
import { parseTemplate, renderTemplate } from '../template';
import { IMAGE_LABELS, SNAPSHOTTER, STOP_SIGNAL_LABEL } from '../image-run';

/** docker shows an absent or empty Entrypoint as null. */
function emptyNull(l: string[] | undefined): string[] | null {
  return l === undefined || l.length === 0 ? null : l;
}

/** A label holding a JSON string list, or undefined. */
function jsonList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

function shortId(c: ContainerInfo, full: boolean): string {
  return full ? c.id : c.id.slice(0, 12);
}

function createdText(c: ContainerInfo, nowMs: number): string {
  return `${humanDuration(nowMs - c.createdMs)} ago`;
}

function dockerDate(ms: number): string {
  // docker's CreatedAt: "2006-01-02 15:04:05 -0700 MST" (UTC here)
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} +0000 UTC`;
}

const num = (v: number | { toNumber(): number }): number => (typeof v === 'number' ? v : v.toNumber());

/**
 * docker's SIZE column: the container's own layer (Snapshots.Usage of its snapshot) and, as
 * "virtual", that plus every layer below it (the image's). Containers on a directory rootfs have no
 * layer: undefined.
 */
async function containerSize(ctx: Ctx, id: string): Promise<{ rw: number; virtual: number } | undefined> {
  const { container } = await ctx.client.call<{ container: { snapshotter: string; snapshotKey: string } }>('Containers', 'Get', { id });
  if (container.snapshotKey === '') return undefined;
  const snapshotter = container.snapshotter || SNAPSHOTTER;
  const usage = async (key: string): Promise<number> => num((await ctx.client.call<{ size: number | { toNumber(): number } }>('Snapshots', 'Usage', { snapshotter, key })).size);
  const rw = await usage(container.snapshotKey);
  let virtual = rw;
  let key = container.snapshotKey;
  for (let depth = 0; depth < 128; depth++) {
    const { info } = await ctx.client.call<{ info: { parent: string } }>('Snapshots', 'Stat', { snapshotter, key });
    if (info.parent === '') break;
    key = info.parent;
    virtual += await usage(key);
  }
  return { rw, virtual };
}

/** docker's "12B (virtual 1.2MB)". */
function sizeText(s: { rw: number; virtual: number } | undefined): string {
  return s === undefined ? 'N/A' : `${bytesDecimal(s.rw)} (virtual ${bytesDecimal(s.virtual)})`;
}

/** `tsctl ps` */
export async function ps(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'all', short: 'a', kind: 'bool', help: 'show every container (default: running ones)' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'ids only' },
      { name: 'no-trunc', kind: 'bool', help: 'do not shorten ids and commands' },
      { name: 'format', kind: 'string', help: 'table (default) or json' },
      { name: 'size', short: 's', kind: 'bool', help: 'show each container\'s layer size (and with the image\'s, virtual)' },
    ],
    false,
  );
  if (a.operands.length > 0) throw usage('"ps" accepts no arguments');
  const full = a.bools.has('no-trunc');
  const nowMs = Date.now();
  const shown = (await listContainers(ctx.client))
    .filter((c) => a.bools.has('all') || c.state === 'running' || c.state === 'paused' || c.state === 'restarting')
    .sort((x, y) => y.createdMs - x.createdMs);
  if (a.bools.has('quiet')) {
    for (const c of shown) ctx.out(shortId(c, full));
    return 0;
  }
  const format = a.strings.get('format') ?? 'table';
  const sizes = new Map<string, string>();
  if (a.bools.has('size')) for (const c of shown) sizes.set(c.id, sizeText(await containerSize(ctx, c.id)));
  if (format === 'json' || format === '{{json .}}') {
    for (const c of shown) {
      ctx.out(
        JSON.stringify({
          Command: commandText(c.command, full),
          CreatedAt: dockerDate(c.createdMs),
          ID: shortId(c, full),
          Image: c.image,
          Labels: Object.entries(c.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          Names: c.name,
          Ports: '',
          RunningFor: createdText(c, nowMs),
          ...(sizes.has(c.id) ? { Size: sizes.get(c.id) } : {}),
          State: c.state,
          Status: statusText(c, nowMs),
        }),
      );
    }
    return 0;
  }
  if (format !== 'table') throw usage(`unsupported --format ${JSON.stringify(format)}: want table or json`);
  const withSize = a.bools.has('size');
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(withSize ? ['SIZE'] : [])]];
  const atts = await attachmentsById(ctx);
  for (const c of shown) {
    const row = [shortId(c, full), c.image, commandText(c.command, full), createdText(c, nowMs), statusText(c, nowMs), portsText(isLive(c) ? atts.get(c.id) : undefined), c.name];
    rows.push(withSize ? [...row, sizes.get(c.id) ?? 'N/A'] : row);
  }
  ctx.out(table(rows));
  return 0;
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '0001-01-01T00:00:00Z' : new Date(ms).toISOString();
}

/** docker inspect's object for one container. */
export function inspectObject(c: ContainerInfo, att?: WireAttachment): Record<string, unknown> {
  const spec = c.spec as { process?: { env?: string[]; args?: string[]; cwd?: string; terminal?: boolean; user?: { uid?: number; gid?: number } }; hostname?: string; mounts?: Array<{ destination: string; source?: string; type?: string; options?: string[] }>; linux?: { resources?: { memory?: { limit?: number }; cpu?: { quota?: number; period?: number }; pids?: { limit?: number } }; cgroupsPath?: string } };
  const [policyName = 'no', retries = '0'] = c.restartPolicy.split(':');
  const res = spec.linux?.resources;
  const quota = res?.cpu?.quota;
  const period = res?.cpu?.period;
  return {
    Id: c.id,
    Created: iso(c.createdMs),
    Path: spec.process?.args?.[0] ?? '',
    Args: spec.process?.args?.slice(1) ?? [],
    State: {
      Status: c.state,
      Running: c.state === 'running' || c.state === 'paused',
      Paused: c.state === 'paused',
      Restarting: c.state === 'restarting',
      OOMKilled: c.oomKilled,
      Dead: false,
      Pid: c.pid,
      ExitCode: c.exitCode,
      Error: '',
      StartedAt: iso(c.startedMs),
      FinishedAt: iso(c.finishedMs),
    },
    Image: c.labels[IMAGE_LABELS.id] ?? c.image,
    LogPath: c.logPath ?? '',
    Name: `/${c.name}`,
    RestartCount: c.restartCount,
    HostConfig: {
      Binds: (spec.mounts ?? []).filter((m) => m.type === 'bind').map((m) => `${m.source ?? ''}:${m.destination}${m.options?.includes('ro') ? ':ro' : ''}`),
      LogConfig: {
        Type: c.labels['tsctl.log-driver'] ?? 'none',
        Config: {
          ...(c.labels['tsctl.log-max-size'] !== undefined ? { 'max-size': c.labels['tsctl.log-max-size'] } : {}),
          ...(c.labels['tsctl.log-max-file'] !== undefined ? { 'max-file': c.labels['tsctl.log-max-file'] } : {}),
        },
      },
      RestartPolicy: { Name: policyName, MaximumRetryCount: Number(retries) || 0 },
      NetworkMode: c.labels[NETWORK_MODE_LABEL] ?? 'none',
      AutoRemove: c.labels['tsctl.auto-remove'] === 'true',
      Memory: res?.memory?.limit ?? 0,
      NanoCpus: quota !== undefined && period !== undefined && period > 0 ? Math.round((quota / period) * 1e9) : 0,
      PidsLimit: res?.pids?.limit ?? null,
      CgroupParent: spec.linux?.cgroupsPath ?? '',
    },
    Config: {
      Hostname: spec.hostname ?? '',
      User: spec.process?.user === undefined ? '' : `${spec.process.user.uid ?? 0}:${spec.process.user.gid ?? 0}`,
      Tty: spec.process?.terminal === true,
      Env: spec.process?.env ?? [],
      Entrypoint: emptyNull(jsonList(c.labels[IMAGE_LABELS.entrypoint])),
      Cmd: jsonList(c.labels[IMAGE_LABELS.cmd]) ?? spec.process?.args ?? [],
      Image: c.image,
      ...(c.labels[STOP_SIGNAL_LABEL] !== undefined ? { StopSignal: c.labels[STOP_SIGNAL_LABEL] } : {}),
      WorkingDir: spec.process?.cwd ?? '/',
      Labels: Object.fromEntries(Object.entries(c.labels).filter(([k]) => !k.startsWith('tsctl.'))),
    },
    NetworkSettings: networkSettings(att, c.labels[NETWORK_MODE_LABEL] ?? 'none', isLive(c)),
    Mounts: (spec.mounts ?? [])
      .filter((m) => m.type === 'bind')
      .map((m) => ({ Type: 'bind', Source: m.source ?? '', Destination: m.destination, Mode: m.options?.includes('ro') ? 'ro' : '', RW: !(m.options?.includes('ro') ?? false), Propagation: 'rprivate' })),
  };
}

/** `tsctl inspect [-f TEMPLATE] CONTAINER…`: a JSON array, or one rendered line each; exit 1 if any was not found (the others still printed). */
export async function inspect(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'format', short: 'f', kind: 'string', help: 'a Go template over each container (docker\'s subset: fields, json, index, len, join, upper, lower, if, range)' }], false);
  if (a.operands.length === 0) throw usage('"inspect" requires at least 1 argument');
  const format = a.strings.get('format');
  const template = format === undefined ? undefined : parseTemplate(format);
  const all = await listContainers(ctx.client);
  const atts = await attachmentsById(ctx);
  const out: unknown[] = [];
  let status = 0;
  for (const ref of a.operands) {
    try {
      const c = resolveRef(all, ref);
      const o = inspectObject(c, atts.get(c.id));
      if (template === undefined) out.push(o);
      else ctx.out(renderTemplate(template, o));
    } catch (e) {
      ctx.warn(`tsctl: Error: ${e instanceof RpcError ? e.details : e instanceof Error ? e.message : String(e)}`);
      status = 1;
    }
  }
  if (template === undefined) ctx.out(JSON.stringify(out, null, 4));
  return status;
}
