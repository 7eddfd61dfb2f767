/*
 * Images: names pointing at a manifest or index descriptor, per namespace, with containerd's
 * validation, field-mask updates and events (/images/create, /images/update, /images/delete,
 * payloads in package containerd.services.images.v1). Deleting one asks the garbage collector to
 * run: synchronously with `sync`, soon otherwise.
 */
import { TsrunError } from '../../spec/errors';
import type { Exchange } from '../events/exchange';
import { objectAdaptor, parseFilters } from '../events/filters';
import { checkDigest, updateLabels } from '../content/store';
import { now } from '../proto/index';
import type { Descriptor, ImageMeta, ImageRecord } from '../store/images';

/** The image logic the Images service adapts. */
export interface Images {
  get(ns: string, name: string): ImageRecord;
  list(ns: string, filters: readonly string[]): ImageRecord[];
  create(ns: string, img: { name: string; labels: Record<string, string>; target: Descriptor }): ImageRecord;
  update(ns: string, img: { name: string; labels: Record<string, string>; target: Descriptor }, paths: readonly string[]): ImageRecord;
  delete(ns: string, name: string, sync: boolean): Promise<void>;
}

/** What deleting an image asks of the collector. */
export interface Collector {
  collect(): Promise<unknown>;
  schedule(): void;
}

const EV = 'containerd.services.images.v1';

function validate(img: { name: string; target: Descriptor }): void {
  if (img.name === '') throw new TsrunError('InvalidArgument', 'image name must not be empty: invalid argument');
  if (img.target.mediaType === '') throw new TsrunError('InvalidArgument', `image ${img.name}: Target.MediaType must be set: invalid argument`);
  try {
    checkDigest(img.target.digest);
  } catch {
    throw new TsrunError('InvalidArgument', `image ${img.name}: Target.Digest ${JSON.stringify(img.target.digest)} invalid: invalid argument`);
  }
}

/** Images over the metadata tables. */
export function createImages(meta: ImageMeta, events: Exchange, gc: Collector): Images {
  const get = (ns: string, name: string): ImageRecord => {
    const i = meta.getImage(ns, name);
    if (i === undefined) throw new TsrunError('NotFound', `image ${JSON.stringify(name)}: not found`);
    return i;
  };
  return {
    get,
    list(ns, filters) {
      const f = parseFilters(filters);
      return meta.listImages(ns).filter((i) =>
        f(objectAdaptor({ name: i.name, labels: i.labels, target: { digest: i.target.digest, mediatype: i.target.mediaType } })),
      );
    },
    create(ns, img) {
      validate(img);
      const t = now();
      const rec: ImageRecord = { name: img.name, labels: img.labels, target: img.target, createdAt: t, updatedAt: t };
      if (!meta.createImage(ns, rec)) throw new TsrunError('AlreadyExists', `image ${JSON.stringify(img.name)}: already exists`);
      events.publish(ns, '/images/create', `${EV}.ImageCreate`, { name: rec.name, labels: rec.labels });
      return rec;
    },
    update(ns, img, paths) {
      if (img.name === '') throw new TsrunError('InvalidArgument', 'image name must not be empty: invalid argument');
      const old = get(ns, img.name);
      let next: ImageRecord = { ...old, updatedAt: now() };
      if (paths.length === 0) {
        next = { ...next, labels: img.labels, target: img.target };
      } else {
        const labelPaths = paths.filter((p) => p === 'labels' || p.startsWith('labels.'));
        if (labelPaths.length > 0) next.labels = updateLabels(old.labels, img.labels, labelPaths, 'image');
        for (const p of paths) {
          if (p === 'labels' || p.startsWith('labels.')) continue;
          if (p === 'target') next.target = img.target;
          else if (p === 'annotations') next.target = { ...next.target, annotations: img.target.annotations };
          else if (p.startsWith('annotations.')) {
            const k = p.slice('annotations.'.length);
            const a = { ...next.target.annotations };
            const v = img.target.annotations[k];
            if (v === undefined || v === '') delete a[k];
            else a[k] = v;
            next.target = { ...next.target, annotations: a };
          } else throw new TsrunError('InvalidArgument', `cannot update ${JSON.stringify(p)} field on image ${JSON.stringify(img.name)}: invalid argument`);
        }
      }
      validate(next);
      meta.updateImage(ns, next);
      events.publish(ns, '/images/update', `${EV}.ImageUpdate`, { name: next.name, labels: next.labels });
      return next;
    },
    async delete(ns, name, sync) {
      if (!meta.deleteImage(ns, name)) throw new TsrunError('NotFound', `image ${JSON.stringify(name)}: not found`);
      events.publish(ns, '/images/delete', `${EV}.ImageDelete`, { name });
      if (sync) await gc.collect();
      else gc.schedule();
    },
  };
}
