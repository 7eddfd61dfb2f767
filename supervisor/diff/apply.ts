/*
 * applyLayer: stream a layer (tar, tar+gzip) into a directory, computing its diffID on the way.
 *
 * Memory stays flat: readTar pulls from the decompressor only as fast as files are written, and
 * nothing larger than one chunk is buffered. Per entry only the name is remembered where needed
 * (directories, to fix their modes and mtimes at the end; in 'apply' mode the paths this layer
 * wrote, because an opaque marker must keep them — containerd keeps the same map).
 *
 * Path safety. Node has no openat2(RESOLVE_BENEATH), so every parent component of an entry is
 * walked with lstat from the root and a symlink or non-directory there is refused; the final
 * component is never followed (removed and re-created, files opened O_EXCL|O_NOFOLLOW, metadata set
 * with l* calls or on the open fd). This is race-free only because the root is private to tsrund
 * while it is being extracted (a fresh snapshot directory that no container has mounted), so no
 * other process can swap a directory for a symlink between the check and the write. Refusing
 * symlinked parents is stricter than containerd (which follows them, scoped to the root): layers made
 * by walking a file system never write through a symlink, so only crafted layers are refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { decompressor, digestStream } from './compression';
import { entryComponents, refused } from './paths';
import { lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from './syscalls';
import type { TarHeader } from './tar-header';
import { readTar, type TarEntry } from './tar-reader';

export interface ApplyOptions {
  mediaType: string;
  /** 'overlay': root is an overlay layer dir (whiteouts become 0:0 char devices, opaque dirs an
   *  xattr); 'apply': root is a full copy of the parent (whiteouts delete) */
  whiteouts: 'overlay' | 'apply';
  /** told about xattrs the file system refused (as containerd, these do not fail the unpack) */
  warn?: (message: string) => void;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar */
  diffId: string;
  /** bytes of the uncompressed tar */
  size: number;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const META_PREFIX = '.wh..wh.';

interface DirFix {
  path: string;
  mode: number;
  mtime: number;
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** EEXIST from node's fs or from a libc call (mknod). */
function isExists(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'EEXIST' || (e instanceof TsrunError && e.errno === 'EEXIST');
}

class Extractor {
  private readonly isRoot = process.getuid?.() === 0;
  private readonly dirs: DirFix[] = [];
  /** relative paths written by this layer ('apply' mode only) */
  private readonly written = new Set<string>();
  /** the deepest parent directory known to be a real directory (entries come sorted, so this hits) */
  private checkedParent: string | undefined;

  constructor(
    private readonly root: string,
    private readonly opts: ApplyOptions,
  ) {}

  /** The absolute path of the directory holding `parts`' last component, checked or created. */
  private parentDir(entry: string, parts: readonly string[]): string {
    const rel = parts.slice(0, -1).join('/');
    const cached = this.checkedParent;
    if (cached !== undefined && (cached === rel || cached.startsWith(`${rel}/`) || rel === '')) {
      return path.join(this.root, rel);
    }
    let cur = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = path.join(cur, parts[i] as string);
      const st = lstatOrUndefined(next);
      if (st === undefined) {
        // containerd creates missing parents too, 0755 and owned by root
        fs.mkdirSync(next, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw refused(entry, `parent "${parts.slice(0, i + 1).join('/')}" is a symlink; nothing is written through one`);
      } else if (!st.isDirectory()) {
        throw refused(entry, `parent "${parts.slice(0, i + 1).join('/')}" is not a directory`);
      }
      cur = next;
    }
    this.checkedParent = rel;
    return cur;
  }

  /**
   * Run `make`, which creates `target`. Most names are new (an overlay layer starts empty), so the
   * create is tried first and only when the name is taken (EEXIST: an earlier entry of this layer,
   * or the parent's copy in 'apply' mode) is what is there looked at: a directory stays for a
   * directory entry, anything else is removed (never followed) and `make` runs again.
   */
  private create(target: string, isDir: boolean, make: () => void): void {
    try {
      make();
      return;
    } catch (e) {
      if (!isExists(e)) throw e;
    }
    const existing = lstatOrUndefined(target);
    if (isDir && existing?.isDirectory() === true) return;
    if (existing !== undefined) this.remove(target);
    make();
  }

  private remove(p: string): void {
    fs.rmSync(p, { recursive: true, force: true });
    this.checkedParent = undefined;
  }

  async apply(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const parts = entryComponents(h.name, h.name, 'name');
    if (parts.length === 0) {
      if (h.type !== 'dir') throw refused(h.name, 'the layer root can only be a directory');
      this.meta(h, this.root);
      return;
    }
    const base = parts[parts.length - 1] as string;
    const dir = this.parentDir(h.name, parts);
    const rel = parts.join('/');
    if (base.startsWith(WHITEOUT)) {
      this.whiteout(h, parts, dir, base);
      return;
    }
    const target = path.join(dir, base);
    if (this.opts.whiteouts === 'apply') this.written.add(rel);
    switch (h.type) {
      case 'dir':
        this.create(target, true, () => fs.mkdirSync(target, { mode: 0o700 }));
        this.meta(h, target);
        return;
      case 'file':
        await this.file(h, target, entry.body);
        return;
      case 'hardlink':
        this.hardlink(h, target);
        return;
      case 'symlink':
        this.create(target, false, () => fs.symlinkSync(h.linkname, target));
        this.meta(h, target);
        return;
      case 'char':
      case 'block':
      case 'fifo': {
        const type = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        this.create(target, false, () => mknod(target, type, 0o600, h.devmajor, h.devminor));
        this.meta(h, target);
        return;
      }
      default: {
        const unknown: never = h.type;
        throw new TsrunError('Internal', `apply layer entry "${h.name}": type ${String(unknown)} not handled`);
      }
    }
  }

  private whiteout(h: TarHeader, parts: readonly string[], dir: string, base: string): void {
    const parentRel = parts.slice(0, -1).join('/');
    if (base === OPAQUE) {
      if (this.opts.whiteouts === 'overlay') {
        lsetxattr(dir, 'trusted.overlay.opaque', Buffer.from('y'));
        return;
      }
      // Opaque: everything the parent had before this layer goes; what this layer wrote stays.
      for (const name of fs.readdirSync(dir)) {
        const childRel = parentRel === '' ? name : `${parentRel}/${name}`;
        if (!this.written.has(childRel)) this.remove(path.join(dir, name));
      }
      return;
    }
    if (base.startsWith(META_PREFIX)) return; // aufs metadata (.wh..wh.plnk, …): nothing to apply
    const name = base.slice(WHITEOUT.length);
    if (name === '' || name === '.' || name === '..') throw refused(h.name, 'whiteout names no file');
    const rel = parentRel === '' ? name : `${parentRel}/${name}`;
    const target = path.join(dir, name);
    // OCI: a whiteout hides only what lower layers had, never an entry of its own layer.
    if (this.written.has(rel)) return;
    if (this.opts.whiteouts === 'apply') {
      this.remove(target);
      return;
    }
    if (lstatOrUndefined(target) !== undefined) return; // this layer wrote it (overlay root starts empty)
    mknod(target, S_IFCHR, 0, 0, 0);
    if (this.isRoot) fs.lchownSync(target, h.uid, h.gid);
  }

  private hardlink(h: TarHeader, target: string): void {
    const linkParts = entryComponents(h.name, h.linkname, 'link target');
    if (linkParts.length === 0) throw refused(h.name, 'hard link to the layer root');
    const from = path.join(this.parentDir(h.name, linkParts), linkParts[linkParts.length - 1] as string);
    const st = lstatOrUndefined(from);
    if (st === undefined) throw refused(h.name, `hard link target "${h.linkname}" does not exist in the layer root`);
    if (st.isDirectory()) throw refused(h.name, `hard link target "${h.linkname}" is a directory`);
    // link(2) does not follow a symlink at the target: linking to a symlink links the symlink itself.
    this.create(target, false, () => fs.linkSync(from, target));
    this.checkedParent = undefined;
  }

  private async file(h: TarHeader, target: string, body: AsyncIterable<Buffer>): Promise<void> {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const open = (): Promise<fs.promises.FileHandle> => fs.promises.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    let fh: fs.promises.FileHandle;
    try {
      fh = await open();
    } catch (e) {
      // the name is taken (see create): O_EXCL never opens what is there, a symlink included
      if (!isExists(e)) throw e;
      if (lstatOrUndefined(target) !== undefined) this.remove(target);
      fh = await open();
    }
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      // On the fd: nothing between the write and here can redirect these to another file.
      if (this.isRoot) await fh.chown(h.uid, h.gid);
      this.xattrs(h, target);
      await fh.chmod(h.mode & 0o7777);
      await fh.utimes(h.mtime, h.mtime);
    } finally {
      await fh.close();
    }
  }

  /** owner, xattrs, mode and mtime; chown first because it clears setuid/setgid and capabilities */
  private meta(h: TarHeader, target: string): void {
    if (this.isRoot) fs.lchownSync(target, h.uid, h.gid);
    this.xattrs(h, target);
    if (h.type === 'dir') {
      this.dirs.push({ path: target, mode: h.mode & 0o7777, mtime: h.mtime });
      return;
    }
    if (h.type !== 'symlink') fs.chmodSync(target, h.mode & 0o7777);
    fs.lutimesSync(target, h.mtime, h.mtime);
  }

  private xattrs(h: TarHeader, target: string): void {
    for (const [name, value] of h.xattrs) {
      try {
        lsetxattr(target, name, value);
      } catch (e) {
        const errno = e instanceof TsrunError ? e.errno : undefined;
        if (errno !== 'ENOTSUP' && errno !== 'EPERM') throw e;
        this.opts.warn?.(`apply layer entry "${h.name}": xattr ${name} not kept: ${(e as Error).message}`);
      }
    }
  }

  /** Directory modes and mtimes last: creating their children changed the mtimes. */
  finish(): void {
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const d = this.dirs[i] as DirFix;
      fs.chmodSync(d.path, d.mode);
      fs.lutimesSync(d.path, d.mtime, d.mtime);
    }
  }
}

/**
 * Extract a layer into `root` (an existing directory), returning its diffID and uncompressed size.
 * On failure the root holds a partial layer: the caller discards the whole directory (a snapshot
 * being prepared), as containerd does.
 */
export async function applyLayer(input: Readable, root: string, opts: ApplyOptions): Promise<ApplyResult> {
  let dec;
  try {
    dec = decompressor(opts.mediaType);
  } catch (e) {
    input.destroy(); // the caller's stream is ours to close once handed over
    throw e;
  }
  const digest = digestStream();
  let rootReal: string;
  try {
    rootReal = fs.realpathSync(root);
    if (!fs.statSync(rootReal).isDirectory()) throw new TsrunError('InvalidArgument', `apply layer: ${root} is not a directory`);
  } catch (e) {
    input.destroy();
    throw wrapSystemError(`apply layer: root ${root}`, e);
  }
  const tar = pipeline(input, dec, digest, () => {});
  const ex = new Extractor(rootReal, opts);
  let current = '';
  try {
    for await (const entry of readTar(tar)) {
      current = entry.header.name;
      await ex.apply(entry);
    }
    ex.finish();
  } catch (e) {
    tar.destroy();
    input.destroy();
    if (e instanceof TsrunError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E')) throw wrapSystemError(`apply layer entry "${current}"`, e);
    throw new TsrunError('InvalidArgument', `apply layer (${opts.mediaType}): ${(e as Error).message}`, { cause: e });
  }
  return { diffId: digest.digest(), size: digest.size() };
}
