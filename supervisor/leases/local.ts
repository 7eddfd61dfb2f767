/*
 * Leases: with --rootfs containers there is nothing for a lease to protect, but ctr wraps every
 * container create in Leases.Create/Delete and fails without them (docs/containerd-api.md §3.4), so
 * they are stored (for List). They publish no events. For images they hold content, ingests and
 * snapshots (resources, garbage collection: images/wire.ts and docs/images.md).
 */
import { randomBytes } from 'node:crypto';
import { errors } from '../errors';
import { objectAdaptor, parseFilters } from '../events/filters';
import { now } from '../proto/index';
import type { LeaseRecord, Store } from '../store/db';

/** The lease logic the Leases service adapts. */
export interface Leases {
  create(namespace: string, id: string, labels: Record<string, string>): LeaseRecord;
  delete(namespace: string, id: string): void;
  list(namespace: string, filters: readonly string[]): LeaseRecord[];
}

/** Leases over the store. */
export function createLeases(store: Store): Leases {
  return {
    create(namespace, id, labels) {
      const leaseId = id !== '' ? id : `${process.hrtime.bigint() % 1_000_000_000n}-${randomBytes(3).toString('base64url')}`;
      store.ensureNamespace(namespace);
      const lease: LeaseRecord = { namespace, id: leaseId, labels, createdAt: now() };
      if (!store.createLease(lease)) throw errors.leaseExists(leaseId);
      return lease;
    },
    delete(namespace, id) {
      if (!store.deleteLease(namespace, id)) throw errors.leaseMissing(id);
    },
    list(namespace, filters) {
      const f = parseFilters(filters);
      return store.listLeases(namespace).filter((l) => f(objectAdaptor({ id: l.id, labels: l.labels })));
    },
  };
}
