/*
 * The image half of tsrund, assembled: image tables, content store, snapshotters, collector and
 * their gRPC services, plus the Leases service grown with resources (and a collection when a lease
 * that held something goes). daemon.ts calls `createImageServices` once and registers what it returns.
 *
 * Snapshotters: `native` always; `overlayfs` (ctr's default) when an overlay with two lower dirs
 * mounts under the root, else a warning says why and names the fallback.
 */
import * as grpc from '@grpc/grpc-js';
import { createContentStore, type ContentStore } from '../content/store';
import type { Exchange } from '../events/exchange';
import { createGc, type Gc } from '../gc/collect';
import { RpcStatus, type ServiceImpl, type Unary } from '../grpc/server';
import type { Logger } from '../log';
import { applyLayer, writeDiff } from '../diff/index';
import { contentService } from '../services/content';
import { diffService } from '../services/diff';
import { makeDiffer } from './make-diff';
import { imagesService, leaseResourceMethods, snapshotsService } from '../services/images';
import { nativeDriver, overlayDriver, overlayProblem, type SnapshotDriver } from '../snapshots/drivers';
import { createSnapshots, type Snapshots } from '../snapshots/local';
import type { Store } from '../store/db';
import { openImageMeta, type ImageMeta } from '../store/images';
import { createImages, type Images } from './local';

/** How often the collector runs besides after deletes. */
const GC_INTERVAL_MS = 10 * 60 * 1000;

/** The assembled image services. */
export interface ImageServices {
  readonly meta: ImageMeta;
  readonly content: ContentStore;
  readonly snapshots: Snapshots;
  readonly images: Images;
  readonly gc: Gc;
  /** Content, Images, Snapshots, Diff */
  readonly services: ServiceImpl[];
  /** the Leases service with resources and collection on delete */
  leases(base: ServiceImpl): ServiceImpl;
  close(): void;
}

/** Build the image services under `root` (tsrund's --root). */
export function createImageServices(root: string, store: Store, events: Exchange, log: Logger): ImageServices {
  const meta = openImageMeta(root);
  const addResource = (ns: string, lease: string, type: string, id: string): void => {
    if (store.getLease(ns, lease) !== undefined) meta.addLeaseResource(ns, lease, { type, id });
  };
  const content = createContentStore(root, meta, addResource);
  const drivers: SnapshotDriver[] = [];
  const problem = process.getuid?.() === 0 ? overlayProblem(root) : 'not running as root';
  if (problem === undefined) drivers.push(overlayDriver(root));
  else log.warn('overlayfs snapshotter unavailable: images unpack with the copying "native" snapshotter (ctr --snapshotter native)', { why: problem });
  drivers.push(nativeDriver(root));
  const snapshots = createSnapshots(meta, drivers, events, addResource);
  // what a crash left half-made (docs/images.md)
  for (const sn of snapshots.names) snapshots.cleanup(sn);
  const gc = createGc(store, meta, content, snapshots, log);
  const images = createImages(meta, events, gc);
  gc.start(GC_INTERVAL_MS);
  return {
    meta,
    content,
    snapshots,
    images,
    gc,
    services: [
      contentService(content, events),
      imagesService(images),
      snapshotsService(snapshots),
      diffService(content, (input, dir, o) => applyLayer(input, dir, { ...o, warn: (m) => log.warn('layer apply', { warning: m }) }), makeDiffer(content, writeDiff)),
    ],
    leases(base) {
      const baseDelete = base.unary?.['Delete'];
      if (baseDelete === undefined) throw new RpcStatus(grpc.status.INTERNAL, 'Leases service without Delete');
      const del: Unary = async (req: { id: string; sync: boolean }, ctx) => {
        const ns = ctx.namespace();
        const held = meta.listLeaseResources(ns, req.id).length > 0;
        await (baseDelete as (r: unknown, c: typeof ctx) => unknown)(req, ctx);
        meta.dropLeaseResources(ns, req.id);
        if (req.sync) await gc.collect();
        else if (held) gc.schedule();
        return {};
      };
      return {
        ...base,
        unary: { ...base.unary, ...leaseResourceMethods(meta, (ns, id) => store.getLease(ns, id) !== undefined), Delete: del },
      };
    },
    close() {
      gc.stop();
      meta.close();
    },
  };
}
