/*
 * Networks in tsrund: docker's bridge model over CNI.
 *
 *   create/list/inspect/remove/prune   network records (files.ts), each with its own bridge device
 *   attach(container)                  a network namespace (netns.ts) + loopback + one CNI ADD per
 *                                      network (eth0, eth1, …; published ports on the first
 *                                      network that is not internal) + /etc/hosts, /etc/hostname,
 *                                      /etc/resolv.conf for the container to bind-mount
 *   connect/disconnect                 one more network on (or off) a running container
 *   detach(container)                  DEL everything, release the namespace, drop the record
 *   reconcile(live)                    after a crash: whatever has no live container is released
 *
 * Network-wide changes (create, remove, prune, reconcile) run alone; attaches of different
 * containers run side by side, as CRI runtimes run CNI (the plugins lock the host-local store and
 * the bridge is made at network create); port checks and the record that claims them are one
 * critical section.
 * An attachment record is written (with its netns path) before any CNI call, so a tsrund killed
 * in the middle of an attach or detach leaves something `reconcile` can finish.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { TsrunError } from '../../spec/errors';
import type { Logger } from '../log';
import { addNetworkList, delFromCache, delNetworkList, listCache, scanCache, type CacheEntry, type CniOptions, type CniResult } from './cni';
import { chooseSubnet, confList, contains, defaultGateway, formatCidr, hostRoutes, parseCidr, parseIp, type Cidr, type Network } from './config';
import { createInPlaceWriter, readJson, readRecord, writeAtomic, writeJson } from './files';
import { CHAIN_PREFIX, removeIsolation, syncIsolation } from './isolation';
import { createNetns, listNetns, removeNetns } from './netns';

const run = promisify(execFile);

/** The network every container without --network joins, as docker's `bridge`. */
export const DEFAULT_NETWORK = 'bridge';
/** Its bridge device (docker's is docker0). */
export const DEFAULT_BRIDGE = 'tsrun0';

/** A published port. */
export interface PortMapping {
  readonly hostIP: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
}

/** What a container asks of one network. */
export interface EndpointRequest {
  readonly network: string;
  readonly ip?: string;
  readonly mac?: string;
  readonly aliases?: readonly string[];
}

/** One network's part of an attachment, as made. */
export interface Endpoint {
  readonly network: string;
  readonly networkId: string;
  readonly ifName: string;
  readonly ip: string;
  readonly prefixLen: number;
  readonly gateway: string;
  readonly mac: string;
  readonly aliases: readonly string[];
}

/** What attach needs. */
export interface AttachRequest {
  readonly namespace: string;
  readonly id: string;
  /** the container's name (resolvable by peers on user-defined networks) */
  readonly name: string;
  readonly hostname: string;
  readonly endpoints: readonly EndpointRequest[];
  /** hostPort 0: a free port is chosen */
  readonly ports: readonly PortMapping[];
  readonly dns: readonly string[];
  readonly dnsSearch: readonly string[];
  readonly dnsOptions: readonly string[];
  /** `host:ip` entries for /etc/hosts (docker's --add-host) */
  readonly extraHosts: readonly string[];
  /**
   * Return once the namespace and the files exist and run the plugins after, so that they overlap
   * with the container's create (the caller awaits ready() before the task starts).
   */
  readonly background?: boolean;
}

/** A container's networking, as recorded. */
export interface AttachmentRecord {
  readonly namespace: string;
  readonly id: string;
  readonly name: string;
  readonly hostname: string;
  readonly netns: string;
  readonly endpoints: Endpoint[];
  readonly ports: PortMapping[];
  readonly extraHosts: readonly string[];
  /** directory holding hosts, hostname and resolv.conf */
  readonly filesDir: string;
  readonly dns: readonly string[];
  readonly dnsSearch: readonly string[];
  readonly dnsOptions: readonly string[];
  /**
   * Read from a record file a crash of the machine left torn (records are not fsynced, files.ts):
   * only what its name and place say is known (namespace, id, netns and files paths), and
   * releasing it finds its endpoints in the CNI cache.
   */
  readonly torn?: true;
}

/** What create takes. */
export interface CreateRequest {
  readonly name: string;
  readonly subnet?: string;
  readonly gateway?: string;
  readonly internal?: boolean;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Where networking keeps its state and finds its plugins. */
export interface NetworkOptions {
  /** persistent: network records, attachment records, CNI cache, host-local allocations */
  readonly root: string;
  /** volatile: network namespaces and the per-container files */
  readonly state: string;
  readonly binDirs: readonly string[];
  readonly timeoutMs: number;
  /** the host's /etc/resolv.conf (a parameter so tests can give their own) */
  readonly hostResolvConf?: string;
  /** the default network's bridge device (DEFAULT_BRIDGE); device names are host-wide */
  readonly defaultBridge?: string;
  /** iptables chain prefix (CHAIN_PREFIX); chains are host-wide */
  readonly chainPrefix?: string;
  /** where each attach and detach step's duration goes, at trace level */
  readonly log?: Logger;
}

/** The networking API tsrund serves. */
export interface Networks {
  create(req: CreateRequest): Promise<Network>;
  list(): Network[];
  /** by name, full id or an unambiguous id prefix */
  get(ref: string): Network;
  remove(ref: string): Promise<void>;
  /** remove every network without containers (the default one stays); returns the names */
  prune(): Promise<string[]>;
  /** with req.background, resolves once the namespace and files exist (no endpoints yet): see ready() */
  attach(req: AttachRequest): Promise<AttachmentRecord>;
  /** wait for a background attach's plugins; throws what made it fail (it has released everything) */
  ready(namespace: string, id: string): Promise<void>;
  connect(namespace: string, id: string, ep: EndpointRequest): Promise<AttachmentRecord>;
  disconnect(namespace: string, id: string, network: string): Promise<AttachmentRecord>;
  detach(namespace: string, id: string): Promise<void>;
  attachment(namespace: string, id: string): AttachmentRecord | undefined;
  attachments(): AttachmentRecord[];
  /** release what belongs to no live container (keys `namespace/id`); returns what was released */
  reconcile(live: ReadonlySet<string>): Promise<string[]>;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The networks API over files under opts.root and opts.state. */
export function createNetworks(opts: NetworkOptions): Networks {
  const netFile = path.join(opts.root, 'networks', 'networks.json');
  const attDir = path.join(opts.root, 'networks', 'containers');
  const dataDir = path.join(opts.root, 'networks', 'ipam');
  const nsDir = path.join(opts.state, 'netns');
  const filesRoot = path.join(opts.state, 'network-files');
  const tracing = opts.log?.tracing === true;
  const trace = (msg: string, fields: Record<string, string | number>): void => opts.log?.trace(`network ${msg}`, fields);
  const cni: CniOptions = { binDirs: opts.binDirs, cacheDir: path.join(opts.root, 'networks', 'cni-cache'), timeoutMs: opts.timeoutMs, ...(tracing ? { trace } : {}) };
  /** Run one step of an attach or detach, logging its duration when tracing. */
  const step = async <T>(what: string, container: string, fn: () => T | Promise<T>): Promise<T> => {
    if (!tracing) return await fn();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      trace(what, { container, ms: Math.round(performance.now() - t0) });
    }
  };
  const prefix = opts.chainPrefix ?? CHAIN_PREFIX;
  const lock = createLocks();
  /** the per-container files (hosts above all: every peer's is rewritten when one joins or leaves) */
  const inPlace = createInPlaceWriter();
  /** background attaches whose plugins may still run, by `namespace/id` (ready() waits for them) */
  const pending = new Map<string, Promise<void>>();
  /** network-wide changes (create, remove, prune, reconcile): nothing else runs meanwhile */
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => lock.exclusive(fn);
  /** one container's attachment: other containers' run alongside (CNI plugins lock what they share) */
  const perContainer = <T>(ns: string, id: string, fn: () => Promise<T>): Promise<T> => lock.shared(`${ns}/${id}`, fn);

  const load = (): Network[] => readJson<Network[]>(netFile, []);
  const save = (nets: Network[]) => writeJson(netFile, nets);
  const attFile = (ns: string, id: string) => path.join(attDir, `${ns}-${id}.json`);
  const saveAtt = (a: AttachmentRecord): void => writeAtomic(attFile(a.namespace, a.id), JSON.stringify(a, null, 1));
  const loadAtt = (ns: string, id: string): AttachmentRecord | undefined => {
    const r = readRecord<AttachmentRecord>(attFile(ns, id));
    if (r.kind === 'ok') return r.value;
    if (r.kind === 'missing') return undefined;
    const key = `${ns}-${id}`;
    return { namespace: ns, id, name: '', hostname: '', netns: path.join(nsDir, key), endpoints: [], ports: [], extraHosts: [], filesDir: path.join(filesRoot, key), dns: [], dnsSearch: [], dnsOptions: [], torn: true };
  };
  const allAtts = (): AttachmentRecord[] => {
    let names: string[] = [];
    try {
      names = fs.readdirSync(attDir).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    // a torn record (a machine crash) has no endpoints or ports to list: reconcile and detach release it
    return names.flatMap((n) => {
      const r = readRecord<AttachmentRecord>(path.join(attDir, n));
      return r.kind === 'ok' ? [r.value] : [];
    });
  };

  const find = (nets: readonly Network[], ref: string): Network => {
    const byName = nets.find((n) => n.name === ref);
    if (byName !== undefined) return byName;
    const byId = nets.filter((n) => ref.length > 0 && n.id.startsWith(ref));
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1) throw new TsrunError('InvalidArgument', `network ${ref} is ambiguous (${byId.length} matches found based on ID prefix)`);
    throw new TsrunError('NotFound', `network ${ref} not found`);
  };

  const hostCidrs = (): Cidr[] => {
    try {
      return hostRoutes(fs.readFileSync('/proc/net/route', 'utf8'));
    } catch {
      return [];
    }
  };

  const isolationOf = (nets: readonly Network[]) => nets.map((n) => ({ bridge: n.bridge, internal: n.internal, subnet: n.subnet }));

  async function createLocked(req: CreateRequest, bridge?: string): Promise<Network> {
    if (!NAME_RE.test(req.name)) throw new TsrunError('InvalidArgument', `invalid network name ${JSON.stringify(req.name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const nets = load();
    if (nets.some((n) => n.name === req.name)) throw new TsrunError('AlreadyExists', `network with name ${req.name} already exists`);
    const others = nets.map((n) => parseCidr(n.subnet, 'subnet'));
    let subnet: Cidr;
    if (req.subnet !== undefined) {
      subnet = parseCidr(req.subnet, '--subnet');
      const clash = nets.find((n) => overlapsText(n.subnet, subnet));
      if (clash !== undefined) throw new TsrunError('FailedPrecondition', `invalid pool request: pool ${formatCidr(subnet)} overlaps with network ${clash.name} (${clash.subnet})`);
      const route = hostCidrs().find((r) => overlapsCidr(r, subnet));
      if (route !== undefined) throw new TsrunError('FailedPrecondition', `invalid pool request: pool ${formatCidr(subnet)} overlaps with the host route ${formatCidr(route)}`);
      if (subnet.bits > 30) throw new TsrunError('InvalidArgument', `invalid --subnet ${formatCidr(subnet)}: a /${subnet.bits} has no room for a gateway and a container`);
    } else {
      subnet = chooseSubnet([...hostCidrs(), ...others]);
    }
    let gateway = defaultGateway(subnet);
    if (req.gateway !== undefined) {
      const g = parseIp(req.gateway);
      if (g === undefined || !contains(subnet, g)) throw new TsrunError('InvalidArgument', `invalid --gateway ${JSON.stringify(req.gateway)}: not an address in ${formatCidr(subnet)}`);
      gateway = req.gateway;
    }
    const id = createHash('sha256').update(randomBytes(32)).digest('hex');
    const n: Network = {
      id,
      name: req.name,
      driver: 'bridge',
      subnet: formatCidr(subnet),
      gateway,
      internal: req.internal === true,
      labels: { ...(req.labels ?? {}) },
      bridge: bridge ?? `tsr-${id.slice(0, 11)}`,
      created: new Date().toISOString(),
    };
    save([...nets, n]);
    try {
      await makeBridge(n, subnet.bits);
    } catch (e) {
      save(nets);
      throw e;
    }
    await syncIsolation(isolationOf([...nets, n]), prefix);
    return n;
  }

  /** The default network, made once even when many attaches ask for it at the same time. */
  const ensureDefault = (): Promise<void> =>
    lock.critical(async () => {
      if (load().some((n) => n.name === DEFAULT_NETWORK)) return;
      await createLocked({ name: DEFAULT_NETWORK }, opts.defaultBridge ?? DEFAULT_BRIDGE);
    });

  /**
   * Make the bridge with its gateway address now, as docker does, rather than at the first CNI
   * ADD: the subnet's route then exists from the start, so neither a later network of ours nor
   * another manager on the host (docker, podman) picks an overlapping subnet. The bridge plugin
   * adopts the existing device.
   *
   * Its MAC address is set explicitly, as docker sets its bridges'. A bridge whose address was
   * never set takes the lowest of its ports' addresses and changes it when that port goes: the
   * containers' ARP entries for the gateway then name an address nobody answers to, and what goes
   * through the gateway (the host, published ports, the way out) is lost until they expire.
   */
  async function makeBridge(n: Network, bits: number): Promise<void> {
    const steps: string[][] = [];
    if (!fs.existsSync(`/sys/class/net/${n.bridge}`)) steps.push(['link', 'add', n.bridge, 'address', randomMac(), 'type', 'bridge']);
    else if (!macPinned(n.bridge)) steps.push(['link', 'set', 'dev', n.bridge, 'address', currentMac(n.bridge)]);
    steps.push(['addr', 'replace', `${n.gateway}/${bits}`, 'dev', n.bridge], ['link', 'set', n.bridge, 'up']);
    for (const args of steps) {
      try {
        await run('ip', args);
      } catch (e) {
        const msg = ((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message;
        await removeBridge(n.bridge).catch(() => undefined);
        throw new TsrunError('Internal', `create bridge ${n.bridge} for network ${n.name}: ip ${args.join(' ')}: ${msg}`, { cause: e });
      }
    }
  }

  /** Remove a network's bridge device (CNI DEL never removes it). */
  async function removeBridge(bridge: string): Promise<void> {
    if (!fs.existsSync(`/sys/class/net/${bridge}`)) return;
    try {
      await run('ip', ['link', 'delete', bridge, 'type', 'bridge']);
    } catch (e) {
      if (fs.existsSync(`/sys/class/net/${bridge}`)) throw new TsrunError('Internal', `delete bridge ${bridge}: ${((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message}`, { cause: e });
    }
  }

  async function removeLocked(n: Network): Promise<void> {
    const users = allAtts().filter((a) => a.endpoints.some((e) => e.networkId === n.id));
    if (users.length > 0) throw new TsrunError('FailedPrecondition', `error while removing network: network ${n.name} id ${n.id} has active endpoints (${users.map((u) => u.name).join(', ')})`);
    const rest = load().filter((x) => x.id !== n.id);
    save(rest);
    await removeBridge(n.bridge);
    fs.rmSync(path.join(dataDir, n.name), { recursive: true, force: true });
    if (rest.length === 0) await removeIsolation(prefix);
    else await syncIsolation(isolationOf(rest), prefix);
  }

  /** Reserve a free host port, or check a given one is free on the host and in our records. */
  async function checkPort(p: PortMapping, taken: readonly PortMapping[]): Promise<PortMapping> {
    if (p.hostPort !== 0) {
      const clash = taken.find((t) => t.hostPort === p.hostPort && t.protocol === p.protocol && (t.hostIP === p.hostIP || t.hostIP === '0.0.0.0' || p.hostIP === '0.0.0.0'));
      if (clash !== undefined) throw new TsrunError('FailedPrecondition', `Bind for ${p.hostIP}:${p.hostPort} failed: port is already allocated`);
    }
    const inUse = (e: NodeJS.ErrnoException) => new TsrunError('FailedPrecondition', `Bind for ${p.hostIP}:${p.hostPort} failed: ${e.code === 'EADDRINUSE' ? 'port is already allocated' : e.message}`);
    // Bind and release: the port is free on the host now (port 0: the kernel picks a free one).
    const port =
      p.protocol === 'udp'
        ? await new Promise<number>((resolve, reject) => {
            const sock = dgram.createSocket('udp4');
            sock.once('error', (e: NodeJS.ErrnoException) => {
              sock.close();
              reject(inUse(e));
            });
            sock.bind({ address: p.hostIP, port: p.hostPort, exclusive: true }, () => {
              const got = sock.address().port;
              sock.close(() => resolve(got));
            });
          })
        : await new Promise<number>((resolve, reject) => {
            const srv = net.createServer();
            srv.once('error', (e: NodeJS.ErrnoException) => reject(inUse(e)));
            srv.listen({ host: p.hostIP, port: p.hostPort, exclusive: true }, () => {
              const a = srv.address();
              const got = typeof a === 'object' && a !== null ? a.port : 0;
              srv.close(() => resolve(got));
            });
          });
    return { ...p, hostPort: port };
  }

  function endpointFrom(n: Network, ifName: string, res: CniResult, aliases: readonly string[]): Endpoint {
    const iface = res.interfaces?.findIndex((i) => i.name === ifName && i.sandbox !== undefined && i.sandbox !== '') ?? -1;
    const ip = res.ips?.find((i) => iface < 0 || i.interface === iface) ?? res.ips?.[0];
    if (ip === undefined) throw new TsrunError('Internal', `network ${n.name}: the CNI result has no IP address for ${ifName}`);
    const [addr, prefix] = ip.address.split('/');
    return {
      network: n.name,
      networkId: n.id,
      ifName,
      ip: addr!,
      prefixLen: Number(prefix),
      gateway: ip.gateway ?? n.gateway,
      mac: (iface >= 0 ? res.interfaces?.[iface]?.mac : undefined) ?? '',
      aliases: [...aliases],
    };
  }

  /** The runtimeConfig of one endpoint (--ip, --mac-address), checked against the network. */
  function capabilityArgs(n: Network, req: EndpointRequest): Record<string, unknown> {
    const caps: Record<string, unknown> = {};
    if (req.ip !== undefined) {
      const ip = parseIp(req.ip);
      if (ip === undefined || !contains(parseCidr(n.subnet, 'subnet'), ip)) throw new TsrunError('InvalidArgument', `invalid --ip ${JSON.stringify(req.ip)}: not an address in network ${n.name}'s subnet ${n.subnet}`);
      caps['ips'] = [`${req.ip}/${n.subnet.split('/')[1]}`];
    }
    if (req.mac !== undefined) {
      if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(req.mac)) throw new TsrunError('InvalidArgument', `invalid --mac-address ${JSON.stringify(req.mac)}`);
      caps['mac'] = req.mac.toLowerCase();
    }
    return caps;
  }

  async function addEndpoint(att: AttachmentRecord, n: Network, ifName: string, req: EndpointRequest, ports: readonly PortMapping[]): Promise<Endpoint> {
    const caps = capabilityArgs(n, req);
    if (ports.length > 0) caps['portMappings'] = ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, hostIP: p.hostIP === '0.0.0.0' ? '' : p.hostIP }));
    const list = confList(n, dataDir, { ports: ports.length > 0, mac: req.mac !== undefined });
    const res = await addNetworkList(list, { containerId: `${att.namespace}-${att.id}`, netns: att.netns, ifName, capabilityArgs: caps }, cni);
    return endpointFrom(n, ifName, res, req.aliases ?? []);
  }

  /** DEL with the configuration the ADD used (in the cache), else the network's full list. */
  async function delEndpoint(att: AttachmentRecord, ep: Endpoint, n: Network | undefined, entries: readonly CacheEntry[] = listCache(cni.cacheDir, `${att.namespace}-${att.id}`)): Promise<void> {
    const containerId = `${att.namespace}-${att.id}`;
    const cached = entries.find((c) => c.ifName === ep.ifName);
    if (cached !== undefined) await delFromCache(cached, cni);
    else if (n !== undefined) await delNetworkList(confList(n, dataDir, { ports: true, mac: true }), { containerId, netns: att.netns, ifName: ep.ifName }, cni);
  }

  /** /etc/hosts of one container, given every attachment (for peers). */
  function hostsText(att: AttachmentRecord, all: readonly AttachmentRecord[]): string {
    const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'ff00::0\tip6-mcastprefix', 'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters'];
    for (const h of att.extraHosts) {
      const i = h.lastIndexOf(':');
      lines.push(`${h.slice(i + 1)}\t${h.slice(0, i)}`);
    }
    const own = att.endpoints[0];
    if (own !== undefined) lines.push(`${own.ip}\t${att.hostname}`);
    // Names resolve on user-defined networks only, as docker's (not on the default bridge).
    for (const ep of att.endpoints.filter((e) => e.network !== DEFAULT_NETWORK)) {
      for (const peer of all) {
        if (peer.namespace !== att.namespace || peer.id === att.id) continue;
        const pe = peer.endpoints.find((e) => e.networkId === ep.networkId);
        if (pe === undefined) continue;
        lines.push(`${pe.ip}\t${[peer.name, ...pe.aliases, peer.id.slice(0, 12)].join(' ')}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  /**
   * The attachments hostsText needs for `att`: every one when `att` is on a user-defined network,
   * none when it is on the default network only (no peer is listed there), so that such an attach
   * does not read every other container's record on its way to the task's start.
   */
  function peersOf(att: AttachmentRecord): AttachmentRecord[] {
    return att.endpoints.some((e) => e.network !== DEFAULT_NETWORK) ? allAtts() : [];
  }

  /** hosts, hostname and resolv.conf of one container. */
  async function writeFiles(att: AttachmentRecord, all: readonly AttachmentRecord[]): Promise<void> {
    fs.mkdirSync(att.filesDir, { recursive: true, mode: 0o755 });
    // written at once (a few system calls each) unless a peer's refresh of the file is under way
    await Promise.all([
      inPlace.writeNow(path.join(att.filesDir, 'hosts'), hostsText(att, all)),
      inPlace.writeNow(path.join(att.filesDir, 'hostname'), `${att.hostname}\n`),
      inPlace.writeNow(path.join(att.filesDir, 'resolv.conf'), resolvConf(att, opts.hostResolvConf ?? '/etc/resolv.conf')),
    ]);
  }

  /** Rewrite the hosts file of every container sharing a user-defined network with `changed`. */
  async function refreshPeers(changed: AttachmentRecord): Promise<void> {
    // Peers list each other on user-defined networks only: the default network has nothing to refresh.
    const nets = new Set(changed.endpoints.filter((e) => e.network !== DEFAULT_NETWORK).map((e) => e.networkId));
    if (nets.size === 0) return;
    const all = allAtts();
    const writes: Promise<void>[] = [];
    for (const a of all) {
      if (a.id === changed.id && a.namespace === changed.namespace) continue;
      if (!a.endpoints.some((e) => nets.has(e.networkId))) continue;
      // a peer whose files went away meanwhile (it was removed) has nothing to update
      writes.push(inPlace.write(path.join(a.filesDir, 'hosts'), hostsText(a, all), { create: false }).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }));
    }
    await Promise.all(writes);
  }

  /**
   * DEL what torn CNI cache files (a machine crash, cni.ts) of the containers `mine` picks may
   * name, with their network's full list (what the name says is all there is: network, container
   * id, interface), and remove the files; one whose network is gone has nothing left to DEL (the
   * network's bridge and allocations went with it), and `mine` gets only its name. `torn` comes
   * from the same scanCache as the whole entries, so each file is read once. Returns the errors.
   */
  async function releaseTornCache(nets: readonly Network[], torn: readonly string[], mine: (containerId: string | undefined, name: string) => boolean): Promise<Error[]> {
    const errs: Error[] = [];
    for (const file of torn) {
      const name = path.basename(file);
      const iface = /-(eth\d+)$/.exec(name);
      // the longest network name the file name starts with (names may hold dashes)
      const n = [...nets].sort((a, b) => b.name.length - a.name.length).find((x) => name.startsWith(`${x.name}-`));
      const containerId = iface !== null && n !== undefined ? name.slice(n.name.length + 1, iface.index) : undefined;
      if (!mine(containerId, name)) continue;
      if (containerId === undefined) {
        fs.rmSync(file, { force: true });
        continue;
      }
      try {
        await delNetworkList(confList(n!, dataDir, { ports: true, mac: true }), { containerId, netns: path.join(nsDir, containerId), ifName: iface![1]! }, cni);
      } catch (e) {
        errs.push(e as Error);
      }
    }
    return errs;
  }

  async function detachLocked(att: AttachmentRecord, nets: readonly Network[]): Promise<void> {
    const who = `${att.namespace}-${att.id}`;
    const t0 = performance.now();
    const errs: Error[] = [];
    // The container's files are needed by nothing that finishes a release (reconcile sweeps a
    // files directory of no attachment): they go while the plugins run. Peers' refreshes never
    // create files here (create: false), and the retries cover one that opened a file just before
    // it was unlinked.
    const files = fs.promises.rm(att.filesDir, { recursive: true, force: true, maxRetries: 3 });
    files.catch(() => undefined); // awaited below
    const cache = scanCache(cni.cacheDir, who);
    // each endpoint's DEL from its cache entry, else with its network's full list; endpoints whose
    // ADD was under way when tsrund died are only in the CNI cache
    const jobs: { what: string; run: () => Promise<void> }[] = [];
    for (const ep of [...att.endpoints].reverse()) {
      jobs.push({ what: `${ep.network} ${ep.ifName}`, run: () => delEndpoint(att, ep, nets.find((x) => x.id === ep.networkId), cache.entries) });
    }
    for (const c of cache.entries) if (!att.endpoints.some((ep) => ep.ifName === c.ifName)) jobs.push({ what: `${c.networkName} ${c.ifName} (cache only)`, run: () => delFromCache(c, cni) });
    for (const j of jobs) {
      try {
        await step(`detach DEL ${j.what}`, who, j.run);
      } catch (e) {
        errs.push(e as Error);
      }
    }
    errs.push(...(await releaseTornCache(nets, cache.torn, (containerId, name) => containerId === who || (containerId === undefined && name.includes(`-${who}-`)))));
    try {
      await step('detach netns remove', who, () => removeNetns(att.netns));
    } catch (e) {
      errs.push(e as Error);
    }
    try {
      await step('detach files remove', who, () => files);
    } catch (e) {
      errs.push(e as Error);
    }
    if (errs.length > 0) throw new TsrunError('Internal', `release the network of container ${att.id}: ${errs[0]!.message}`, { cleanup: errs.slice(1) });
    fs.rmSync(attFile(att.namespace, att.id), { force: true });
    await step('detach peers refresh', who, () => refreshPeers({ ...att, endpoints: att.endpoints }));
    if (tracing) trace('detach done', { container: who, ms: Math.round(performance.now() - t0) });
  }

  /**
   * Attach under the container's lock. `onPrepared` (background attaches) gets the record once the
   * namespace and the files exist, before the plugins run.
   */
  const attachLocked = (req: AttachRequest, onPrepared?: (att: AttachmentRecord) => void): Promise<AttachmentRecord> =>
    perContainer(req.namespace, req.id, async () => {
      const t0 = performance.now();
      if (loadAtt(req.namespace, req.id) !== undefined) throw new TsrunError('AlreadyExists', `container ${req.id} already has a network attachment`);
      if (req.endpoints.some((e) => e.network === DEFAULT_NETWORK)) await ensureDefault();
      const nets = load();
      const targets = req.endpoints.map((e) => ({ req: e, net: find(nets, e.network) }));
      if (new Set(targets.map((t) => t.net.id)).size !== targets.length) throw new TsrunError('InvalidArgument', `container ${req.id}: a network is named twice`);
      const publishOn = targets.findIndex((t) => !t.net.internal);
      if (req.ports.length > 0 && publishOn < 0) throw new TsrunError('InvalidArgument', `container ${req.id}: ports cannot be published on internal networks only`);
      // bad --ip / --mac-address are refused now, not after a background attach returned
      for (const t of targets) capabilityArgs(t.net, t.req);
      const netns = path.join(nsDir, `${req.namespace}-${req.id}`);
      const who = `${req.namespace}-${req.id}`;
      // Ports are checked against every other record and this record is written in one
      // critical section, so two attaches can't both take a port; without ports there is nothing
      // to claim, and the attaches of a burst of starts do not queue behind each other's write.
      const record = async (): Promise<AttachmentRecord> => {
        const taken = req.ports.length > 0 ? allAtts().flatMap((a) => a.ports) : [];
        const ports: PortMapping[] = [];
        for (const p of req.ports) ports.push(await checkPort(p, [...taken, ...ports]));
        const rec: AttachmentRecord = {
          namespace: req.namespace,
          id: req.id,
          name: req.name,
          hostname: req.hostname,
          netns,
          endpoints: [],
          ports,
          extraHosts: [...req.extraHosts],
          filesDir: path.join(filesRoot, `${req.namespace}-${req.id}`),
          dns: [...req.dns],
          dnsSearch: [...req.dnsSearch],
          dnsOptions: [...req.dnsOptions],
        };
        await step('attach record write', who, () => saveAtt(rec));
        return rec;
      };
      const att = req.ports.length > 0 ? await lock.critical(record) : await record();
      try {
        await step('attach netns create', who, () => createNetns(nsDir, `${req.namespace}-${req.id}`));
        if (onPrepared !== undefined) {
          // no endpoint yet, so no peer to list: the other records need not be read
          await step('attach files write', who, () => writeFiles(att, []));
          onPrepared({ ...att, endpoints: [] });
          if (tracing) trace('attach prepared', { container: who, ms: Math.round(performance.now() - t0) });
        }
        for (const [i, t] of targets.entries()) {
          att.endpoints.push(await step(`attach ADD ${t.net.name} eth${i}`, who, () => addEndpoint(att, t.net, `eth${i}`, t.req, i === publishOn ? att.ports : [])));
          await step('attach record write', who, () => saveAtt(att));
        }
        await step('attach files write', who, () => writeFiles(att, peersOf(att)));
      } catch (e) {
        try {
          await detachLocked(att, nets);
        } catch (c) {
          throw new TsrunError(e instanceof TsrunError ? e.code : 'Internal', (e as Error).message, { cause: e, cleanup: [c as Error] });
        }
        throw e;
      }
      await step('attach peers refresh', who, () => refreshPeers(att));
      if (tracing) trace('attach done', { container: who, ms: Math.round(performance.now() - t0) });
      return att;
    });

  return {
    create: (req) => exclusive(() => createLocked(req)),
    list: () => load(),
    get: (ref) => find(load(), ref),
    remove: (ref) =>
      exclusive(async () => {
        const n = find(load(), ref);
        if (n.name === DEFAULT_NETWORK) throw new TsrunError('PermissionDenied', `${n.name} is a pre-defined network and cannot be removed`);
        await removeLocked(n);
      }),
    prune: () =>
      exclusive(async () => {
        const used = new Set(allAtts().flatMap((a) => a.endpoints.map((e) => e.networkId)));
        const out: string[] = [];
        for (const n of load()) {
          if (n.name === DEFAULT_NETWORK || used.has(n.id)) continue;
          await removeLocked(n);
          out.push(n.name);
        }
        return out;
      }),
    attach: (req) => {
      if (req.background !== true) return attachLocked(req);
      const key = `${req.namespace}/${req.id}`;
      let prepared: ((att: AttachmentRecord) => void) | undefined;
      const early = new Promise<AttachmentRecord>((resolve) => (prepared = resolve));
      const done = attachLocked(req, (att) => prepared?.(att));
      const settled = done.then(() => undefined);
      settled.catch(() => undefined); // read by ready(); a failure is also the caller's to see there
      pending.set(key, settled);
      // A failure before the namespace exists (unknown network, taken port, bad --ip) is the caller's.
      return Promise.race([early, done]).catch((e: unknown) => {
        pending.delete(key);
        throw e;
      });
    },
    ready: async (ns, id) => {
      const key = `${ns}/${id}`;
      const p = pending.get(key);
      if (p === undefined) return;
      await p;
      if (pending.get(key) === p) pending.delete(key);
    },
    connect: (ns, id, ep) =>
      perContainer(ns, id, async () => {
        const att = loadAtt(ns, id);
        if (att === undefined) throw new TsrunError('NotFound', `container ${id} has no network namespace of tsrund's (host, none or container network mode)`);
        if (att.torn === true) throw new TsrunError('FailedPrecondition', `container ${id}: its network record ${attFile(ns, id)} was torn by a crash of the machine; remove the container`);
        if (ep.network === DEFAULT_NETWORK) await ensureDefault();
        const n = find(load(), ep.network);
        if (att.endpoints.some((e) => e.networkId === n.id)) throw new TsrunError('AlreadyExists', `endpoint with name ${att.name} already exists in network ${n.name}`);
        let i = 0;
        while (att.endpoints.some((e) => e.ifName === `eth${i}`)) i++;
        att.endpoints.push(await addEndpoint(att, n, `eth${i}`, ep, []));
        saveAtt(att);
        await writeFiles(att, peersOf(att));
        await refreshPeers(att);
        return att;
      }),
    disconnect: (ns, id, network) =>
      perContainer(ns, id, async () => {
        const att = loadAtt(ns, id);
        const n = find(load(), network);
        const ep = att?.endpoints.find((e) => e.networkId === n.id);
        if (att === undefined || ep === undefined) throw new TsrunError('NotFound', `container ${id} is not connected to network ${n.name}`);
        await delEndpoint(att, ep, n);
        const next: AttachmentRecord = { ...att, endpoints: att.endpoints.filter((e) => e !== ep) };
        saveAtt(next);
        await writeFiles(next, peersOf(next));
        await refreshPeers(att);
        return next;
      }),
    detach: (ns, id) =>
      perContainer(ns, id, async () => {
        pending.delete(`${ns}/${id}`);
        const att = loadAtt(ns, id);
        if (att === undefined) return;
        await detachLocked(att, load());
      }),
    attachment: (ns, id) => {
      const a = loadAtt(ns, id);
      return a?.torn === true ? undefined : a;
    },
    attachments: () => allAtts(),
    reconcile: (live) =>
      exclusive(async () => {
        const released: string[] = [];
        const nets = load();
        const keep = new Set<string>();
        for (const a of allAtts()) {
          if (live.has(`${a.namespace}/${a.id}`)) {
            keep.add(`${a.namespace}-${a.id}`);
            continue;
          }
          await detachLocked(a, nets);
          released.push(`${a.namespace}/${a.id}`);
        }
        // Records a machine crash left torn name their container only in the file name
        // (`<ns>-<id>.json`): a live container's stays (its detach releases it from the cache),
        // another's goes, and the sweeps below release its cache entries, namespace and files.
        const liveKeys = new Set([...live].map((k) => k.replace('/', '-')));
        for (const name of readdirOrEmpty(attDir)) {
          const file = path.join(attDir, name);
          if (name.endsWith('.tmp')) {
            fs.rmSync(file, { force: true });
            continue;
          }
          if (!name.endsWith('.json') || readRecord(file).kind !== 'torn') continue;
          const key = name.slice(0, -'.json'.length);
          if (liveKeys.has(key)) {
            keep.add(key);
            continue;
          }
          fs.rmSync(file, { force: true });
          released.push(key);
        }
        const cache = scanCache(cni.cacheDir);
        for (const c of cache.entries) {
          if (keep.has(c.containerId)) continue;
          await delFromCache(c, cni);
          released.push(c.containerId);
        }
        const tornErrs = await releaseTornCache(nets, cache.torn, (containerId, name) => (containerId !== undefined ? !keep.has(containerId) : ![...keep].some((k) => name.includes(`-${k}-`))));
        if (tornErrs.length > 0) throw new TsrunError('Internal', `release torn cni cache entries: ${tornErrs[0]!.message}`, { cleanup: tornErrs.slice(1) });
        for (const name of readdirOrEmpty(cni.cacheDir)) if (name.endsWith('.tmp')) fs.rmSync(path.join(cni.cacheDir, name), { force: true });
        for (const f of listNetns(nsDir)) {
          if (keep.has(path.basename(f))) continue;
          removeNetns(f);
        }
        for (const name of readdirOrEmpty(filesRoot)) if (!keep.has(name)) fs.rmSync(path.join(filesRoot, name), { recursive: true, force: true });
        if (nets.length > 0) await syncIsolation(isolationOf(nets), prefix);
        // bridges made before their address was set at create keep the one they have now
        for (const n of nets) {
          if (!fs.existsSync(`/sys/class/net/${n.bridge}`) || macPinned(n.bridge)) continue;
          await run('ip', ['link', 'set', 'dev', n.bridge, 'address', currentMac(n.bridge)]).catch(() => undefined);
        }
        return released;
      }),
  };
}

/** The names in `dir`, none when it does not exist. */
function readdirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** A random locally administered unicast MAC address. */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** True when the device's address was set explicitly (addr_assign_type NET_ADDR_SET), so a bridge keeps it. */
function macPinned(dev: string): boolean {
  try {
    return fs.readFileSync(`/sys/class/net/${dev}/addr_assign_type`, 'utf8').trim() === '3';
  } catch {
    return false;
  }
}

function currentMac(dev: string): string {
  return fs.readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim();
}

function overlapsCidr(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  const m = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((a.base & m) >>> 0) === ((b.base & m) >>> 0);
}

function overlapsText(subnet: string, c: Cidr): boolean {
  return overlapsCidr(parseCidr(subnet, 'subnet'), c);
}

/** resolv.conf as docker writes it: --dns/--dns-search/--dns-option, else the host's minus loopback servers. */
export function resolvConf(att: Pick<AttachmentRecord, 'dns' | 'dnsSearch' | 'dnsOptions'>, hostFile: string): string {
  let host = '';
  try {
    host = fs.readFileSync(hostFile, 'utf8');
  } catch {
    host = '';
  }
  const hostLines = host.split('\n').map((l) => l.trim());
  const servers = att.dns.length > 0 ? att.dns : hostLines.filter((l) => /^nameserver\s/.test(l)).map((l) => l.split(/\s+/)[1] ?? '').filter((s) => s !== '' && !s.startsWith('127.') && s !== '::1');
  const search = att.dnsSearch.length > 0 ? att.dnsSearch : hostLines.filter((l) => /^search\s/.test(l)).flatMap((l) => l.split(/\s+/).slice(1));
  const options = att.dnsOptions.length > 0 ? att.dnsOptions : hostLines.filter((l) => /^options\s/.test(l)).flatMap((l) => l.split(/\s+/).slice(1));
  const out: string[] = [];
  for (const s of servers.length > 0 ? servers : ['8.8.8.8', '8.8.4.4']) out.push(`nameserver ${s}`);
  if (search.length > 0) out.push(`search ${search.join(' ')}`);
  if (options.length > 0) out.push(`options ${options.join(' ')}`);
  return `${out.join('\n')}\n`;
}

/** The manager's locks: a readers-writer lock whose readers are per-container queues, and a mutex. */
function createLocks(): {
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  shared<T>(key: string, fn: () => Promise<T>): Promise<T>;
  critical<T>(fn: () => Promise<T>): Promise<T>;
} {
  let active = 0;
  let writer: Promise<unknown> = Promise.resolve();
  let writing = false;
  let drained: (() => void) | undefined;
  const perKey = new Map<string, Promise<unknown>>();
  let mutex: Promise<unknown> = Promise.resolve();
  const chain = <T>(prev: Promise<unknown>, fn: () => Promise<T>): Promise<T> => prev.then(fn, fn);
  return {
    exclusive(fn) {
      const run = chain(writer, async () => {
        writing = true;
        if (active > 0) await new Promise<void>((r) => (drained = r));
        try {
          return await fn();
        } finally {
          writing = false;
        }
      });
      writer = run.catch(() => undefined);
      return run;
    },
    shared(key, fn) {
      const start = async () => {
        // wait out a writer that is running or queued before us
        while (writing) await writer;
        await writer;
        active++;
        try {
          return await fn();
        } finally {
          active--;
          if (active === 0 && drained !== undefined) {
            const d = drained;
            drained = undefined;
            d();
          }
        }
      };
      const run = chain(perKey.get(key) ?? Promise.resolve(), start);
      const tail = run.catch(() => undefined);
      perKey.set(key, tail);
      void tail.then(() => {
        if (perKey.get(key) === tail) perKey.delete(key);
      });
      return run;
    },
    critical(fn) {
      const run = chain(mutex, fn);
      mutex = run.catch(() => undefined);
      return run;
    },
  };
}
