/*
 * Namespaces: list, get, create, update (labels, with containerd's `labels.<key>` update
 * masks), delete (only when no container is left). Implicit creation happens in the store on the
 * first namespaced write and publishes nothing, as containerd does.
 */
import { errors, validateIdentifier } from '../errors';
import { emit, type Exchange } from '../events/exchange';
import type { NamespaceRecord, Store } from '../store/db';

/** The namespace logic the Namespaces service adapts. */
export interface Namespaces {
  list(): NamespaceRecord[];
  get(name: string): NamespaceRecord;
  /** `caller` is the request's namespace header ("" without one): containerd puts it on the event */
  create(ns: NamespaceRecord, caller: string): NamespaceRecord;
  update(ns: NamespaceRecord, paths: readonly string[], caller: string): NamespaceRecord;
  delete(name: string): void;
}

/** Namespaces over the store, publishing on `events`; `hasTasks` guards delete against live tasks. */
export function createNamespaces(store: Store, events: Exchange, hasTasks: (ns: string) => boolean): Namespaces {
  const get = (name: string): NamespaceRecord => {
    const ns = store.getNamespace(name);
    if (ns === undefined) throw errors.namespaceMissing(name);
    return ns;
  };
  return {
    list: () => store.listNamespaces(),
    get,
    create(ns, caller) {
      validateIdentifier('namespace.Name', ns.name);
      if (!store.createNamespace(ns)) throw errors.namespaceExists(ns.name);
      emit(events, caller, 'namespaceCreate', { name: ns.name, labels: ns.labels });
      return ns;
    },
    update(ns, paths, caller) {
      const cur = get(ns.name);
      let labels: Record<string, string>;
      if (paths.length === 0) {
        labels = { ...ns.labels };
      } else {
        labels = { ...cur.labels };
        for (const p of paths) {
          if (p === 'labels') {
            labels = { ...ns.labels };
          } else if (p.startsWith('labels.')) {
            const key = p.slice('labels.'.length);
            const v = ns.labels[key];
            if (v === undefined || v === '') delete labels[key];
            else labels[key] = v;
          } else {
            throw errors.invalid(`cannot update ${JSON.stringify(p)} field on namespace ${JSON.stringify(ns.name)}`);
          }
        }
      }
      const next = { name: ns.name, labels };
      store.updateNamespace(next);
      emit(events, caller === '' ? ns.name : caller, 'namespaceUpdate', { name: next.name, labels: next.labels });
      return next;
    },
    delete(name) {
      if (store.getNamespace(name) === undefined) throw errors.namespaceMissing(name);
      if (store.countContainers(name) > 0 || hasTasks(name)) throw errors.namespaceNotEmpty(name);
      store.deleteNamespace(name);
      emit(events, name, 'namespaceDelete', { name });
    },
  };
}
