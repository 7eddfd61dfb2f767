/*
 * run's networking flags, docker's way:
 *
 *   --network bridge (default) | NETWORK   a tsrund network namespace joined by path, with CNI
 *                                          networking (tsrund's Networks.Attach) and /etc/hosts,
 *                                          /etc/hostname, /etc/resolv.conf bind-mounted from tsrund
 *   --network none                         a new namespace with only lo
 *   --network host                         the host's network namespace
 *   --network container:NAME               another container's network namespace
 *   -p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] (ports or ranges A-B), -P (the image's ExposedPorts
 *   and --expose),
 *   --ip, --mac-address,
 *   --network-alias, --add-host, --dns, --dns-search, --dns-option
 */
import { TsrunError } from '../../spec/errors';
import type { Mount, Spec } from '../../spec';
import { RpcError } from '../client';
import type { OptionDef, Parsed } from './args';
import type { Ctx } from './context';
import { usage } from './context';
import type { ContainerInfo } from './model';

/** The label recording the --network mode a container was made with. */
export const NETWORK_MODE_LABEL = 'tsctl.network-mode';

/** run's networking options. */
export const NETWORK_OPTIONS: readonly OptionDef[] = [
  { name: 'network', kind: 'string', help: 'bridge (default), host, none, container:NAME or a network name' },
  { name: 'network-alias', kind: 'list', help: 'another name for the container on its network' },
  { name: 'ip', kind: 'string', help: 'IPv4 address on the network' },
  { name: 'mac-address', kind: 'string', help: 'MAC address of the interface' },
  { name: 'add-host', kind: 'list', help: 'an /etc/hosts entry HOST:IP' },
  { name: 'dns', kind: 'list', help: 'a DNS server for /etc/resolv.conf' },
  { name: 'dns-search', kind: 'list', help: 'a DNS search domain' },
  { name: 'dns-option', kind: 'list', help: 'a resolv.conf option' },
  { name: 'publish', short: 'p', kind: 'list', help: 'publish a port or range: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] (ports may be A-B)' },
  { name: 'publish-all', short: 'P', kind: 'bool', help: 'publish every exposed port on a free host port' },
  { name: 'expose', kind: 'list', help: 'expose a port (PORT[/tcp|udp]) for -P' },
];

/** A published port as the Networks API takes it. */
export interface WirePort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** An attachment as the Networks API returns it. */
export interface WireAttachment {
  id: string;
  netns: string;
  filesDir: string;
  endpoints: { network: string; networkId: string; ifName: string; ip: string; prefixLen: number; gateway: string; mac: string; aliases: string[] }[];
  ports: WirePort[];
}

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw usage(`invalid ${what} ${JSON.stringify(text)}: want a port from 1 to 65535`);
  return n;
}

function protoOf(text: string, spec: string): 'tcp' | 'udp' {
  if (text === 'tcp' || text === 'udp') return text;
  throw usage(`invalid proto ${JSON.stringify(text)} in ${JSON.stringify(spec)}: want tcp or udp`);
}

/** A port or a range `A-B` as [first, last]. */
function portRange(text: string, what: string, spec: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(text);
  if (m === null) {
    const p = port(text, what);
    return [p, p];
  }
  const lo = port(m[1]!, what);
  const hi = port(m[2]!, what);
  if (hi < lo) throw usage(`invalid range ${JSON.stringify(text)} in ${JSON.stringify(spec)}: the end is below the start`);
  return [lo, hi];
}

/**
 * Parse one -p value, docker's syntax: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], where either port
 * may be a range A-B. A host range maps one to one onto a container range of the same length;
 * a container range alone gets a free host port for each.
 */
export function parsePublish(text: string): WirePort[] {
  const [addr = '', proto = 'tcp', ...rest] = text.split('/');
  if (rest.length > 0) throw usage(`invalid publish ${JSON.stringify(text)}: want [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`);
  const protocol = protoOf(proto, text);
  const parts = addr.split(':');
  let hostIp = '0.0.0.0';
  let host = '';
  let container: string;
  if (parts.length === 1) container = parts[0]!;
  else if (parts.length === 2) [host, container] = [parts[0]!, parts[1]!];
  else if (parts.length === 3) {
    hostIp = parts[0]!;
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp)) throw usage(`invalid ip address ${JSON.stringify(hostIp)} in ${JSON.stringify(text)}`);
    [host, container] = [parts[1]!, parts[2]!];
  } else throw usage(`invalid publish ${JSON.stringify(text)}: want [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`);
  const [cLo, cHi] = portRange(container, 'containerPort', text);
  const out: WirePort[] = [];
  if (host === '') {
    for (let c = cLo; c <= cHi; c++) out.push({ hostIp, hostPort: 0, containerPort: c, protocol });
    return out;
  }
  const [hLo, hHi] = portRange(host, 'hostPort', text);
  if (hHi - hLo !== cHi - cLo) {
    throw usage(`invalid publish ${JSON.stringify(text)}: the host range ${hLo}-${hHi} and the container range ${cLo}-${cHi} differ in length (a host range for one container port is not supported)`);
  }
  for (let i = 0; i <= cHi - cLo; i++) out.push({ hostIp, hostPort: hLo + i, containerPort: cLo + i, protocol });
  return out;
}

/** What --network asked for. */
export type NetworkMode = { kind: 'cni'; network: string } | { kind: 'none' } | { kind: 'host' } | { kind: 'container'; ref: string };

/** Parse --network. */
export function parseNetworkMode(text: string | undefined): NetworkMode {
  const v = text ?? 'bridge';
  if (v === 'none') return { kind: 'none' };
  if (v === 'host') return { kind: 'host' };
  if (v.startsWith('container:')) {
    const ref = v.slice('container:'.length);
    if (ref === '') throw usage('--network container: needs a container name or id');
    return { kind: 'container', ref };
  }
  if (v === '' || v.startsWith('-')) throw usage(`invalid --network ${JSON.stringify(v)}`);
  return { kind: 'cni', network: v };
}

/** What networking adds to a container: the spec's namespace and files, and the label. */
export interface NetworkPlan {
  readonly mode: NetworkMode;
  /** set for cni mode once attached */
  readonly attachment?: WireAttachment;
  /** a namespace path to join (cni and container modes) */
  readonly netnsPath?: string;
}

/**
 * Do what the flags ask before the container record exists: for a CNI network, attach (tsrund
 * makes the namespace, runs the plugins and writes the files). The caller detaches on failure.
 */
export async function prepareNetwork(ctx: Ctx, a: Parsed, c: { id: string; name: string; hostname: string }, all: readonly ContainerInfo[], imageExposed: readonly string[] = []): Promise<NetworkPlan> {
  const mode = parseNetworkMode(a.strings.get('network'));
  const ports = (a.lists.get('publish') ?? []).flatMap(parsePublish);
  if (a.bools.has('publish-all')) {
    // -P: the image's ExposedPorts ("80/tcp") and --expose, each on a free host port, once each
    const exposed = [...new Set([...imageExposed, ...(a.lists.get('expose') ?? [])].map((e) => (e.includes('/') ? e : `${e}/tcp`)))];
    for (const e of exposed) {
      const [p = '', proto = 'tcp'] = e.split('/');
      ports.push({ hostIp: '0.0.0.0', hostPort: 0, containerPort: port(p, 'exposed port'), protocol: protoOf(proto, e) });
    }
  }
  const cniOnly = ['ip', 'mac-address'].filter((f) => a.strings.has(f)).concat(['network-alias', 'dns', 'dns-search', 'dns-option', 'add-host'].filter((f) => (a.lists.get(f) ?? []).length > 0));
  if (mode.kind !== 'cni') {
    if (ports.length > 0) throw usage(`conflicting options: port publishing and the ${mode.kind} network mode`);
    if (cniOnly.length > 0) throw usage(`conflicting options: --${cniOnly[0]} and the ${mode.kind} network mode`);
  }
  for (const h of a.lists.get('add-host') ?? []) {
    if (!/^[^:\s]+:\d{1,3}(\.\d{1,3}){3}$/.test(h)) throw usage(`invalid argument ${JSON.stringify(h)} for "--add-host" flag: want HOST:IP`);
  }
  switch (mode.kind) {
    case 'none':
    case 'host':
      return { mode };
    case 'container': {
      const other = all.find((x) => x.name === mode.ref || x.id === mode.ref || (mode.ref.length >= 3 && x.id.startsWith(mode.ref)));
      if (other === undefined) throw new TsrunError('NotFound', `No such container: ${mode.ref}`);
      let netnsPath: string | undefined;
      try {
        const r = await ctx.client.call<{ attachment: WireAttachment }>('Networks', 'Inspect', { id: other.id });
        netnsPath = r.attachment.netns;
      } catch {
        if (other.pid <= 0 || other.state !== 'running') throw new TsrunError('FailedPrecondition', `cannot join network of a non running container: ${other.name}`);
        netnsPath = `/proc/${other.pid}/ns/net`;
      }
      return { mode, netnsPath };
    }
    case 'cni': {
      const ip = a.strings.get('ip');
      const mac = a.strings.get('mac-address');
      try {
        const r = await ctx.client.call<{ attachment: WireAttachment }>('Networks', 'Attach', {
          id: c.id,
          name: c.name,
          hostname: c.hostname,
          endpoints: [{ network: mode.network, ip: ip ?? '', mac: mac ?? '', aliases: a.lists.get('network-alias') ?? [] }],
          ports,
          dns: a.lists.get('dns') ?? [],
          dnsSearch: a.lists.get('dns-search') ?? [],
          dnsOptions: a.lists.get('dns-option') ?? [],
          extraHosts: a.lists.get('add-host') ?? [],
          // the plugins run while the container is created; tsrund's Tasks.Start waits for them
          background: true,
        });
        return { mode, attachment: r.attachment, netnsPath: r.attachment.netns };
      } catch (e) {
        if (e instanceof RpcError) throw new TsrunError('FailedPrecondition', e.details, { cause: e });
        throw e;
      }
    }
    default: {
      const never: never = mode;
      throw new Error(`unknown mode ${String(never)}`);
    }
  }
}

/** Put the plan into the spec: the network namespace, and /etc files for CNI networks. */
export function applyNetwork(spec: Spec, plan: NetworkPlan): void {
  const linux = spec.linux ?? {};
  const nss = (linux.namespaces ?? []).filter((n) => n.type !== 'network');
  if (plan.mode.kind === 'none') nss.push({ type: 'network' });
  else if (plan.netnsPath !== undefined) nss.push({ type: 'network', path: plan.netnsPath });
  linux.namespaces = nss;
  spec.linux = linux;
  if (plan.attachment !== undefined) {
    const files: Mount[] = ['hosts', 'hostname', 'resolv.conf'].map((f) => ({ destination: `/etc/${f}`, type: 'bind', source: `${plan.attachment!.filesDir}/${f}`, options: ['rbind', 'rprivate'] }));
    spec.mounts = [...(spec.mounts ?? []).filter((m) => !files.some((f) => f.destination === m.destination)), ...files];
  }
}

/** The label value of a mode. */
export function modeLabel(m: NetworkMode): string {
  switch (m.kind) {
    case 'cni':
      return m.network;
    case 'container':
      return `container:${m.ref}`;
    default:
      return m.kind;
  }
}

/** True when a container's network is in use (docker shows addresses and ports only then). */
export function isLive(c: Pick<ContainerInfo, 'state'>): boolean {
  return c.state === 'running' || c.state === 'paused' || c.state === 'restarting';
}

/** Release a container's network (a no-op for containers without one). */
export async function releaseNetwork(ctx: Pick<Ctx, 'client'>, id: string): Promise<void> {
  await ctx.client.call('Networks', 'Detach', { id });
}

/** Every attachment by container id (empty when tsrund has no Networks service). */
export async function attachmentsById(ctx: Pick<Ctx, 'client'>): Promise<Map<string, WireAttachment>> {
  try {
    const r = await ctx.client.call<{ attachments: WireAttachment[] }>('Networks', 'ListAttachments', {});
    return new Map((r.attachments ?? []).map((x) => [x.id, x]));
  } catch {
    return new Map();
  }
}

/** The published ports in docker's order: by container port, then protocol, then host address. */
export function sortedPorts(ports: readonly WirePort[]): WirePort[] {
  return [...ports].sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol) || a.hostIp.localeCompare(b.hostIp) || a.hostPort - b.hostPort);
}

/** docker ps's PORTS text: consecutive mappings are shown as ranges (0.0.0.0:8000-8001->80-81/tcp). */
export function portsText(a: WireAttachment | undefined): string {
  const out: string[] = [];
  const ports = sortedPorts(a?.ports ?? []);
  for (let i = 0; i < ports.length; ) {
    const p = ports[i]!;
    let j = i + 1;
    while (j < ports.length) {
      const q = ports[j]!;
      const n = j - i;
      if (q.hostIp !== p.hostIp || q.protocol !== p.protocol || q.containerPort !== p.containerPort + n || q.hostPort !== p.hostPort + n) break;
      j++;
    }
    const last = ports[j - 1]!;
    out.push(j - i === 1 ? `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}` : `${p.hostIp}:${p.hostPort}-${last.hostPort}->${p.containerPort}-${last.containerPort}/${p.protocol}`);
    i = j;
  }
  return out.join(', ');
}

/**
 * docker inspect's NetworkSettings. A container that is not running shows its networks without
 * addresses or ports, as docker's (which releases them at stop; tsrund keeps them until rm).
 */
export function networkSettings(a: WireAttachment | undefined, mode: string, running = true): Record<string, unknown> {
  const first = running ? a?.endpoints[0] : undefined;
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const p of running ? sortedPorts(a?.ports ?? []) : []) (ports[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  const live = (v: string): string => (running ? v : '');
  return {
    SandboxKey: a?.netns ?? '',
    Ports: ports,
    IPAddress: first?.ip ?? '',
    IPPrefixLen: first?.prefixLen ?? 0,
    Gateway: first?.gateway ?? '',
    MacAddress: first?.mac ?? '',
    Networks: Object.fromEntries(
      (a?.endpoints ?? []).map((e) => [e.network, { NetworkID: e.networkId, Aliases: e.aliases, IPAddress: live(e.ip), IPPrefixLen: running ? e.prefixLen : 0, Gateway: live(e.gateway), MacAddress: live(e.mac) }]),
    ),
    Mode: mode,
  };
}
