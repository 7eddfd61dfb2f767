/*
 * `tsctl network create|ls|inspect|rm|prune|connect|disconnect` and `tsctl port`, over tsrund's
 * Networks service, with docker's output.
 */
import { RpcError } from '../../client';
import { parseArgs } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { table } from '../format';
import { listContainers, resolveRef } from '../model';
import { attachmentsById, isLive, sortedPorts, type WireAttachment } from '../network';

interface WireNetwork {
  id: string;
  name: string;
  driver: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  labels: Record<string, string>;
  bridge: string;
  created: string;
}

function rpcMessage(e: unknown): string {
  return e instanceof RpcError ? e.details : e instanceof Error ? e.message : String(e);
}

function labelsOf(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const [k = '', v = ''] = l.split(/=(.*)/s, 2);
    if (k === '') throw usage(`invalid label ${JSON.stringify(l)}: want KEY=VALUE`);
    out[k] = v;
  }
  return out;
}

/** docker network inspect's object. */
function inspectNetwork(n: WireNetwork, atts: readonly WireAttachment[], names: ReadonlyMap<string, string>): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const a of atts) {
    const ep = a.endpoints.find((e) => e.networkId === n.id);
    if (ep === undefined) continue;
    containers[a.id] = { Name: names.get(a.id) ?? a.id.slice(0, 12), MacAddress: ep.mac, IPv4Address: `${ep.ip}/${ep.prefixLen}`, IPv6Address: '' };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.internal,
    Attachable: false,
    Containers: containers,
    Options: { 'com.docker.network.bridge.name': n.bridge },
    Labels: n.labels,
  };
}

async function sub(ctx: Ctx, name: string, argv: readonly string[]): Promise<number> {
  const c = ctx.client;
  switch (name) {
    case 'create': {
      const a = parseArgs(argv, [
        { name: 'driver', short: 'd', kind: 'string', help: 'bridge' },
        { name: 'subnet', kind: 'string', help: 'CIDR' },
        { name: 'gateway', kind: 'string', help: 'IPv4 address' },
        { name: 'internal', kind: 'bool', help: 'no access to the outside' },
        { name: 'label', kind: 'list', help: 'KEY=VALUE' },
      ], false);
      if (a.operands.length !== 1) throw usage('"network create" requires exactly 1 argument: tsctl network create [OPTIONS] NETWORK');
      const r = await c.call<{ network: WireNetwork }>('Networks', 'Create', {
        name: a.operands[0],
        driver: a.strings.get('driver') ?? 'bridge',
        subnet: a.strings.get('subnet') ?? '',
        gateway: a.strings.get('gateway') ?? '',
        internal: a.bools.has('internal'),
        labels: labelsOf(a.lists.get('label') ?? []),
      });
      ctx.out(r.network.id);
      return 0;
    }
    case 'ls':
    case 'list': {
      const a = parseArgs(argv, [{ name: 'quiet', short: 'q', kind: 'bool', help: 'ids only' }, { name: 'no-trunc', kind: 'bool', help: 'full ids' }], false);
      const r = await c.call<{ networks: WireNetwork[] }>('Networks', 'List', {});
      const nets = [...(r.networks ?? [])].sort((x, y) => x.name.localeCompare(y.name));
      const id = (n: WireNetwork) => (a.bools.has('no-trunc') ? n.id : n.id.slice(0, 12));
      if (a.bools.has('quiet')) {
        for (const n of nets) ctx.out(id(n));
        return 0;
      }
      ctx.out(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ...nets.map((n) => [id(n), n.name, n.driver, 'local'])]));
      return 0;
    }
    case 'inspect': {
      const a = parseArgs(argv, [], false);
      if (a.operands.length === 0) throw usage('"network inspect" requires at least 1 argument');
      const atts = [...(await attachmentsById(ctx)).values()];
      const names = new Map((await listContainers(c)).map((x) => [x.id, x.name]));
      const out: unknown[] = [];
      let status = 0;
      for (const ref of a.operands) {
        try {
          out.push(inspectNetwork((await c.call<{ network: WireNetwork }>('Networks', 'Get', { ref })).network, atts, names));
        } catch (e) {
          ctx.warn(`tsctl: Error: ${rpcMessage(e)}`);
          status = 1;
        }
      }
      ctx.out(JSON.stringify(out, null, 4));
      return status;
    }
    case 'rm':
    case 'remove': {
      const a = parseArgs(argv, [], false);
      if (a.operands.length === 0) throw usage('"network rm" requires at least 1 argument');
      let status = 0;
      for (const ref of a.operands) {
        try {
          await c.call('Networks', 'Remove', { ref });
          ctx.out(ref);
        } catch (e) {
          ctx.warn(`tsctl: Error response from daemon: ${rpcMessage(e)}`);
          status = 1;
        }
      }
      return status;
    }
    case 'prune': {
      parseArgs(argv, [{ name: 'force', short: 'f', kind: 'bool', help: 'do not ask' }], false);
      const r = await c.call<{ removed: string[] }>('Networks', 'Prune', {});
      if ((r.removed ?? []).length > 0) ctx.out(['Deleted Networks:', ...r.removed].join('\n'));
      return 0;
    }
    case 'connect':
    case 'disconnect': {
      const a = parseArgs(argv, name === 'connect' ? [{ name: 'ip', kind: 'string', help: 'IPv4 address' }, { name: 'alias', kind: 'list', help: 'another name' }] : [{ name: 'force', short: 'f', kind: 'bool', help: '' }], false);
      if (a.operands.length !== 2) throw usage(`"network ${name}" requires exactly 2 arguments: tsctl network ${name} NETWORK CONTAINER`);
      const [net = '', ref = ''] = a.operands;
      const target = resolveRef(await listContainers(c), ref);
      if (name === 'connect') await c.call('Networks', 'Connect', { id: target.id, endpoint: { network: net, ip: a.strings.get('ip') ?? '', aliases: a.lists.get('alias') ?? [] } });
      else await c.call('Networks', 'Disconnect', { id: target.id, network: net });
      return 0;
    }
    default:
      throw usage(`'network ${name}' is not a tsctl command: want create, ls, inspect, rm, prune, connect or disconnect`);
  }
}

/** `tsctl network SUBCOMMAND …` */
export async function network(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) throw usage('"network" requires a subcommand: create, ls, inspect, rm, prune, connect, disconnect');
  try {
    return await sub(ctx, name, rest);
  } catch (e) {
    if (e instanceof RpcError) throw withExit(new Error(`Error response from daemon: ${e.details}`), 1);
    throw e;
  }
}

/** `tsctl port CONTAINER [PORT[/PROTO]]`: the published ports, docker's lines. */
export async function port(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [], false);
  const [ref, which] = a.operands;
  if (ref === undefined) throw usage('"port" requires at least 1 argument: tsctl port CONTAINER [PRIVATE_PORT[/PROTO]]');
  const target = resolveRef(await listContainers(ctx.client), ref);
  const att = isLive(target) ? (await attachmentsById(ctx)).get(target.id) : undefined;
  const ports = sortedPorts(att?.ports ?? []);
  if (which === undefined) {
    // docker sorts the lines as strings (5353/udp before 80/tcp)
    for (const l of ports.map((p) => `${p.containerPort}/${p.protocol} -> ${p.hostIp}:${p.hostPort}`).sort()) ctx.out(l);
    return 0;
  }
  const [num = '', proto = 'tcp'] = which.split('/');
  const found = ports.filter((p) => String(p.containerPort) === num && p.protocol === proto);
  if (found.length === 0) throw withExit(new Error(`Error: No public port '${num}/${proto}' published for ${target.name}`), 1);
  for (const p of found) ctx.out(`${p.hostIp}:${p.hostPort}`);
  return 0;
}
