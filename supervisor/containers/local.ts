/*
 * Containers: records of (namespace, id) with labels, runtime, and the OCI spec Any stored
 * byte-for-byte. A container outlives its task; delete refuses while a task exists so no shim
 * is orphaned (ctr checks first anyway).
 */
import { TsrunError } from '../../spec/errors';
import { errors, validateIdentifier } from '../errors';
import { emit, type Exchange } from '../events/exchange';
import { objectAdaptor, parseFilters } from '../events/filters';
import { now } from '../proto/index';
import type { WireContainer } from '../proto/messages';
import type { ContainerRecord, Store } from '../store/db';

/** What a client gives to create a container: the wire Container without the times the server sets. */
export type ContainerInput = Omit<WireContainer, 'createdAt' | 'updatedAt'>;

/** The container logic the Containers service adapts. */
export interface Containers {
  get(namespace: string, id: string): ContainerRecord;
  list(namespace: string, filters: readonly string[]): ContainerRecord[];
  create(namespace: string, c: ContainerInput): ContainerRecord;
  update(namespace: string, c: ContainerInput, paths: readonly string[]): Promise<ContainerRecord>;
  delete(namespace: string, id: string): void;
}

/**
 * Called after an update is stored and before it is answered: a client that gets the answer
 * knows whatever the new record set in motion has settled (see `Restarts.quiesce`).
 */
export type AfterUpdate = (namespace: string, next: ContainerRecord) => Promise<void>;

/** Containers over the store; `hasTask` tells whether a task exists for (namespace, id). */
export function createContainers(store: Store, events: Exchange, hasTask: (ns: string, id: string) => boolean, afterUpdate?: AfterUpdate): Containers {
  const get = (namespace: string, id: string): ContainerRecord => {
    const c = store.getContainer(namespace, id);
    if (c === undefined) throw errors.containerMissing(id, namespace);
    return c;
  };
  return {
    get,
    list(namespace, filters) {
      const all = store.listContainers(namespace);
      if (filters.length === 0) return all;
      const f = parseFilters(filters);
      return all.filter((c) =>
        f(
          objectAdaptor({
            id: c.id,
            image: c.image,
            labels: c.labels,
            runtime: { name: c.runtime.name },
            snapshotter: c.snapshotter,
            snapshot_key: c.snapshotKey,
          }),
        ),
      );
    },
    create(namespace, c) {
      validateIdentifier('create container failed validation: container.ID', c.id);
      if (c.runtime === null || c.runtime.name === '') {
        throw errors.invalid('create container failed validation: container.Runtime.Name must be set');
      }
      if (c.spec === null || c.spec.value.length === 0) {
        throw errors.invalid('create container failed validation: container.Spec must be set');
      }
      store.ensureNamespace(namespace);
      const t = now();
      const rec: ContainerRecord = {
        namespace,
        id: c.id,
        labels: c.labels,
        image: c.image,
        runtime: { name: c.runtime.name, options: c.runtime.options },
        spec: c.spec,
        snapshotter: c.snapshotter,
        snapshotKey: c.snapshotKey,
        extensions: c.extensions,
        createdAt: t,
        updatedAt: t,
      };
      if (!store.createContainer(rec)) throw errors.containerExists(c.id);
      emit(events, namespace, 'containerCreate', {
        id: rec.id,
        image: rec.image,
        runtime: rec.runtime.options === null ? { name: rec.runtime.name } : rec.runtime,
      });
      return rec;
    },
    async update(namespace, c, paths) {
      const cur = get(namespace, c.id);
      const next: ContainerRecord = { ...cur, labels: { ...cur.labels }, extensions: { ...cur.extensions } };
      const all = paths.length === 0;
      if (all) {
        next.labels = c.labels;
        next.image = c.image;
        if (c.spec !== null) next.spec = c.spec;
        next.snapshotKey = c.snapshotKey;
        next.extensions = c.extensions;
      }
      for (const p of paths) {
        if (p === 'labels') next.labels = c.labels;
        else if (p.startsWith('labels.')) {
          const key = p.slice('labels.'.length);
          const v = c.labels[key];
          if (v === undefined || v === '') delete next.labels[key];
          else next.labels[key] = v;
        } else if (p === 'image') next.image = c.image;
        else if (p === 'spec') {
          if (c.spec === null) throw errors.invalid('container.Spec must be set');
          next.spec = c.spec;
        } else if (p === 'snapshotkey' || p === 'snapshot_key') next.snapshotKey = c.snapshotKey;
        else if (p === 'extensions') next.extensions = c.extensions;
        else if (p.startsWith('extensions.')) {
          const key = p.slice('extensions.'.length);
          const v = c.extensions[key];
          if (v === undefined) delete next.extensions[key];
          else next.extensions[key] = v;
        } else throw errors.invalid(`cannot update ${JSON.stringify(p)} field on ${JSON.stringify(c.id)}`);
      }
      next.updatedAt = now();
      store.updateContainer(next);
      emit(events, namespace, 'containerUpdate', {
        id: next.id,
        image: next.image,
        labels: next.labels,
        snapshotKey: next.snapshotKey,
      });
      if (afterUpdate !== undefined) await afterUpdate(namespace, next);
      return next;
    },
    delete(namespace, id) {
      get(namespace, id);
      if (hasTask(namespace, id)) {
        throw new TsrunError('FailedPrecondition', `cannot delete container "${id}": it has a task: failed precondition`);
      }
      store.deleteContainer(namespace, id);
      emit(events, namespace, 'containerDelete', { id });
    },
  };
}
