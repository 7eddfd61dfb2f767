/*
 * A pull-based tar reader: the caller asks for the next entry and reads its body; nothing is read
 * from the source until asked for, so a slow disk slows the decompressor and the network instead of
 * filling memory (backpressure by construction). At most one source chunk plus one header is held.
 */
import { TsrunError } from '../../spec/errors';
import { BLOCK, decodeBlock, decodePax, isZeroBlock, typeFromFlag, type TarHeader } from './tar-header';

/** One entry: its header and a body that must be read (or left, and then skipped) before the next. */
export interface TarEntry {
  header: TarHeader;
  body: AsyncIterable<Buffer>;
}

/** Buffered access to an async source of byte chunks. */
class ByteSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done === true) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the source. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n) if (!(await this.pull())) break;
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const take = Math.min(n, all.length);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** Up to n bytes as they arrive (no concatenation); an empty buffer means the source ended. */
  async some(n: number): Promise<Buffer> {
    if (this.buffered === 0 && !(await this.pull())) return Buffer.alloc(0);
    if (this.buffered === 0) return this.some(n);
    const first = this.chunks[0] as Buffer;
    if (first.length <= n) {
      this.chunks.shift();
      this.buffered -= first.length;
      return first;
    }
    this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return first.subarray(0, n);
  }

  /** Read and drop everything left (the digest of a layer covers its trailing bytes too). */
  async drain(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (await this.pull()) {
      this.chunks = [];
      this.buffered = 0;
    }
  }
}

function truncated(what: string): TsrunError {
  return new TsrunError('InvalidArgument', `read tar: unexpected end of stream in ${what}`);
}

/**
 * The entries of a tar stream. Each entry's body must be consumed or abandoned before asking for the
 * next one; an abandoned body is skipped. After the last entry the rest of the source is drained.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(source[Symbol.asyncIterator]());
  let pending = 0; // body + padding bytes of the previous entry not yet read
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;

  const skip = async (n: number): Promise<void> => {
    while (n > 0) {
      const b = await src.some(n);
      if (b.length === 0) throw truncated('entry body');
      n -= b.length;
    }
  };
  const readData = async (size: number, what: string): Promise<Buffer> => {
    const data = await src.read(size);
    if (data.length < size) throw truncated(what);
    await skip((BLOCK - (size % BLOCK)) % BLOCK);
    return data;
  };

  for (;;) {
    await skip(pending);
    pending = 0;
    const block = await src.read(BLOCK);
    if (block.length === 0) break; // the end without a marker, accepted as Go's archive/tar does
    if (block.length < BLOCK) throw truncated('header');
    if (isZeroBlock(block)) break;
    const raw = decodeBlock(block);
    const label = longName ?? (pax?.get('path')?.toString('utf8') || raw.name);
    switch (raw.typeflag) {
      case 'x':
        pax = decodePax(await readData(raw.size, `PAX header of ${label}`));
        continue;
      case 'g': // global PAX headers carry nothing a layer uses (containerd ignores them too)
        await readData(raw.size, 'global PAX header');
        continue;
      case 'L':
        longName = (await readData(raw.size, 'GNU long name')).toString('utf8').replace(/\0+$/, '');
        continue;
      case 'K':
        longLink = (await readData(raw.size, 'GNU long link')).toString('utf8').replace(/\0+$/, '');
        continue;
      default:
        break;
    }
    const type = typeFromFlag(raw.typeflag);
    if (type === undefined) {
      throw new TsrunError('InvalidArgument', `read tar entry "${label}": unsupported entry type "${raw.typeflag}"`);
    }
    const header: TarHeader = {
      name: label,
      type,
      mode: raw.mode,
      uid: raw.uid,
      gid: raw.gid,
      size: type === 'file' ? raw.size : 0,
      mtime: raw.mtime,
      linkname: longLink ?? raw.linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs: new Map(),
    };
    let bodySize = raw.size;
    if (pax !== undefined) {
      for (const [key, value] of pax) {
        const text = value.toString('utf8');
        if (key === 'linkpath') header.linkname = text;
        else if (key === 'uid') header.uid = Number(text);
        else if (key === 'gid') header.gid = Number(text);
        else if (key === 'mtime') header.mtime = Number(text);
        else if (key === 'size') bodySize = Number(text);
        else if (key.startsWith('SCHILY.xattr.')) header.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
        else if (key.startsWith('GNU.sparse.')) {
          throw new TsrunError('InvalidArgument', `read tar entry "${label}": sparse files are not supported`);
        }
      }
      for (const n of [header.uid, header.gid, header.mtime, bodySize]) {
        if (!Number.isFinite(n)) throw new TsrunError('InvalidArgument', `read tar entry "${label}": bad PAX number`);
      }
      if (type === 'file') header.size = bodySize;
    }
    // Only regular files have a body, whatever size another type's header claims (as Go reads it).
    if (type !== 'file') bodySize = 0;
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    let left = bodySize;
    pending = bodySize + ((BLOCK - (bodySize % BLOCK)) % BLOCK);
    const body = async function* (): AsyncGenerator<Buffer> {
      while (left > 0) {
        const b = await src.some(left);
        if (b.length === 0) throw truncated(`body of ${label}`);
        left -= b.length;
        pending -= b.length;
        yield b;
      }
    };
    yield { header, body: body() };
  }
  await src.drain();
}
