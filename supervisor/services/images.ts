/*
 * gRPC adapters for containerd.services.images.v1.Images, containerd.services.snapshots.v1.Snapshots
 * and the resource methods of Leases, over images/local.ts, snapshots/local.ts and the lease
 * resource table. No logic here.
 */
import type { Images } from '../images/local';
import type { ServiceImpl, Unary } from '../grpc/server';
import type { Int64 } from '../proto/index';
import type { Snapshots } from '../snapshots/local';
import type { Descriptor, ImageMeta, ImageRecord, SnapshotRecord } from '../store/images';
import { TsrunError } from '../../spec/errors';
import { int64 } from './content';

interface WireDescriptor {
  mediaType: string;
  digest: string;
  size: Int64;
  annotations: Record<string, string>;
}
interface WireImage {
  name: string;
  labels: Record<string, string>;
  target: WireDescriptor | null;
}

/** A decoded containerd.types.Descriptor as a plain one. */
export function descriptorFromWire(d: WireDescriptor | null): Descriptor {
  return { mediaType: d?.mediaType ?? '', digest: d?.digest ?? '', size: int64(d?.size), annotations: { ...(d?.annotations ?? {}) } };
}

function imageToWire(i: ImageRecord): Record<string, unknown> {
  return { name: i.name, labels: i.labels, target: i.target, createdAt: i.createdAt, updatedAt: i.updatedAt };
}

function imageInput(i: WireImage | null): { name: string; labels: Record<string, string>; target: Descriptor } {
  return { name: i?.name ?? '', labels: { ...(i?.labels ?? {}) }, target: descriptorFromWire(i?.target ?? null) };
}

/** containerd.services.images.v1.Images */
export function imagesService(images: Images): ServiceImpl {
  return {
    service: 'containerd.services.images.v1.Images',
    unary: {
      Get: (req: { name: string }, ctx) => ({ image: imageToWire(images.get(ctx.namespace(), req.name)) }),
      List: (req: { filters: string[] }, ctx) => ({ images: images.list(ctx.namespace(), req.filters).map(imageToWire) }),
      Create: (req: { image: WireImage | null }, ctx) => ({ image: imageToWire(images.create(ctx.namespace(), imageInput(req.image))) }),
      Update: (req: { image: WireImage | null; updateMask: { paths: string[] } | null }, ctx) => ({
        image: imageToWire(images.update(ctx.namespace(), imageInput(req.image), req.updateMask?.paths ?? [])),
      }),
      Delete: async (req: { name: string; sync: boolean }, ctx) => {
        await images.delete(ctx.namespace(), req.name, req.sync);
        return {};
      },
    },
  };
}

const KIND = { view: 1, active: 2, committed: 3 } as const;

function snapInfo(s: SnapshotRecord): Record<string, unknown> {
  return { name: s.key, parent: s.parent, kind: KIND[s.kind], createdAt: s.createdAt, updatedAt: s.updatedAt, labels: s.labels };
}

interface SnapReq {
  snapshotter: string;
  key: string;
  parent: string;
  name: string;
  labels: Record<string, string>;
}

/** containerd.services.snapshots.v1.Snapshots */
export function snapshotsService(snaps: Snapshots): ServiceImpl {
  return {
    service: 'containerd.services.snapshots.v1.Snapshots',
    unary: {
      Prepare: (r: SnapReq, ctx) => ({ mounts: snaps.prepare(r.snapshotter, ctx.namespace(), r.key, r.parent, { ...r.labels }, ctx.lease) }),
      View: (r: SnapReq, ctx) => ({ mounts: snaps.view(r.snapshotter, ctx.namespace(), r.key, r.parent, { ...r.labels }, ctx.lease) }),
      Mounts: (r: SnapReq, ctx) => ({ mounts: snaps.mounts(r.snapshotter, ctx.namespace(), r.key) }),
      Commit: (r: SnapReq, ctx) => {
        snaps.commit(r.snapshotter, ctx.namespace(), r.name, r.key, { ...r.labels }, ctx.lease);
        return {};
      },
      Remove: (r: SnapReq, ctx) => {
        snaps.remove(r.snapshotter, ctx.namespace(), r.key);
        return {};
      },
      Stat: (r: SnapReq, ctx) => ({ info: snapInfo(snaps.stat(r.snapshotter, ctx.namespace(), r.key)) }),
      Update: (r: { snapshotter: string; info: { name: string; labels: Record<string, string> } | null; updateMask: { paths: string[] } | null }, ctx) => ({
        info: snapInfo(snaps.update(r.snapshotter, ctx.namespace(), r.info?.name ?? '', { ...(r.info?.labels ?? {}) }, r.updateMask?.paths ?? [])),
      }),
      Usage: (r: SnapReq, ctx) => snaps.usage(r.snapshotter, ctx.namespace(), r.key),
      Cleanup: (r: SnapReq) => {
        snaps.cleanup(r.snapshotter);
        return {};
      },
    },
    stream: {
      List: async (r: { snapshotter: string; filters: string[] }, ctx, write) => {
        const all = snaps.list(r.snapshotter, ctx.namespace(), r.filters).map(snapInfo);
        for (let i = 0; i < all.length; i += 100) write({ info: all.slice(i, i + 100) });
      },
    },
  };
}

const RESOURCE_TYPE = /^(content|ingests|snapshots\/[A-Za-z0-9._-]+)$/;

/** Leases' AddResource/DeleteResource/ListResources, merged into the Leases service by the daemon. */
export function leaseResourceMethods(meta: ImageMeta, leaseExists: (ns: string, id: string) => boolean): Record<string, Unary> {
  const check = (ns: string, id: string, r: { id: string; type: string } | null): { id: string; type: string } => {
    if (!leaseExists(ns, id)) throw new TsrunError('NotFound', `lease "${id}": not found`);
    if (r === null || r.id === '' || !RESOURCE_TYPE.test(r.type)) {
      throw new TsrunError('InvalidArgument', `lease ${id}: resource ${JSON.stringify(r ?? {})}: unsupported resource type: invalid argument`);
    }
    return { id: r.id, type: r.type };
  };
  return {
    AddResource: (req: { id: string; resource: { id: string; type: string } | null }, ctx) => {
      const ns = ctx.namespace();
      meta.addLeaseResource(ns, req.id, check(ns, req.id, req.resource));
      return {};
    },
    DeleteResource: (req: { id: string; resource: { id: string; type: string } | null }, ctx) => {
      const ns = ctx.namespace();
      meta.deleteLeaseResource(ns, req.id, check(ns, req.id, req.resource));
      return {};
    },
    ListResources: (req: { id: string }, ctx) => {
      const ns = ctx.namespace();
      if (!leaseExists(ns, req.id)) throw new TsrunError('NotFound', `lease "${req.id}": not found`);
      return { resources: meta.listLeaseResources(ns, req.id) };
    },
  };
}
