/*
 * Pure parts of bridge networking: IPv4 CIDR arithmetic, choosing a subnet that collides with
 * neither the host's routes nor another network, and the CNI configuration list of a network.
 *
 * A network's list: bridge (host-local IPAM, the `ips` capability for --ip) → portmap (the
 * `portMappings` capability for -p, only with ports) → tuning (the `mac` capability for
 * --mac-address, only with one). Forwarding, masquerading
 * and isolation between networks are tsrund's own iptables chains (isolation.ts), not the
 * firewall plugin (it puts its accept rules first in FORWARD, ahead of any isolation) nor the
 * bridge plugin's ipMasq (a chain per container, made and removed at every ADD and DEL).
 */
import { TsrunError } from '../../spec/errors';
import type { CniConfList, CniPluginConf } from './cni';

/** A network as tsrund stores it. */
export interface Network {
  /** 64 hex digits, as docker's network ids */
  readonly id: string;
  readonly name: string;
  readonly driver: 'bridge';
  /** IPv4 CIDR, e.g. 172.18.0.0/16 */
  readonly subnet: string;
  readonly gateway: string;
  /** no route out, no masquerading, no traffic across its bridge to anything else */
  readonly internal: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** the host bridge device */
  readonly bridge: string;
  /** RFC 3339 */
  readonly created: string;
}

/** An IPv4 range: network address and prefix length. */
export interface Cidr {
  readonly base: number;
  readonly bits: number;
}

/** Parse a dotted quad; undefined when it is not one. */
export function parseIp(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** A number as a dotted quad. */
export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Parse `a.b.c.d/n`; `what` names the flag or field in the error. */
export function parseCidr(text: string, what: string): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  const ip = m === null ? undefined : parseIp(m[1]!);
  const bits = m === null ? NaN : Number(m[2]);
  if (ip === undefined || !(bits >= 0 && bits <= 32)) throw new TsrunError('InvalidArgument', `invalid ${what} ${JSON.stringify(text)}: not an IPv4 CIDR (a.b.c.d/n)`);
  if ((ip & ~mask(bits)) >>> 0 !== 0) throw new TsrunError('InvalidArgument', `invalid ${what} ${JSON.stringify(text)}: host bits are set (the network is ${formatIp((ip & mask(bits)) >>> 0)}/${bits})`);
  return { base: ip, bits };
}

/** `base/bits` text. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.bits}`;
}

/** True when the two ranges share an address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  return ((a.base & mask(bits)) >>> 0) === ((b.base & mask(bits)) >>> 0);
}

/** True when `ip` lies in `c`. */
export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.bits)) >>> 0) === c.base;
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x = (x & (x - 1)) >>> 0) n++;
  return n;
}

/** The host's IPv4 routes (destination ranges) from /proc/net/route's text; the default route is left out. */
export function hostRoutes(procNetRoute: string): Cidr[] {
  const out: Cidr[] = [];
  for (const line of procNetRoute.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const le = (hex: string) => {
      const v = parseInt(hex, 16);
      return (((v & 255) << 24) >>> 0) + (((v >>> 8) & 255) << 16) + (((v >>> 16) & 255) << 8) + ((v >>> 24) & 255);
    };
    const dest = le(f[1]!);
    const prefix = popcount(le(f[7]!));
    if (prefix === 0) continue;
    out.push({ base: dest, bits: prefix });
  }
  return out;
}

/**
 * Where new networks come from, in docker's order: 172.17-31.0.0/16, then 192.168.0-240.0/20.
 * The default network takes the first free one, as docker0 takes 172.17.0.0/16.
 */
export function* candidateSubnets(): Generator<Cidr> {
  for (let b = 17; b <= 31; b++) yield { base: ((172 << 24) >>> 0) + (b << 16), bits: 16 };
  for (let c = 0; c < 256; c += 16) yield { base: ((192 << 24) >>> 0) + (168 << 16) + (c << 8), bits: 20 };
}

/** The first candidate that overlaps none of `taken` (host routes and other networks). */
export function chooseSubnet(taken: readonly Cidr[]): Cidr {
  for (const c of candidateSubnets()) if (!taken.some((t) => overlaps(t, c))) return c;
  throw new TsrunError('FailedPrecondition', 'no free subnet left for a new network: every candidate (172.17-31.0.0/16, 192.168.0-240.0/20) overlaps a host route or another network; pass --subnet');
}

/** The gateway docker gives a subnet: its first address. */
export function defaultGateway(c: Cidr): string {
  return formatIp(c.base + 1);
}

/** The CNI configuration list of a network; `dataDir` is where host-local keeps its allocations. */
export function confList(n: Network, dataDir: string, uses: { ports: boolean; mac: boolean }): CniConfList {
  const plugins: CniPluginConf[] = [
    {
      type: 'bridge',
      bridge: n.bridge,
      isGateway: true,
      isDefaultGateway: !n.internal,
      // masquerading is one rule per network in tsrund's nat chain (isolation.ts), not a chain per container
      ipMasq: false,
      hairpinMode: true,
      capabilities: { ips: true },
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: n.subnet, gateway: n.gateway }]],
        dataDir,
      },
    },
  ];
  // Only the plugins an endpoint needs run: each is a process start per ADD and per DEL.
  if (!n.internal && uses.ports) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  if (uses.mac) plugins.push({ type: 'tuning', capabilities: { mac: true } });
  return { cniVersion: '1.0.0', name: n.name, plugins };
}
