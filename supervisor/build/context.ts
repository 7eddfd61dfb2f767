/*
 * COPY and ADD sources: where they come from, what they hash to, and how they land in a rootfs.
 *
 *   context    the directory given to `tsctl build`, read by tsctl itself (the builder runs in the
 *              client, as ctr's unpacker and `tsctl run IMAGE` do): nothing is sent, and only the
 *              files an instruction names are read. .dockerignore'd paths do not exist for COPY.
 *   symlinks   a source path is resolved component by component with lstat; a symlink on the way
 *              must stay inside the context (a relative target that does not climb out of it).
 *              An absolute target or one climbing out is refused naming the link. Inside a copied
 *              directory symlinks are copied as symlinks, never followed.
 *   stages     COPY --from reads a stage's (or image's) rootfs, symlinks resolved inside that rootfs
 *   hash       sha256 over each file's relative path, type, mode, owner-independent content digest
 *              (or link target): the cache key of the step, mtime excluded as docker's is
 *   landing    into a mounted, private snapshot: the destination resolved inside the rootfs, every
 *              created entry opened without following the last component (O_EXCL|O_NOFOLLOW)
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { resolveInRoot } from '../volumes/copy-up';
import { isIgnored, type IgnoreRules } from './dockerignore';

/** Where sources are read from. */
export interface SourceRoot {
  readonly dir: string;
  /** the build context (strict symlinks, .dockerignore) rather than a stage's rootfs */
  readonly isContext: boolean;
  readonly ignore?: IgnoreRules;
}

/** One source entry to copy. */
export interface SourceEntry {
  /** host path (already resolved) */
  readonly host: string;
  /** the name it has relative to the source's copy root ('' for the root itself) */
  readonly rel: string;
  readonly st: fs.Stats;
}

/** One resolved COPY source: a file, a symlink, or a directory whose contents are copied. */
export interface Source {
  readonly given: string;
  readonly host: string;
  readonly st: fs.Stats;
  /** the path relative to the source root (for .dockerignore) */
  readonly rel: string;
}

const MAX_LINKS = 40;

/** Resolve `p` inside the context: symlinks must stay inside (relative, not climbing out). */
export function resolveInContext(root: string, p: string): { host: string; rel: string } {
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '..') {
      if (done.length === 0) throw new TsrunError('InvalidArgument', `${p}: forbidden path outside the build context`);
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, c);
    const st = fs.lstatSync(host, { throwIfNoEntry: false });
    if (st?.isSymbolicLink() === true) {
      if (++links > MAX_LINKS) throw new TsrunError('InvalidArgument', `${p}: too many levels of symbolic links`);
      const target = fs.readlinkSync(host);
      const rel = path.posix.join(...done, c);
      if (target.startsWith('/')) throw new TsrunError('PermissionDenied', `${p}: the symlink ${rel} -> ${target} leaves the build context`);
      const joined = path.posix.normalize(path.posix.join(...done, target));
      if (joined === '..' || joined.startsWith('../')) throw new TsrunError('PermissionDenied', `${p}: the symlink ${rel} -> ${target} leaves the build context`);
      done.length = 0;
      pending.unshift(...joined.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    done.push(c);
  }
  return { host: path.join(root, ...done), rel: done.join('/') };
}

function globRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) throw new TsrunError('InvalidArgument', `pattern ${JSON.stringify(seg)}: unclosed [`);
      const cls = seg.slice(i + 1, end);
      re += `[${cls.startsWith('!') || cls.startsWith('^') ? `^${cls.slice(1)}` : cls}]`;
      i = end;
    } else if (c === '\\' && i + 1 < seg.length) re += seg[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const hasGlob = (s: string): boolean => /[*?[]/.test(s);

/** The sources a COPY/ADD source argument names (globs expanded, sorted), each resolved. */
export function resolveSources(root: SourceRoot, given: string): Source[] {
  const resolve = (p: string): { host: string; rel: string } => (root.isContext ? resolveInContext(root.dir, p) : { host: resolveInRoot(root.dir, p), rel: p.replace(/^\/+/, '') });
  const notFound = (): TsrunError =>
    new TsrunError('NotFound', root.isContext ? `file not found in build context or excluded by .dockerignore: stat ${given}: file does not exist` : `stat ${given}: file does not exist`);
  const ignored = (rel: string): boolean => root.isContext && root.ignore !== undefined && rel !== '' && isIgnored(root.ignore, rel);
  const one = (p: string): Source | undefined => {
    const r = resolve(p);
    const st = fs.lstatSync(r.host, { throwIfNoEntry: false });
    if (st === undefined || ignored(r.rel)) return undefined;
    return { given: p, host: r.host, st, rel: r.rel };
  };
  if (!hasGlob(given)) {
    const s = one(given);
    if (s === undefined) throw notFound();
    return [s];
  }
  // expand one component at a time; matches are resolved like any other path
  let paths = [''];
  for (const seg of given.split('/').filter((c) => c !== '' && c !== '.')) {
    const next: string[] = [];
    for (const pre of paths) {
      if (!hasGlob(seg)) {
        next.push(path.posix.join(pre, seg));
        continue;
      }
      const dir = resolve(pre === '' ? '.' : pre).host;
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir).sort();
      } catch {
        continue;
      }
      const re = globRegex(seg);
      for (const n of names) if (re.test(n)) next.push(path.posix.join(pre, n));
    }
    paths = next;
  }
  const out = paths.map(one).filter((s): s is Source => s !== undefined);
  if (out.length === 0) throw new TsrunError('NotFound', `no source files were specified: ${given} matches nothing in the build context`);
  return out;
}

/** Every entry of a source in copy order (a directory's contents, depth first, sorted; ignored ones skipped). */
export function walkSource(root: SourceRoot, s: Source): SourceEntry[] {
  if (!s.st.isDirectory()) return [{ host: s.host, rel: '', st: s.st }];
  const out: SourceEntry[] = [];
  const walk = (dir: string, rel: string, relToRoot: string): void => {
    for (const n of fs.readdirSync(dir).sort()) {
      const host = path.join(dir, n);
      const r = rel === '' ? n : `${rel}/${n}`;
      const rr = relToRoot === '' ? n : `${relToRoot}/${n}`;
      const st = fs.lstatSync(host);
      // a directory that is ignored may still hold an exception (!dir/keep): look inside, keep only what is not ignored
      const skip = root.isContext && root.ignore !== undefined && isIgnored(root.ignore, rr);
      if (!skip) out.push({ host, rel: r, st });
      if (st.isDirectory()) walk(host, r, rr);
    }
  };
  walk(s.host, '', s.rel);
  return out;
}

/**
 * One read buffer for hashing and copying (all synchronous, so never shared by two at once): a
 * fresh megabyte per file made the collector, not the disk, the cost of a context of small files.
 */
let ioBuffer: Buffer | undefined;
const readBuffer = (): Buffer => (ioBuffer ??= Buffer.allocUnsafe(1 << 20));

/** Digests of context files already read in this process, by path and the stat that identifies the version read. */
const digests = new Map<string, { stamp: string; digest: string }>();
const stampOf = (st: fs.Stats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

function fileDigest(p: string, st: fs.Stats): string {
  const stamp = stampOf(st);
  const known = digests.get(p);
  if (known?.stamp === stamp) return known.digest;
  const h = createHash('sha256');
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const now = fs.fstatSync(fd);
    const buf = readBuffer();
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    const digest = h.digest('hex');
    // a file changed since the walk's lstat is hashed as it is now, but not remembered under the old stat
    if (stampOf(now) === stamp) digests.set(p, { stamp, digest });
    return digest;
  } finally {
    fs.closeSync(fd);
  }
}

/** The content digest of what a source copies (docker's cache key part for COPY/ADD). */
export function sourceDigest(entries: readonly SourceEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) {
    const kind = e.st.isDirectory() ? 'd' : e.st.isSymbolicLink() ? 'l' : e.st.isFile() ? 'f' : 'o';
    const body = kind === 'f' ? fileDigest(e.host, e.st) : kind === 'l' ? fs.readlinkSync(e.host) : '';
    h.update(`${JSON.stringify(e.rel)} ${kind} ${(e.st.mode & 0o7777).toString(8)} ${body}\n`);
  }
  return h.digest('hex');
}

/** Owner of copied entries. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

function removeExisting(p: string, keepDir: boolean): boolean {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (st === undefined) return false;
  if (keepDir && st.isDirectory()) return true;
  fs.rmSync(p, { recursive: true, force: true });
  return false;
}

/** Make directory `host` (and missing parents under `rootfs`) owned by `owner` when new. */
export function mkdirAllIn(rootfs: string, ctrPath: string, owner: Owner | undefined): string {
  const parts = ctrPath.split('/').filter((c) => c !== '' && c !== '.');
  let cur = '/';
  for (const c of parts) {
    cur = path.posix.join(cur, c);
    const host = resolveInRoot(rootfs, cur);
    const st = fs.lstatSync(host, { throwIfNoEntry: false });
    if (st === undefined) {
      fs.mkdirSync(host, { mode: 0o755 });
      if (owner !== undefined) fs.lchownSync(host, owner.uid, owner.gid);
    } else if (!st.isDirectory()) throw new TsrunError('InvalidArgument', `${cur}: not a directory in the image`);
  }
  return resolveInRoot(rootfs, ctrPath);
}

/** Copy one entry to the host path `to` (its parent exists, inside the private rootfs). */
export function copyEntry(e: SourceEntry, to: string, owner: Owner): void {
  const { st } = e;
  if (st.isDirectory()) {
    if (!removeExisting(to, true)) fs.mkdirSync(to, { mode: st.mode & 0o7777 });
    fs.lchownSync(to, owner.uid, owner.gid);
    fs.chmodSync(to, st.mode & 0o7777);
    fs.utimesSync(to, st.atime, st.mtime);
    return;
  }
  removeExisting(to, false);
  if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(e.host), to);
    fs.lchownSync(to, owner.uid, owner.gid);
    fs.lutimesSync(to, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) throw new TsrunError('InvalidArgument', `copy ${e.host}: only regular files, directories and symlinks can be copied`);
  const src = fs.openSync(e.host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const dst = fs.openSync(to, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    const buf = readBuffer();
    for (;;) {
      const n = fs.readSync(src, buf, 0, buf.length, null);
      if (n === 0) break;
      fs.writeSync(dst, buf, 0, n);
    }
    fs.fchownSync(dst, owner.uid, owner.gid);
    fs.fchmodSync(dst, st.mode & 0o7777);
    fs.futimesSync(dst, st.atime, st.mtime);
  } finally {
    fs.closeSync(src);
    fs.closeSync(dst);
  }
}

/** Directories' times are set after their contents (writing a child changes them). */
export function fixDirTimes(entries: ReadonlyArray<{ e: SourceEntry; to: string }>): void {
  for (const { e, to } of [...entries].reverse()) if (e.st.isDirectory()) fs.utimesSync(to, e.st.atime, e.st.mtime);
}
