/*
 * gRPC adapters for Version, Introspection, Namespaces, Leases, Containers and Events: decode →
 * call the plain logic → build the response. No logic lives here.
 */
import * as grpc from '@grpc/grpc-js';
import type { Containers, ContainerInput } from '../containers/local';
import type { Exchange } from '../events/exchange';
import { parseFilters } from '../events/filters';
import type { Leases } from '../leases/local';
import type { Namespaces } from '../namespaces/local';
import type { FiltersRequest, WireContainer, WireFieldMask, WireNamespace } from '../proto/messages';
import type { ContainerRecord, LeaseRecord } from '../store/db';
import { RpcStatus, type ServiceImpl } from '../grpc/server';

/** The container record as containerd's Container message. */
export function containerToWire(c: ContainerRecord): Record<string, unknown> {
  return {
    id: c.id,
    labels: c.labels,
    image: c.image,
    runtime: c.runtime.options === null ? { name: c.runtime.name } : { name: c.runtime.name, options: c.runtime.options },
    spec: c.spec,
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    extensions: c.extensions,
  };
}

function containerInput(c: WireContainer | null): ContainerInput {
  return {
    id: c?.id ?? '',
    labels: { ...(c?.labels ?? {}) },
    image: c?.image ?? '',
    runtime: c?.runtime === null || c?.runtime === undefined ? null : { name: c.runtime.name, options: c.runtime.options },
    spec: c?.spec ?? null,
    snapshotter: c?.snapshotter ?? '',
    snapshotKey: c?.snapshotKey ?? '',
    extensions: { ...(c?.extensions ?? {}) },
  };
}

function leaseToWire(l: LeaseRecord): Record<string, unknown> {
  return { id: l.id, createdAt: l.createdAt, labels: l.labels };
}

/** containerd.services.version.v1.Version */
export function versionService(version: string, revision: string): ServiceImpl {
  return { service: 'containerd.services.version.v1.Version', unary: { Version: () => ({ version, revision }) } };
}

/** containerd.services.introspection.v1.Introspection (Server only) */
export function introspectionService(uuid: string): ServiceImpl {
  return { service: 'containerd.services.introspection.v1.Introspection', unary: { Server: () => ({ uuid }) } };
}

/** containerd.services.namespaces.v1.Namespaces */
export function namespacesService(ns: Namespaces): ServiceImpl {
  return {
    service: 'containerd.services.namespaces.v1.Namespaces',
    unary: {
      List: () => ({ namespaces: ns.list() }),
      Get: (req: { name: string }) => ({ namespace: ns.get(req.name) }),
      Create: (req: { namespace: WireNamespace | null }, ctx) => ({
        namespace: ns.create({ name: req.namespace?.name ?? '', labels: { ...(req.namespace?.labels ?? {}) } }, ctx.rawNamespace),
      }),
      Update: (req: { namespace: WireNamespace | null; updateMask: WireFieldMask | null }, ctx) => ({
        namespace: ns.update(
          { name: req.namespace?.name ?? '', labels: { ...(req.namespace?.labels ?? {}) } },
          req.updateMask?.paths ?? [],
          ctx.rawNamespace,
        ),
      }),
      Delete: (req: { name: string }) => {
        ns.delete(req.name);
        return {};
      },
    },
  };
}

/** containerd.services.leases.v1.Leases (Create, Delete, List) */
export function leasesService(leases: Leases): ServiceImpl {
  return {
    service: 'containerd.services.leases.v1.Leases',
    unary: {
      Create: (req: { id: string; labels: Record<string, string> }, ctx) => ({
        lease: leaseToWire(leases.create(ctx.namespace(), req.id, { ...req.labels })),
      }),
      Delete: (req: { id: string }, ctx) => {
        leases.delete(ctx.namespace(), req.id);
        return {};
      },
      List: (req: FiltersRequest, ctx) => ({ leases: leases.list(ctx.namespace(), req.filters).map(leaseToWire) }),
    },
  };
}

/**
 * containerd.services.containers.v1.Containers. ListStream sends one ListContainerMessage per
 * container, as containerd 1.6 does (ctr tries it first and only falls back to List on
 * UNIMPLEMENTED); the list is read before the first message, so the stream is one snapshot.
 */
export function containersService(containers: Containers): ServiceImpl {
  return {
    service: 'containerd.services.containers.v1.Containers',
    unary: {
      Get: (req: { id: string }, ctx) => ({ container: containerToWire(containers.get(ctx.namespace(), req.id)) }),
      List: (req: FiltersRequest, ctx) => ({ containers: containers.list(ctx.namespace(), req.filters).map(containerToWire) }),
      Create: (req: { container: WireContainer | null }, ctx) => ({
        container: containerToWire(containers.create(ctx.namespace(), containerInput(req.container))),
      }),
      Update: async (req: { container: WireContainer | null; updateMask: WireFieldMask | null }, ctx) => ({
        container: containerToWire(await containers.update(ctx.namespace(), containerInput(req.container), req.updateMask?.paths ?? [])),
      }),
      Delete: (req: { id: string }, ctx) => {
        containers.delete(ctx.namespace(), req.id);
        return {};
      },
    },
    stream: {
      ListStream: async (req: FiltersRequest, ctx, write) => {
        for (const c of containers.list(ctx.namespace(), req.filters)) write({ container: containerToWire(c) });
      },
    },
  };
}

/** containerd.services.events.v1.Events (Subscribe; Publish/Forward UNIMPLEMENTED) */
export function eventsService(exchange: Exchange): ServiceImpl {
  return {
    service: 'containerd.services.events.v1.Events',
    stream: {
      Subscribe: (req: FiltersRequest, ctx, write) => {
        const filter = parseFilters(req.filters);
        return new Promise<void>((resolve) => {
          const unsubscribe = exchange.subscribe({ filter, send: (e) => write(e) });
          ctx.onCancel(() => {
            unsubscribe();
            resolve();
          });
        });
      },
    },
  };
}
