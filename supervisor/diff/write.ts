/*
 * writeDiff: a layer tar (uncompressed, OCI form) of what changed.
 *
 *   overlay  the upper dir of an overlay mount is the change set: every entry in it is written, a
 *            0:0 char device becomes a `.wh.<name>` file (dropped when no lower has the name), and a
 *            directory with trusted.overlay.opaque=y is followed by `.wh..wh..opq`.
 *   tree     two full trees (a copying snapshotter) are walked side by side, as containerd's double
 *            walk does: a name only in lower is a whiteout, only in upper an addition; in both it is
 *            changed when lstat metadata, link target or xattrs differ, or — when sizes and mtimes
 *            agree but the mtime has no sub-second part (a copy that truncated it) — the contents.
 *            Parent directories of a change are written before it even when they did not change.
 *
 * Output is deterministic: names in byte order, depth first, a directory before its contents; a
 * file whose inode was already written becomes a hard link to the first name. The stream is pulled:
 * a file is read only as fast as the consumer (gzip, a socket) takes the tar.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { wrapSystemError } from '../../spec/errors';
import { lgetxattr, llistxattr, splitDev } from './syscalls';
import { encodeHeader, END_OF_ARCHIVE, padding, type EntryType, type TarHeader } from './tar-header';

export type DiffSource = { kind: 'overlay'; upper: string; lowers: string[] } | { kind: 'tree'; lower: string | null; upper: string };

const OPAQUE_XATTR = 'trusted.overlay.opaque';
const READ_CHUNK = 256 * 1024;

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function sortedNames(dir: string): string[] {
  return fs.readdirSync(dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** The tar entry type of a file, or undefined for what layers do not carry (sockets). */
export function entryType(st: fs.Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are not carried in layers (containerd skips them too)
}

function isWhiteoutDevice(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** A file's extended attributes, sorted by name, without overlayfs's own. */
export function xattrsOf(p: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of llistxattr(p).sort()) {
    if (name.startsWith('trusted.overlay.')) continue; // overlay's own bookkeeping, not content
    const v = lgetxattr(p, name);
    if (v !== undefined) out.set(name, v);
  }
  return out;
}

/** The tar header of the file at `abs`, named `name` in the archive, from its lstat. */
export function statHeader(name: string, type: EntryType, st: fs.Stats, abs: string): TarHeader {
  const { major, minor } = splitDev(st.rdev);
  return {
    name: type === 'dir' ? `${name}/` : name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: type === 'file' ? st.size : 0,
    mtime: Math.floor(st.mtimeMs / 1000),
    linkname: type === 'symlink' ? fs.readlinkSync(abs) : '',
    devmajor: type === 'char' || type === 'block' ? major : 0,
    devminor: type === 'char' || type === 'block' ? minor : 0,
    xattrs: xattrsOf(abs),
  };
}

function sameXattrs(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w === undefined || !w.equals(v)) return false;
  }
  return true;
}

function sameContent(a: string, b: string): boolean {
  const fa = fs.openSync(a, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const fb = fs.openSync(b, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const ba = Buffer.alloc(READ_CHUNK);
    const bb = Buffer.alloc(READ_CHUNK);
    for (;;) {
      const na = fs.readSync(fa, ba, 0, READ_CHUNK, null);
      const nb = fs.readSync(fb, bb, 0, READ_CHUNK, null);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

/** Whether an entry present in both trees changed (containerd's sameFile, inverted). */
function changed(lowerPath: string, lst: fs.Stats, upperPath: string, ust: fs.Stats): boolean {
  if (lst.mode !== ust.mode || lst.uid !== ust.uid || lst.gid !== ust.gid || lst.rdev !== ust.rdev) return true;
  if (!lst.isDirectory() && (lst.size !== ust.size || lst.mtimeMs !== ust.mtimeMs)) return true;
  if (lst.isSymbolicLink() && fs.readlinkSync(lowerPath) !== fs.readlinkSync(upperPath)) return true;
  if (lst.isDirectory() && Math.trunc(lst.mtimeMs) !== Math.trunc(ust.mtimeMs)) return true;
  if (!sameXattrs(xattrsOf(lowerPath), xattrsOf(upperPath))) return true;
  const truncated = ust.mtimeMs === Math.trunc(ust.mtimeMs / 1000) * 1000;
  return lst.isFile() && truncated && !sameContent(lowerPath, upperPath);
}

class DiffWriter {
  /** first tar name of each multiply-linked inode written */
  private readonly inodes = new Map<string, string>();
  /** directories whose headers are owed before the next change below them (tree mode) */
  private readonly pendingDirs: Array<{ rel: string; abs: string }> = [];

  /** The header blocks of an entry; returns whether its body follows (a file not already written). */
  *header(rel: string, abs: string, st: fs.Stats): Generator<Buffer, boolean> {
    const type = entryType(st);
    if (type === undefined) return false;
    yield* this.flushParents(rel);
    const h = statHeader(rel, type, st, abs);
    if (type === 'file' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.inodes.get(key);
      if (first !== undefined) {
        yield encodeHeader({ ...h, type: 'hardlink', size: 0, linkname: first });
        return false;
      }
      this.inodes.set(key, rel);
    }
    yield encodeHeader(h);
    return type === 'file';
  }

  async *body(rel: string, abs: string, st: fs.Stats): AsyncGenerator<Buffer> {
    const fh = await fs.promises.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      let left = st.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) throw wrapSystemError(`write diff: read ${rel}`, Object.assign(new Error('file shrank while being read'), { code: 'EIO' }));
        left -= bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
    yield padding(st.size);
  }

  /** A whole entry: header, then the body of a regular file that was not a hard link. */
  async *entry(rel: string, abs: string, st: fs.Stats): AsyncGenerator<Buffer> {
    if (yield* this.header(rel, abs, st)) yield* this.body(rel, abs, st);
  }

  whiteout(rel: string, mtime: number): Buffer[] {
    const out = [...this.flushParents(rel)];
    const dir = path.posix.dirname(rel);
    const name = `${dir === '.' ? '' : `${dir}/`}.wh.${path.posix.basename(rel)}`;
    out.push(encodeHeader({ name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() }));
    return out;
  }

  opaque(rel: string, mtime: number): Buffer {
    return encodeHeader({ name: `${rel}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() });
  }

  deferDir(rel: string, abs: string): void {
    this.pendingDirs.push({ rel, abs });
  }

  /** Leaving a directory: a deferred header nobody needed is dropped. */
  leaveDir(rel: string): void {
    const last = this.pendingDirs[this.pendingDirs.length - 1];
    if (last?.rel === rel) this.pendingDirs.pop();
  }

  private *flushParents(rel: string): Generator<Buffer> {
    if (this.pendingDirs.length === 0) return;
    const owed = this.pendingDirs.filter((d) => rel.startsWith(`${d.rel}/`));
    this.pendingDirs.length = 0;
    for (const d of owed) yield* this.header(d.rel, d.abs, fs.lstatSync(d.abs));
  }

  async *overlay(upper: string, lowers: readonly string[], rel: string): AsyncGenerator<Buffer> {
    for (const name of sortedNames(rel === '' ? upper : path.join(upper, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(upper, r);
      const st = fs.lstatSync(abs);
      if (isWhiteoutDevice(st)) {
        if (lowers.some((l) => lstatOrUndefined(path.join(l, r)) !== undefined)) yield* this.whiteout(r, Math.floor(st.mtimeMs / 1000));
        continue;
      }
      yield* this.entry(r, abs, st);
      if (st.isDirectory()) {
        if (lgetxattr(abs, OPAQUE_XATTR)?.toString() === 'y') yield this.opaque(r, Math.floor(st.mtimeMs / 1000));
        yield* this.overlay(upper, lowers, r);
      }
    }
  }

  async *tree(lower: string | null, upper: string, rel: string): AsyncGenerator<Buffer> {
    const udir = rel === '' ? upper : path.join(upper, rel);
    const ldir = lower === null ? undefined : rel === '' ? lower : path.join(lower, rel);
    const names = new Set(sortedNames(udir));
    if (ldir !== undefined) for (const n of sortedNames(ldir)) names.add(n);
    const dirMtime = Math.floor(fs.lstatSync(udir).mtimeMs / 1000);
    for (const name of [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const uabs = path.join(upper, r);
      const ust = lstatOrUndefined(uabs);
      const labs = ldir === undefined ? undefined : path.join(ldir, name);
      const lst = labs === undefined ? undefined : lstatOrUndefined(labs);
      if (ust === undefined) {
        yield* this.whiteout(r, dirMtime);
        continue;
      }
      if (lst === undefined || labs === undefined || (lst.isDirectory() !== ust.isDirectory())) {
        yield* this.entry(r, uabs, ust);
        if (ust.isDirectory()) yield* this.tree(null, upper, r);
        continue;
      }
      if (ust.isDirectory()) {
        if (changed(labs, lst, uabs, ust)) yield* this.entry(r, uabs, ust);
        else this.deferDir(r, uabs);
        yield* this.tree(lower, upper, r);
        this.leaveDir(r);
        continue;
      }
      if (changed(labs, lst, uabs, ust)) yield* this.entry(r, uabs, ust);
    }
  }
}

/** An uncompressed layer tar of the changes `source` describes. */
export function writeDiff(source: DiffSource): Readable {
  const w = new DiffWriter();
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (source.kind === 'overlay') yield* w.overlay(source.upper, source.lowers, '');
      else yield* w.tree(source.lower, source.upper, '');
    } catch (e) {
      throw wrapSystemError(`write diff of ${source.upper}`, e);
    }
    yield END_OF_ARCHIVE;
  }
  return Readable.from(all(), { objectMode: false });
}
