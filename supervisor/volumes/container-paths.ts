/*
 * A path as the container sees it, mapped to the host: its root plus the mounts of its spec.
 *
 * `tsctl cp` reads and writes the container's files from the host. docker's cp mounts the
 * container's volumes and bind mounts on its root for the copy, so a path inside a volume reaches
 * the volume, not the directory of the image the volume hides. tsctl does the same by walking the
 * path one component at a time as the container would (symlinks followed inside the container,
 * ".." stopping at its root, absolute targets restarting from it) and, at every step, taking the
 * host directory from the deepest mount whose destination holds the path so far: a bind mount's
 * source (named volumes are bind mounts of their data directory), else the root.
 *
 * Mounts that have no host directory (tmpfs, proc, sysfs, devpts, mqueue, cgroup) cannot be
 * reached from here: a path under one is refused with the mount named, instead of silently
 * reading or writing the root's directory underneath it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';

const MAX_LINKS = 40;

/** One mount of the spec, its destination canonical (resolved as the runtime resolved it). */
export interface PathMount {
  /** canonical container path components ([] would be the root itself) */
  readonly dest: readonly string[];
  /** host directory (or file) for a bind mount; undefined for one with no host side (tmpfs, …) */
  readonly source: string | undefined;
  readonly type: string;
  readonly readonly: boolean;
}

/** Where a container path lands. */
export interface Resolved {
  /** the host path */
  readonly host: string;
  /** the mount it is in; undefined for the container's own root */
  readonly mount: PathMount | undefined;
}

interface SpecMount {
  destination?: string;
  type?: string;
  source?: string;
  options?: string[];
}

function isBind(m: SpecMount): boolean {
  return m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
}

/** The deepest mount holding `parts` (a later mount on the same destination wins, as it is on top). */
function mountOf(mounts: readonly PathMount[], parts: readonly string[]): PathMount | undefined {
  let best: PathMount | undefined;
  for (const m of mounts) {
    if (m.dest.length > parts.length || m.dest.some((c, i) => parts[i] !== c)) continue;
    if (best === undefined || m.dest.length >= best.dest.length) best = m;
  }
  return best;
}

/** `asked` is the path the caller gave, for the error. */
function hostOf(root: string, mounts: readonly PathMount[], parts: readonly string[], asked: string): Resolved {
  const m = mountOf(mounts, parts);
  if (m === undefined) return { host: path.join(root, ...parts), mount: undefined };
  if (m.source === undefined) {
    throw new TsrunError('FailedPrecondition', `${asked} is on a ${m.type} mount of the container (/${m.dest.join('/')}), which has no host directory to copy from or to`);
  }
  return { host: path.join(m.source, ...parts.slice(m.dest.length)), mount: m };
}

/** The canonical components of container path `p`, resolving symlinks across `mounts` (see the top). */
function resolveParts(root: string, mounts: readonly PathMount[], p: string): string[] {
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift() as string;
    if (c === '..') {
      done.pop();
      continue;
    }
    const { host } = hostOf(root, mounts, [...done, c], p);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() === true) {
      if (++links > MAX_LINKS) throw new TsrunError('InvalidArgument', `resolve ${p} in the container: too many levels of symbolic links`);
      const target = fs.readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    done.push(c);
  }
  return done;
}

/**
 * The spec's mounts with canonical destinations: each destination is resolved with the mounts
 * before it, as the runtime mounted them in order.
 */
export function pathMounts(root: string, spec: unknown): PathMount[] {
  const list = ((spec as { mounts?: SpecMount[] } | undefined)?.mounts ?? []).filter((m) => typeof m.destination === 'string' && m.destination.startsWith('/'));
  const out: PathMount[] = [];
  for (const m of list) {
    const bind = isBind(m);
    out.push({
      dest: resolveParts(root, out.filter((x) => x.source !== undefined), m.destination as string),
      source: bind && typeof m.source === 'string' && m.source.startsWith('/') ? m.source : undefined,
      type: bind ? 'bind' : (m.type ?? 'unknown'),
      readonly: (m.options ?? []).includes('ro'),
    });
  }
  return out;
}

/**
 * Container path `p` on the host: every component followed (the last one too unless `keepLast`,
 * which resolves the parent and appends the name as it is).
 */
export function resolveInContainer(root: string, mounts: readonly PathMount[], p: string, keepLast = false): Resolved {
  if (!keepLast) return hostOf(root, mounts, resolveParts(root, mounts, p), p);
  const name = path.posix.basename(p);
  const parent = resolveParts(root, mounts, path.posix.dirname(p));
  if (name === '' || name === '/' || name === '.' || name === '..') return hostOf(root, mounts, resolveParts(root, mounts, p), p);
  return hostOf(root, mounts, [...parent, name], p);
}
