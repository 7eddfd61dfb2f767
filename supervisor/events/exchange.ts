/*
 * The event exchange: services publish (namespace, topic, containerd.events.* message); every
 * Events.Subscribe stream whose filters match gets an Envelope {timestamp, namespace, topic,
 * event Any with a bare type URL}. Subscribers see every namespace (docs/containerd-api.md §3.7).
 * With no subscriber a publish costs one array check: nothing is encoded.
 *
 * Start-up backlog: exits that happened while tsrund was down are published while it re-adopts
 * its shims, before any client can subscribe (`holdBacklog`). What is published then and during
 * a window after serving starts (`keepBacklog`) is kept, and a subscriber gets the kept envelopes
 * its filter matches first; so `ctr events` restarted together with tsrund still sees them. An
 * envelope published before serving that no subscriber has had yet outlives the window (until
 * `holdMs`): on a loaded machine the client that waits for the missed exits may subscribe only
 * after the window has closed. What is published while serving is never held past the window.
 */
import { now, packAny, type AnyValue, type Timestamp } from '../proto/index';
import { objectAdaptor, type Filter } from './filters';

/** One published event as subscribers receive it. */
export interface Envelope {
  timestamp: Timestamp;
  namespace: string;
  topic: string;
  event: AnyValue;
}

/** A subscriber's sink and filter. */
export interface Subscription {
  readonly filter: Filter;
  send(e: Envelope): void;
}

/** Where events are published and subscribed to. */
export interface Exchange {
  /** `type` is the message's full name, e.g. "containerd.events.TaskExit"; `event` its plain fields */
  publish(namespace: string, topic: string, type: string, event: Record<string, unknown>): void;
  /** returns the unsubscribe function */
  subscribe(sub: Subscription): () => void;
  subscriberCount(): number;
  /** keep everything published from now on, until keepBacklog (nobody can subscribe yet) */
  holdBacklog(): void;
  /**
   * Keep what is published for `ms` from now and replay it to subscribers arriving meanwhile;
   * what was published since holdBacklog and no subscriber's filter has matched yet is kept
   * until `holdMs` from now.
   */
  keepBacklog(ms: number, holdMs?: number): void;
}

/** A new in-process exchange. */
export function createExchange(): Exchange {
  const subs = new Set<Subscription>();
  interface Kept {
    envelope: Envelope;
    adaptor: (path: readonly string[]) => string | undefined;
    delivered: boolean;
    /** published before serving: kept past the window until a subscriber had it */
    held: boolean;
  }
  let backlog: Kept[] = [];
  let keepUntil = 0;
  let holdUntil = 0;
  let holding = false;
  let timer: NodeJS.Timeout | undefined;
  const prune = (): void => {
    const t = Date.now();
    if (t >= keepUntil && !holding) backlog = t >= holdUntil ? [] : backlog.filter((b) => b.held && !b.delivered);
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (backlog.length === 0 || holding) return;
    const next = t < keepUntil ? keepUntil : holdUntil;
    timer = setTimeout(prune, next - t + 10).unref();
  };
  return {
    holdBacklog() {
      holding = true;
    },
    keepBacklog(ms, holdMs = ms) {
      const t = Date.now();
      holding = false;
      keepUntil = t + ms;
      holdUntil = Math.max(holdUntil, t + Math.max(ms, holdMs), keepUntil);
      prune();
    },
    publish(namespace, topic, type, event) {
      const keep = holding || Date.now() < keepUntil;
      if (subs.size === 0 && !keep) return;
      let envelope: Envelope | undefined;
      const adaptor = (path: readonly string[]): string | undefined => {
        const head = path[0];
        if (path.length === 1 && head === 'topic') return topic;
        if (path.length === 1 && head === 'namespace') return namespace;
        if (head === 'event') return objectAdaptor(event)(path.slice(1));
        return undefined;
      };
      let kept: Kept | undefined;
      if (keep) {
        envelope = { timestamp: now(), namespace, topic, event: packAny(type, event) };
        kept = { envelope, adaptor, delivered: false, held: holding };
        backlog.push(kept);
        if (timer === undefined) prune();
      }
      for (const s of subs) {
        if (!s.filter(adaptor)) continue;
        envelope ??= { timestamp: now(), namespace, topic, event: packAny(type, event) };
        if (kept !== undefined) kept.delivered = true;
        s.send(envelope);
      }
    },
    subscribe(sub) {
      // pruned first: past the window only the held envelopes nobody had are left to replay
      if (backlog.length > 0) prune();
      if (backlog.length > 0) {
        for (const b of backlog) {
          if (!sub.filter(b.adaptor)) continue;
          b.delivered = true;
          sub.send(b.envelope);
        }
        prune();
      }
      subs.add(sub);
      return () => subs.delete(sub);
    },
    subscriberCount: () => subs.size,
  };
}

/** containerd's topics and the message type each carries. */
export const TOPICS = {
  namespaceCreate: ['/namespaces/create', 'containerd.events.NamespaceCreate'],
  namespaceUpdate: ['/namespaces/update', 'containerd.events.NamespaceUpdate'],
  namespaceDelete: ['/namespaces/delete', 'containerd.events.NamespaceDelete'],
  containerCreate: ['/containers/create', 'containerd.events.ContainerCreate'],
  containerUpdate: ['/containers/update', 'containerd.events.ContainerUpdate'],
  containerDelete: ['/containers/delete', 'containerd.events.ContainerDelete'],
  taskCreate: ['/tasks/create', 'containerd.events.TaskCreate'],
  taskStart: ['/tasks/start', 'containerd.events.TaskStart'],
  taskExit: ['/tasks/exit', 'containerd.events.TaskExit'],
  taskDelete: ['/tasks/delete', 'containerd.events.TaskDelete'],
  taskOOM: ['/tasks/oom', 'containerd.events.TaskOOM'],
  taskExecAdded: ['/tasks/exec-added', 'containerd.events.TaskExecAdded'],
  taskExecStarted: ['/tasks/exec-started', 'containerd.events.TaskExecStarted'],
  taskPaused: ['/tasks/paused', 'containerd.events.TaskPaused'],
  taskResumed: ['/tasks/resumed', 'containerd.events.TaskResumed'],
} as const satisfies Record<string, readonly [string, string]>;

/** Publish on one of TOPICS. */
export function emit(ex: Exchange, namespace: string, which: keyof typeof TOPICS, event: Record<string, unknown>): void {
  const [topic, type] = TOPICS[which];
  ex.publish(namespace, topic, type, event);
}
