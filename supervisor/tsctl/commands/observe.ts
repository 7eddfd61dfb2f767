/*
 * top (Tasks.ListPids + /proc), stats (Tasks.Metrics, cgroups v1 or v2 Metrics), events
 * (Events.Subscribe as docker-like lines) and update (Tasks.Update + the stored spec).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { TsrunError } from '../../../spec/errors';
import { RpcError } from '../../client';
import { fromTimestamp, unpackAny, formatRfc3339, SPEC_TYPE_URL, type AnyValue, type Int64 } from '../../proto/index';
import { parsePolicy, POLICY_LABEL } from '../../restart/policy';
import { parseArgs } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { bytesBinary, bytesDecimal, table } from '../format';
import { findContainer, listContainers, resolveRef, setLabels, type ContainerInfo } from '../model';
import { parseBytes, resourcesFor } from '../spec';
import { sleep } from '../task';

const TICKS = 100;

function uidName(uid: number): string {
  try {
    const line = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(uid));
    return line?.split(':')[0] ?? String(uid);
  } catch {
    return String(uid);
  }
}

/** One row of top for a host pid: UID PID PPID C STIME TTY TIME CMD. */
export function procRow(pid: number, bootMs: number, nowMs: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = f[1] ?? '0';
    const ttyNr = Number(f[4] ?? 0);
    const cpuTicks = Number(f[11] ?? 0) + Number(f[12] ?? 0);
    const startMs = bootMs + (Number(f[19] ?? 0) * 1000) / TICKS;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '').join(' ');
    const secs = Math.floor(cpuTicks / TICKS);
    const time = `${String(Math.floor(secs / 3600)).padStart(2, '0')}:${String(Math.floor(secs / 60) % 60).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    const elapsed = Math.max(1, (nowMs - startMs) / 1000);
    const c = Math.floor((cpuTicks / TICKS / elapsed) * 100);
    const d = new Date(startMs);
    const stime = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    const tty = ttyNr === 0 ? '?' : `pts/${(ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00)}`;
    return [uidName(uid), String(pid), ppid, String(c), stime, tty, time, cmdline === '' ? `[${comm}]` : cmdline];
  } catch {
    return undefined;
  }
}

function bootMs(): number {
  const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
  return Number(m?.[1] ?? 0) * 1000;
}

/** `tsctl top CONTAINER` */
export async function top(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [], true);
  if (a.operands.length < 1) throw usage('"top" requires at least 1 argument');
  const c = await findContainer(ctx.client, a.operands[0]!);
  if (c.state !== 'running' && c.state !== 'paused') throw withExit(new TsrunError('FailedPrecondition', `Container ${c.id} is not running`), 1);
  const { processes } = await ctx.client.call<{ processes: Array<{ pid: number }> }>('Tasks', 'ListPids', { containerId: c.id });
  const boot = bootMs();
  const nowMs = Date.now();
  const rows = [['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']];
  for (const p of [...processes].sort((x, y) => x.pid - y.pid)) {
    const r = procRow(p.pid, boot, nowMs);
    if (r !== undefined) rows.push(r);
  }
  ctx.out(table(rows));
  return 0;
}

type U64 = Int64 | string | undefined | null;
const n = (v: U64): number => (v === undefined || v === null ? 0 : typeof v === 'number' ? v : Number(v.toString()));

/** The numbers stats shows, from one Metric.data Any. */
export interface Sample {
  cpuNs: number;
  memUsage: number;
  memLimit: number;
  pids: number;
  blkRead: number;
  blkWrite: number;
}

/** Decode a v1 or v2 cgroups Metrics Any into a Sample (v1: usage minus inactive file, as docker). */
export function sampleOf(data: AnyValue): Sample {
  const m = unpackAny<Record<string, unknown>>(data);
  const rec = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  if (data.typeUrl.endsWith('v2.Metrics')) {
    const cpu = rec(m['cpu']);
    const mem = rec(m['memory']);
    return { cpuNs: n(cpu['usageUsec'] as U64) * 1000, memUsage: n(mem['usage'] as U64), memLimit: n(mem['usageLimit'] as U64), pids: n(rec(m['pids'])['current'] as U64), blkRead: 0, blkWrite: 0 };
  }
  const cpu = rec(rec(m['cpu'])['usage']);
  const mem = rec(m['memory']);
  const usage = rec(mem['usage']);
  const inactive = n(mem['totalInactiveFile'] as U64);
  const used = n(usage['usage'] as U64);
  let blkRead = 0;
  let blkWrite = 0;
  const blk = rec(m['blkio']);
  for (const e of (blk['ioServiceBytesRecursive'] as Array<Record<string, unknown>> | undefined) ?? []) {
    const op = String(e['op'] ?? '').toLowerCase();
    if (op === 'read') blkRead += n(e['value'] as U64);
    if (op === 'write') blkWrite += n(e['value'] as U64);
  }
  return {
    cpuNs: n(cpu['total'] as U64),
    memUsage: inactive < used ? used - inactive : used,
    memLimit: n(usage['limit'] as U64),
    pids: n(rec(m['pids'])['current'] as U64),
    blkRead,
    blkWrite,
  };
}

async function samples(ctx: Ctx, ids: readonly string[]): Promise<Map<string, { at: number; s: Sample }>> {
  const { metrics } = await ctx.client.call<{ metrics: Array<{ id: string; data: AnyValue | null; timestamp: { seconds: Int64; nanos: number } | null }> }>('Tasks', 'Metrics', {
    filters: ids.map((id) => `id==${id}`),
  });
  const out = new Map<string, { at: number; s: Sample }>();
  for (const m of metrics) {
    if (m.data === null) continue;
    const t = fromTimestamp(m.timestamp);
    out.set(m.id, { at: t.seconds * 1e9 + t.nanos, s: sampleOf(m.data) });
  }
  return out;
}

/** `tsctl stats [--no-stream] [CONTAINER…]` */
export async function stats(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'no-stream', kind: 'bool', help: 'print one sample and exit' },
      { name: 'all', short: 'a', kind: 'bool', help: 'also stopped containers' },
      { name: 'format', kind: 'string', help: 'table (default) or json' },
    ],
    false,
  );
  const all = await listContainers(ctx.client);
  const picked: ContainerInfo[] = a.operands.length > 0 ? a.operands.map((r) => resolveRef(all, r)) : all.filter((c) => a.bools.has('all') || c.state === 'running' || c.state === 'paused');
  const hostMem = os.totalmem();
  const json = a.strings.get('format') === 'json';
  let prev = await samples(ctx, picked.map((c) => c.id));
  for (;;) {
    await sleep(a.bools.has('no-stream') ? 500 : 1000);
    const cur = await samples(ctx, picked.map((c) => c.id));
    const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS']];
    const objs: unknown[] = [];
    for (const c of picked) {
      const now = cur.get(c.id);
      const before = prev.get(c.id);
      const cpu = now !== undefined && before !== undefined && now.at > before.at ? ((now.s.cpuNs - before.s.cpuNs) / (now.at - before.at)) * 100 : 0;
      const s = now?.s ?? { cpuNs: 0, memUsage: 0, memLimit: 0, pids: 0, blkRead: 0, blkWrite: 0 };
      const limit = s.memLimit === 0 || s.memLimit > hostMem ? hostMem : s.memLimit;
      const row = {
        ID: c.id.slice(0, 12),
        Name: c.name,
        CPUPerc: `${Math.max(0, cpu).toFixed(2)}%`,
        MemUsage: `${bytesBinary(s.memUsage)} / ${bytesBinary(limit)}`,
        MemPerc: `${((s.memUsage / limit) * 100).toFixed(2)}%`,
        NetIO: '0B / 0B',
        BlockIO: `${bytesDecimal(s.blkRead)} / ${bytesDecimal(s.blkWrite)}`,
        PIDs: String(s.pids),
      };
      objs.push(row);
      rows.push([row.ID, row.Name, row.CPUPerc, row.MemUsage, row.MemPerc, row.NetIO, row.BlockIO, row.PIDs]);
    }
    if (json) for (const o of objs) ctx.out(JSON.stringify(o));
    else {
      if (!a.bools.has('no-stream')) ctx.stdout.write('\x1b[2J\x1b[H');
      ctx.out(table(rows));
    }
    if (a.bools.has('no-stream')) return 0;
    prev = cur;
  }
}

const TOPICS: Record<string, [string, string]> = {
  '/containers/create': ['container', 'create'],
  '/containers/delete': ['container', 'destroy'],
  '/tasks/start': ['container', 'start'],
  '/tasks/paused': ['container', 'pause'],
  '/tasks/resumed': ['container', 'unpause'],
  '/tasks/oom': ['container', 'oom'],
  '/tasks/exec-added': ['container', 'exec_create'],
  '/tasks/exec-started': ['container', 'exec_start'],
};

/** One envelope as a docker events line, or undefined for events docker does not show. */
export function eventLine(topic: string, ev: Record<string, unknown>, time: string, names: ReadonlyMap<string, ContainerInfo>): string | undefined {
  const id = String(ev['containerId'] ?? ev['id'] ?? '');
  const c = names.get(id);
  const attrs: string[] = [];
  let action: string;
  if (topic === '/tasks/exit') {
    const isExec = ev['id'] !== undefined && ev['id'] !== '' && ev['id'] !== id;
    action = isExec ? 'exec_die' : 'die';
    attrs.push(`exitCode=${String(ev['exitStatus'] ?? 0)}`);
  } else {
    const m = TOPICS[topic];
    if (m === undefined) return undefined;
    action = m[1];
  }
  if (action === 'exec_create' || action === 'exec_start') attrs.push(`execID=${String(ev['execId'] ?? '')}`);
  if (c !== undefined) attrs.push(`image=${c.image}`, `name=${c.name}`);
  return `${time} container ${action} ${id} (${attrs.join(', ')})`;
}

/** `tsctl events [--since T]`: streams until interrupted. */
export async function events(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'filter', short: 'f', kind: 'list', help: 'container=ID|NAME' }], false);
  let known = new Map((await listContainers(ctx.client)).map((c) => [c.id, c]));
  const only = (a.lists.get('filter') ?? []).map((f) => {
    const [k, v = ''] = f.split('=', 2);
    if (k !== 'container') throw usage(`unsupported filter ${JSON.stringify(f)}: want container=ID|NAME`);
    return v;
  });
  const s = ctx.client.stream<{ timestamp: { seconds: Int64; nanos: number } | null; namespace: string; topic: string; event: AnyValue | null }>('Events', 'Subscribe', {
    filters: [`namespace==${ctx.namespace}`],
  });
  const stop = (): void => s.cancel();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for await (const env of s.messages) {
      if (env.event === null) continue;
      let ev: Record<string, unknown>;
      try {
        ev = unpackAny<Record<string, unknown>>(env.event);
      } catch {
        continue;
      }
      const id = String(ev['containerId'] ?? ev['id'] ?? '');
      if (!known.has(id)) known = new Map((await listContainers(ctx.client).catch(() => [...known.values()])).map((c) => [c.id, c]));
      const c = known.get(id);
      if (only.length > 0 && !only.some((o) => id.startsWith(o) || c?.name === o)) continue;
      const line = eventLine(env.topic, ev, formatRfc3339(fromTimestamp(env.timestamp)), known);
      if (line !== undefined) ctx.out(line);
    }
  } catch (e) {
    if (!(e instanceof RpcError)) throw e;
    throw withExit(new TsrunError('Unavailable', `events: ${e.details}`), 1);
  }
  return 0;
}

/** `tsctl update [--memory M] [--cpus N] [--pids-limit N] [--restart P] CONTAINER…` */
export async function update(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'memory', short: 'm', kind: 'string', help: 'memory limit' },
      { name: 'cpus', kind: 'string', help: 'number of CPUs' },
      { name: 'pids-limit', kind: 'string', help: 'process limit' },
      { name: 'restart', kind: 'string', help: 'restart policy' },
    ],
    false,
  );
  if (a.operands.length === 0) throw usage('"update" requires at least 1 argument');
  const mem = a.strings.get('memory');
  const cpus = a.strings.get('cpus');
  const pids = a.strings.get('pids-limit');
  const restart = a.strings.get('restart');
  if (restart !== undefined) parsePolicy(restart);
  const res = resourcesFor({
    memory: mem === undefined ? undefined : parseBytes(mem, '--memory'),
    cpus: cpus === undefined ? undefined : Number(cpus),
    pidsLimit: pids === undefined ? undefined : Number(pids),
  });
  const hasRes = Object.keys(res).length > 0;
  if (!hasRes && restart === undefined) throw usage('you must provide one or more flags when using this command');
  let status = 0;
  const all = await listContainers(ctx.client);
  for (const ref of a.operands) {
    try {
      const c = resolveRef(all, ref);
      if (hasRes) {
        if (c.state === 'running' || c.state === 'paused') {
          await ctx.client.call('Tasks', 'Update', {
            containerId: c.id,
            resources: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify(res)) },
          });
        }
        // the next start (and restart policy) gets them too
        const spec = c.spec as { linux?: { resources?: Record<string, unknown> } };
        const linux = spec.linux ?? {};
        const cur = linux.resources ?? {};
        const merged: Record<string, unknown> = { ...cur };
        for (const [k, v] of Object.entries(res as Record<string, unknown>)) merged[k] = { ...((cur[k] as object | undefined) ?? {}), ...(v as object) };
        const next = { ...spec, linux: { ...linux, resources: merged } };
        await ctx.client.call('Containers', 'Update', { container: { id: c.id, spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(next)) } }, updateMask: { paths: ['spec'] } });
      }
      if (restart !== undefined) await setLabels(ctx.client, c.id, { [POLICY_LABEL]: restart === 'no' ? undefined : restart });
      ctx.out(ref);
    } catch (e) {
      ctx.warn(`tsctl: ${e instanceof RpcError ? e.details : e instanceof Error ? e.message : String(e)}`);
      status = 1;
    }
  }
  return status;
}
