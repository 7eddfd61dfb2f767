/*
 * gRPC adapter for tsrun.services.networks.v1.Networks over networks/manager.ts. No logic here:
 * decode, call, encode.
 */
import type { ServiceImpl } from '../grpc/server';
import type { AttachmentRecord, Endpoint, EndpointRequest, Networks, PortMapping } from '../networks/manager';
import type { Network } from '../networks/config';
import { TsrunError } from '../../spec/errors';

interface WirePort {
  hostIp?: string;
  hostPort?: number;
  containerPort?: number;
  protocol?: string;
}
interface WireEndpointRequest {
  network?: string;
  ip?: string;
  mac?: string;
  aliases?: string[];
}

function networkToWire(n: Network): Record<string, unknown> {
  return { ...n };
}

function portFromWire(p: WirePort): PortMapping {
  const protocol = p.protocol === '' || p.protocol === undefined ? 'tcp' : p.protocol;
  if (protocol !== 'tcp' && protocol !== 'udp') throw new TsrunError('InvalidArgument', `invalid protocol ${JSON.stringify(protocol)}: want tcp or udp`);
  return { hostIP: p.hostIp === undefined || p.hostIp === '' ? '0.0.0.0' : p.hostIp, hostPort: p.hostPort ?? 0, containerPort: p.containerPort ?? 0, protocol };
}

function portToWire(p: PortMapping): Record<string, unknown> {
  return { hostIp: p.hostIP, hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol };
}

function endpointRequest(e: WireEndpointRequest | null | undefined): EndpointRequest {
  return {
    network: e?.network ?? '',
    ...(e?.ip !== undefined && e.ip !== '' ? { ip: e.ip } : {}),
    ...(e?.mac !== undefined && e.mac !== '' ? { mac: e.mac } : {}),
    aliases: e?.aliases ?? [],
  };
}

function endpointToWire(e: Endpoint): Record<string, unknown> {
  return { ...e, aliases: [...e.aliases] };
}

function attachmentToWire(a: AttachmentRecord): Record<string, unknown> {
  return { id: a.id, name: a.name, hostname: a.hostname, netns: a.netns, endpoints: a.endpoints.map(endpointToWire), ports: a.ports.map(portToWire), filesDir: a.filesDir };
}

/** tsrun.services.networks.v1.Networks */
export function networksService(nets: Networks): ServiceImpl {
  return {
    service: 'tsrun.services.networks.v1.Networks',
    unary: {
      Create: async (req: { name: string; subnet: string; gateway: string; internal: boolean; labels: Record<string, string>; driver: string }) => {
        if (req.driver !== '' && req.driver !== 'bridge') throw new TsrunError('InvalidArgument', `plugin "${req.driver}" not found: only the bridge driver is supported`);
        const n = await nets.create({
          name: req.name,
          ...(req.subnet !== '' ? { subnet: req.subnet } : {}),
          ...(req.gateway !== '' ? { gateway: req.gateway } : {}),
          internal: req.internal,
          labels: { ...(req.labels ?? {}) },
        });
        return { network: networkToWire(n) };
      },
      Get: (req: { ref: string }) => ({ network: networkToWire(nets.get(req.ref)) }),
      List: () => ({ networks: nets.list().map(networkToWire) }),
      Remove: async (req: { ref: string }) => {
        await nets.remove(req.ref);
        return {};
      },
      Prune: async () => ({ removed: await nets.prune() }),
      Attach: async (req: { id: string; name: string; hostname: string; endpoints: WireEndpointRequest[]; ports: WirePort[]; dns: string[]; dnsSearch: string[]; dnsOptions: string[]; extraHosts: string[]; background: boolean }, ctx) => {
        const a = await nets.attach({
          namespace: ctx.namespace(),
          id: req.id,
          name: req.name,
          hostname: req.hostname,
          endpoints: (req.endpoints ?? []).map(endpointRequest),
          ports: (req.ports ?? []).map(portFromWire),
          dns: req.dns ?? [],
          dnsSearch: req.dnsSearch ?? [],
          dnsOptions: req.dnsOptions ?? [],
          extraHosts: req.extraHosts ?? [],
          background: req.background === true,
        });
        return { attachment: attachmentToWire(a) };
      },
      Connect: async (req: { id: string; endpoint: WireEndpointRequest | null }, ctx) => ({ attachment: attachmentToWire(await nets.connect(ctx.namespace(), req.id, endpointRequest(req.endpoint))) }),
      Disconnect: async (req: { id: string; network: string }, ctx) => ({ attachment: attachmentToWire(await nets.disconnect(ctx.namespace(), req.id, req.network)) }),
      Detach: async (req: { id: string }, ctx) => {
        await nets.detach(ctx.namespace(), req.id);
        return {};
      },
      Inspect: (req: { id: string }, ctx) => {
        const a = nets.attachment(ctx.namespace(), req.id);
        if (a === undefined) throw new TsrunError('NotFound', `container ${req.id} has no network of tsrund's`);
        return { attachment: attachmentToWire(a) };
      },
      ListAttachments: () => ({ attachments: nets.attachments().map(attachmentToWire) }),
    },
  };
}
