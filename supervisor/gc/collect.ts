/*
 * Garbage collection as containerd does it: mark from the roots, sweep the rest.
 *
 * Roots, per namespace: every image (its target, and any containerd.io/gc.ref.content* label on
 * the image); every lease that has not expired (containerd.io/gc.expire) and the resources it
 * holds; every container's snapshot (snapshotter + snapshot key) and its gc.ref labels; content and
 * snapshots labelled containerd.io/gc.root.
 * References, followed transitively: `containerd.io/gc.ref.content[.<anything>]` = a digest and
 * `containerd.io/gc.ref.snapshot.<snapshotter>[/<anything>]` = a key, on content, snapshots and
 * images; a snapshot's parent.
 * Sweep: unmarked content rows and snapshots (children before parents); expired leases; then the
 * files no row names any more (blobs, snapshot directories left by a crash); and ingests no live
 * lease holds and no writer has open (an import that failed half-way leaves nothing).
 *
 * One collection at a time; `schedule` coalesces requests made while one is pending.
 */
import type { ContentStore } from '../content/store';
import type { Logger } from '../log';
import { parseRfc3339 } from '../proto/index';
import type { Snapshots } from '../snapshots/local';
import type { Store } from '../store/db';
import type { ImageMeta } from '../store/images';

/**
 * How long a scheduled collection waits, coalescing a burst of deletes. Not much longer: what a
 * failed import left behind (blobs no lease holds any more) is expected gone by the next command.
 */
const SCHEDULE_DELAY_MS = 100;

/** What one collection removed. */
export interface GcResult {
  content: number;
  snapshots: number;
  leases: number;
  blobs: number;
  dirs: number;
  ingests: number;
}

/** The collector. */
export interface Gc {
  /** collect now (waits for one under way, then runs) */
  collect(): Promise<GcResult>;
  /** collect soon, coalescing bursts of deletes */
  schedule(): void;
  /** also collect every `ms` */
  start(ms: number): void;
  stop(): void;
}

const CONTENT_REF = 'containerd.io/gc.ref.content';
const SNAPSHOT_REF = 'containerd.io/gc.ref.snapshot.';
const ROOT = 'containerd.io/gc.root';
const EXPIRE = 'containerd.io/gc.expire';

/** The references in a label set: content digests and [snapshotter, key] pairs. */
export function labelRefs(labels: Readonly<Record<string, string>>): { content: string[]; snapshots: Array<[string, string]> } {
  const content: string[] = [];
  const snapshots: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(labels)) {
    if (k === CONTENT_REF || k.startsWith(`${CONTENT_REF}.`)) content.push(v);
    else if (k.startsWith(SNAPSHOT_REF)) {
      const rest = k.slice(SNAPSHOT_REF.length);
      const sn = rest.split('/')[0] ?? '';
      if (sn !== '') snapshots.push([sn, v]);
    }
  }
  return { content, snapshots };
}

/** Whether a lease's gc.expire label lies in the past. */
export function leaseExpired(labels: Readonly<Record<string, string>>, nowMs = Date.now()): boolean {
  const e = labels[EXPIRE];
  if (e === undefined || e === '') return false;
  const t = parseRfc3339(e);
  return t.seconds * 1000 + t.nanos / 1e6 < nowMs;
}

/** One mark-and-sweep pass (synchronous: it never yields between mark and sweep). */
export function collectOnce(store: Store, meta: ImageMeta, cs: ContentStore, snaps: Snapshots, nowMs = Date.now()): GcResult {
  const res: GcResult = { content: 0, snapshots: 0, leases: 0, blobs: 0, dirs: 0, ingests: 0 };
  const ck = (ns: string, d: string): string => `${ns}\u0000${d}`;
  const sk = (ns: string, sn: string, key: string): string => `${ns}\u0000${sn}\u0000${key}`;
  const markedContent = new Set<string>();
  const markedSnaps = new Set<string>();
  const contentQ: Array<[string, string]> = [];
  const snapQ: Array<[string, string, string]> = [];
  const markC = (ns: string, d: string): void => {
    if (markedContent.has(ck(ns, d))) return;
    markedContent.add(ck(ns, d));
    contentQ.push([ns, d]);
  };
  const markS = (ns: string, sn: string, key: string): void => {
    if (key === '' || markedSnaps.has(sk(ns, sn, key))) return;
    markedSnaps.add(sk(ns, sn, key));
    snapQ.push([ns, sn, key]);
  };
  const markLabels = (ns: string, labels: Record<string, string>): void => {
    const r = labelRefs(labels);
    for (const d of r.content) markC(ns, d);
    for (const [sn, key] of r.snapshots) markS(ns, sn, key);
  };

  // Roots.
  for (const i of meta.allImages()) {
    markC(i.namespace, i.target.digest);
    markLabels(i.namespace, i.labels);
  }
  const expired: Array<[string, string]> = [];
  const leaseNs = new Set<string>(store.listNamespaces().map((n) => n.name));
  for (const r of meta.allLeaseResources()) leaseNs.add(r.namespace);
  const live = new Set<string>();
  for (const ns of leaseNs) {
    for (const l of store.listLeases(ns)) {
      if (leaseExpired(l.labels, nowMs)) expired.push([ns, l.id]);
      else live.add(`${ns}\u0000${l.id}`);
    }
  }
  const heldIngests = new Set<string>();
  for (const r of meta.allLeaseResources()) {
    if (!live.has(`${r.namespace}\u0000${r.lease}`)) continue;
    if (r.type === 'ingests') heldIngests.add(ck(r.namespace, r.id));
    else if (r.type === 'content') markC(r.namespace, r.id);
    else if (r.type.startsWith('snapshots/')) markS(r.namespace, r.type.slice('snapshots/'.length), r.id);
  }
  for (const c of store.allContainers()) {
    if (c.snapshotKey !== '') markS(c.namespace, c.snapshotter === '' ? 'overlayfs' : c.snapshotter, c.snapshotKey);
    markLabels(c.namespace, c.labels);
  }
  const allContent = meta.allContent();
  for (const c of allContent) if (c.labels[ROOT] !== undefined) markC(c.namespace, c.digest);
  const allSnaps = meta.allSnapshots();
  for (const s of allSnaps) if (s.labels[ROOT] !== undefined) markS(s.namespace, s.snapshotter, s.key);

  // Propagation.
  const contentLabels = new Map(allContent.map((c) => [ck(c.namespace, c.digest), c.labels]));
  const snapByKey = new Map(allSnaps.map((s) => [sk(s.namespace, s.snapshotter, s.key), s]));
  while (contentQ.length > 0 || snapQ.length > 0) {
    const c = contentQ.pop();
    if (c !== undefined) {
      const labels = contentLabels.get(ck(c[0], c[1]));
      if (labels !== undefined) markLabels(c[0], labels);
      continue;
    }
    const [ns, sn, key] = snapQ.pop()!;
    const s = snapByKey.get(sk(ns, sn, key));
    if (s === undefined) continue;
    if (s.parent !== '') markS(ns, sn, s.parent);
    markLabels(ns, s.labels);
  }

  // Sweep: rows, then files.
  for (const [ns, id] of expired) {
    store.deleteLease(ns, id);
    meta.dropLeaseResources(ns, id);
    res.leases++;
  }
  for (const c of allContent) {
    if (markedContent.has(ck(c.namespace, c.digest))) continue;
    meta.deleteContent(c.namespace, c.digest);
    res.content++;
  }
  // Children before parents: repeat over what is left until nothing more can go.
  let doomed = allSnaps.filter((s) => !markedSnaps.has(sk(s.namespace, s.snapshotter, s.key)));
  for (let round = 0; doomed.length > 0 && round < 1000; round++) {
    const parents = new Set(doomed.map((s) => sk(s.namespace, s.snapshotter, s.parent)));
    const leaves = doomed.filter((s) => !parents.has(sk(s.namespace, s.snapshotter, s.key)));
    if (leaves.length === 0) break;
    for (const s of leaves) {
      meta.deleteSnapshot(s.snapshotter, s.namespace, s.key);
      snaps.driver(s.snapshotter).remove(s.id);
      res.snapshots++;
    }
    const gone = new Set(leaves);
    doomed = doomed.filter((s) => !gone.has(s));
  }
  const kept = new Set(meta.allContent().map((c) => c.digest));
  for (const d of cs.blobDigests()) {
    if (kept.has(d)) continue;
    cs.removeBlob(d);
    res.blobs++;
  }
  for (const sn of snaps.names) res.dirs += snaps.cleanup(sn);
  // Ingests live as long as a lease holds them or a writer has them open.
  for (const i of cs.ingests()) {
    if (i.locked || heldIngests.has(ck(i.namespace, i.ref))) continue;
    cs.abort(i.namespace, i.ref);
    res.ingests++;
  }
  return res;
}

/** A collector that runs `collectOnce` on request, coalesced, and on a timer. */
export function createGc(store: Store, meta: ImageMeta, cs: ContentStore, snaps: Snapshots, log: Logger): Gc {
  let running: Promise<GcResult> | undefined;
  let pending: ReturnType<typeof setTimeout> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const run = async (): Promise<GcResult> => {
    while (running !== undefined) await running.catch(() => undefined);
    running = (async () => {
      // this collection covers whatever asked for one before it starts: a scheduled one still
      // waiting would only run again later, in the middle of whatever comes next
      if (pending !== undefined) {
        clearTimeout(pending);
        pending = undefined;
      }
      const t0 = Date.now();
      const r = collectOnce(store, meta, cs, snaps);
      const n = r.content + r.snapshots + r.leases + r.blobs + r.dirs + r.ingests;
      if (n > 0) log.info('garbage collected', { ...r, ms: Date.now() - t0 });
      return r;
    })();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  };
  const background = (): void => {
    run().catch((e: unknown) => log.warn('garbage collection failed', { error: e instanceof Error ? e.message : String(e) }));
  };
  return {
    collect: run,
    schedule() {
      if (pending !== undefined) return;
      pending = setTimeout(() => {
        pending = undefined;
        background();
      }, SCHEDULE_DELAY_MS);
      pending.unref();
    },
    start(ms) {
      timer = setInterval(background, ms);
      timer.unref();
    },
    stop() {
      if (pending !== undefined) clearTimeout(pending);
      if (timer !== undefined) clearInterval(timer);
      pending = undefined;
      timer = undefined;
    },
  };
}
