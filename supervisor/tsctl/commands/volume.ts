/*
 * `tsctl volume create|ls|inspect|rm|prune`, docker's flags and output, over tsrund's Volumes
 * service (tsrun.services.volumes.v1; containerd has no volumes).
 */
import { randomBytes } from 'node:crypto';
import { TsrunError } from '../../../spec/errors';
import { RpcError } from '../../client';
import { formatRfc3339, fromTimestamp, type Int64 } from '../../proto/index';
import { parseArgs, optionsHelp, type OptionDef } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { bytesDecimal, table } from '../format';
import { parseTemplate, renderTemplate } from '../template';

interface WireVolume {
  name: string;
  driver: string;
  mountpoint: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  anonymous: boolean;
  createdAt: { seconds: Int64; nanos: number } | null;
  usedBy: string[];
}

/** docker's `volume inspect` object. */
function inspectView(v: WireVolume): Record<string, unknown> {
  const labels = Object.keys(v.labels).length > 0 ? { ...v.labels } : null;
  const options = Object.keys(v.options).length > 0 ? { ...v.options } : null;
  return {
    CreatedAt: formatRfc3339({ ...fromTimestamp(v.createdAt), nanos: 0 }),
    Driver: v.driver,
    Labels: labels,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: options,
    Scope: 'local',
  };
}

function labelMap(list: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const [k = '', v = ''] = l.split(/=(.*)/s, 2);
    if (k === '') throw usage(`invalid ${flag} ${JSON.stringify(l)}: want KEY=VALUE`);
    out[k] = v;
  }
  return out;
}

const daemonError = (e: unknown): Error =>
  e instanceof RpcError ? withExit(new TsrunError(e.errorCode(), `Error response from daemon: ${e.details}`), 1) : (e as Error);

async function create(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, CREATE, false);
  if (a.operands.length > 1) throw usage('"volume create" requires at most 1 argument');
  const driver = a.strings.get('driver') ?? 'local';
  if (driver !== 'local') throw usage(`volume driver ${JSON.stringify(driver)}: only local is available`);
  const name = a.operands[0] ?? a.strings.get('name');
  try {
    const r = await ctx.client.call<{ volume: WireVolume }>('Volumes', 'Create', {
      name: name ?? randomBytes(32).toString('hex'),
      labels: labelMap(a.lists.get('label') ?? [], '--label'),
      options: labelMap(a.lists.get('opt') ?? [], '--opt'),
      anonymous: false,
    });
    ctx.out(r.volume.name);
  } catch (e) {
    throw daemonError(e);
  }
  return 0;
}

async function ls(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, LS, false);
  if (a.operands.length > 0) throw usage('"volume ls" accepts no arguments');
  let volumes: WireVolume[];
  try {
    volumes = (await ctx.client.call<{ volumes: WireVolume[] }>('Volumes', 'List', { filters: a.lists.get('filter') ?? [] })).volumes;
  } catch (e) {
    throw daemonError(e);
  }
  if (a.bools.has('quiet')) {
    for (const v of volumes) ctx.out(v.name);
    return 0;
  }
  const format = a.strings.get('format');
  if (format === 'json' || format === '{{json .}}') {
    for (const v of volumes) ctx.out(JSON.stringify({ Driver: v.driver, Labels: Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(','), Mountpoint: v.mountpoint, Name: v.name, Scope: 'local' }));
    return 0;
  }
  if (format !== undefined && format !== 'table') {
    const t = parseTemplate(format);
    for (const v of volumes) ctx.out(renderTemplate(t, { Driver: v.driver, Name: v.name, Mountpoint: v.mountpoint, Labels: v.labels, Scope: 'local' }));
    return 0;
  }
  ctx.out(table([['DRIVER', 'VOLUME NAME'], ...volumes.map((v) => [v.driver, v.name])]));
  return 0;
}

async function inspect(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, INSPECT, false);
  if (a.operands.length === 0) throw usage('"volume inspect" requires at least 1 argument');
  const found: Record<string, unknown>[] = [];
  let status = 0;
  for (const name of a.operands) {
    try {
      found.push(inspectView((await ctx.client.call<{ volume: WireVolume }>('Volumes', 'Get', { name })).volume));
    } catch (e) {
      ctx.warn(`Error response from daemon: ${e instanceof RpcError ? e.details : String(e)}`);
      status = 1;
    }
  }
  const format = a.strings.get('format');
  if (format !== undefined) {
    const t = parseTemplate(format);
    for (const v of found) ctx.out(renderTemplate(t, v));
  } else {
    ctx.out(JSON.stringify(found, null, 4));
  }
  return status;
}

async function rm(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, RM, false);
  if (a.operands.length === 0) throw usage('"volume rm" requires at least 1 argument');
  let status = 0;
  for (const name of a.operands) {
    try {
      await ctx.client.call('Volumes', 'Remove', { name, force: a.bools.has('force') });
      ctx.out(name);
    } catch (e) {
      ctx.warn(`Error response from daemon: ${e instanceof RpcError ? e.details : String(e)}`);
      status = 1;
    }
  }
  return status;
}

async function confirm(ctx: Ctx, question: string): Promise<boolean> {
  ctx.stdout.write(`${question} [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (b: Buffer): void => {
      text += b.toString();
      if (text.includes('\n')) done();
    };
    const done = (): void => {
      ctx.stdin.off('data', onData);
      ctx.stdin.off('end', done);
      ctx.stdin.pause();
      resolve(text);
    };
    ctx.stdin.on('data', onData);
    ctx.stdin.on('end', done);
    ctx.stdin.resume();
  });
  return /^\s*y(es)?\s*$/i.test(answer.split('\n')[0] ?? '');
}

async function prune(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, PRUNE, false);
  const all = a.bools.has('all');
  if (!a.bools.has('force')) {
    const what = all ? 'all local volumes not used by at least one container' : 'anonymous local volumes not used by at least one container';
    if (!(await confirm(ctx, `WARNING! This will remove ${what}.\nAre you sure you want to continue?`))) return 0;
  }
  let r: { deleted: string[]; spaceReclaimed: number | { toNumber(): number } };
  try {
    r = await ctx.client.call('Volumes', 'Prune', { all, filters: a.lists.get('filter') ?? [] });
  } catch (e) {
    throw daemonError(e);
  }
  if (r.deleted.length > 0) ctx.out(['Deleted Volumes:', ...r.deleted, ''].join('\n'));
  const bytes = typeof r.spaceReclaimed === 'number' ? r.spaceReclaimed : r.spaceReclaimed.toNumber();
  ctx.out(`Total reclaimed space: ${bytesDecimal(bytes)}`);
  return 0;
}

const CREATE: readonly OptionDef[] = [
  { name: 'driver', short: 'd', kind: 'string', help: 'volume driver (local)' },
  { name: 'label', kind: 'list', help: 'set a label KEY=VALUE' },
  { name: 'opt', short: 'o', kind: 'list', help: 'driver option KEY=VALUE (the local driver takes none)' },
  { name: 'name', kind: 'string', help: 'volume name' },
];
const LS: readonly OptionDef[] = [
  { name: 'quiet', short: 'q', kind: 'bool', help: 'only names' },
  { name: 'filter', short: 'f', kind: 'list', help: 'name=, label=KEY[=VALUE], dangling=true|false' },
  { name: 'format', kind: 'string', help: 'table, json or a Go template' },
];
const INSPECT: readonly OptionDef[] = [{ name: 'format', short: 'f', kind: 'string', help: 'a Go template' }];
const RM: readonly OptionDef[] = [{ name: 'force', short: 'f', kind: 'bool', help: 'no error for missing volumes' }];
const PRUNE: readonly OptionDef[] = [
  { name: 'all', short: 'a', kind: 'bool', help: 'named volumes too, not only anonymous ones' },
  { name: 'force', short: 'f', kind: 'bool', help: 'do not ask' },
  { name: 'filter', kind: 'list', help: 'label=KEY[=VALUE], name=' },
];

const SUB: Record<string, { fn: (ctx: Ctx, argv: readonly string[]) => Promise<number>; opts: readonly OptionDef[]; help: string }> = {
  create: { fn: create, opts: CREATE, help: 'create a volume' },
  ls: { fn: ls, opts: LS, help: 'list volumes' },
  inspect: { fn: inspect, opts: INSPECT, help: 'show volumes as JSON' },
  rm: { fn: rm, opts: RM, help: 'remove volumes (not while a container uses them)' },
  prune: { fn: prune, opts: PRUNE, help: 'remove unused anonymous volumes (-a: all unused)' },
};
const ALIASES: Record<string, string> = { list: 'ls', remove: 'rm' };

/** `tsctl volume COMMAND`. */
export async function volume(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const [sub0, ...rest] = argv;
  const sub = sub0 === undefined ? undefined : (ALIASES[sub0] ?? sub0);
  const cmd = sub === undefined ? undefined : SUB[sub];
  if (cmd === undefined || rest.includes('--help')) {
    const lines = cmd === undefined ? Object.entries(SUB).map(([n, c]) => `  ${n.padEnd(10)}${c.help}`) : [optionsHelp(cmd.opts)];
    ctx.out(['Usage: tsctl volume COMMAND', '', ...lines].join('\n'));
    if (sub0 !== undefined && cmd === undefined) throw usage(`'${sub0}' is not a tsctl volume command`);
    return sub0 === undefined ? 125 : 0;
  }
  return cmd.fn(ctx, rest);
}
