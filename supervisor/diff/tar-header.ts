/*
 * tar headers, decoded and encoded by hand (POSIX ustar + PAX, reading GNU long names too).
 *
 * Why not tar-stream for this: it decodes PAX records as UTF-8 strings and encodes them the same way,
 * so a binary xattr value (security.capability is a 20-byte struct) cannot survive a round trip, and
 * layers made by docker and containerd (Go's archive/tar) carry those values as raw bytes. The format
 * is small; tar-stream is still what the tests use to build layers, as an independent encoder.
 */
import { TsrunError } from '../../spec/errors';

export const BLOCK = 512;

/** Entry kinds a layer may hold. */
export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One decoded entry header, with PAX and GNU long-name records already applied. */
export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch, fractional when a PAX record gave nanoseconds */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.* records, value bytes as written */
  xattrs: Map<string, Buffer>;
}

/** What the reader makes of a 512-byte header block before PAX/GNU records are folded in. */
export interface RawHeader {
  typeflag: string;
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

function cString(block: Buffer, off: number, len: number): string {
  const field = block.subarray(off, off + len);
  const nul = field.indexOf(0);
  return (nul === -1 ? field : field.subarray(0, nul)).toString('utf8');
}

/** An octal or base-256 (GNU, first byte 0x80) number field. */
function numberField(block: Buffer, off: number, len: number, what: string): number {
  const field = block.subarray(off, off + len);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let v = BigInt((field[0] ?? 0) & 0x7f);
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i] ?? 0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw badHeader(`${what} field too large`);
    return Number(v);
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw badHeader(`${what} field is not octal ("${text}")`);
  return parseInt(text, 8);
}

function badHeader(why: string): TsrunError {
  return new TsrunError('InvalidArgument', `read tar header: ${why}`);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decode one header block; the checksum is checked (unsigned, or signed as some old tars wrote it). */
export function decodeBlock(block: Buffer): RawHeader {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const sum = numberField(block, 148, 8, 'checksum');
  if (sum !== unsigned && sum !== signed) throw badHeader('checksum mismatch (corrupt, or not a tar stream)');
  const magic = block.subarray(257, 263).toString('latin1');
  let name = cString(block, 0, 100);
  // The prefix field is POSIX ustar only; GNU tar keeps access/change times there.
  if (magic === 'ustar\0') {
    const prefix = cString(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    typeflag: String.fromCharCode(block[156] ?? 0),
    name,
    linkname: cString(block, 157, 100),
    mode: numberField(block, 100, 8, 'mode'),
    uid: numberField(block, 108, 8, 'uid'),
    gid: numberField(block, 116, 8, 'gid'),
    size: numberField(block, 124, 12, 'size'),
    mtime: numberField(block, 136, 12, 'mtime'),
    devmajor: numberField(block, 329, 8, 'devmajor'),
    devminor: numberField(block, 337, 8, 'devminor'),
  };
}

/** PAX records "<len> <key>=<value>\n"; values stay bytes (xattrs may be binary). */
export function decodePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space === -1) break;
    const len = parseInt(data.subarray(off, space).toString('latin1'), 10);
    if (!Number.isSafeInteger(len) || len <= space - off || off + len > data.length) {
      throw badHeader('malformed PAX record');
    }
    const record = data.subarray(space + 1, off + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw badHeader('PAX record without "="');
    out.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    off += len;
  }
  return out;
}

const ENCODE_TYPE: Record<EntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

export function typeFromFlag(flag: string): EntryType | undefined {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      return undefined;
  }
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  // The length prefix counts its own digits.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

function writeOctal(block: Buffer, off: number, len: number, value: number): boolean {
  const text = Math.floor(value).toString(8);
  if (text.length > len - 1) return false;
  block.write(text.padStart(len - 1, '0'), off, 'latin1');
  return true;
}

function encodeBlock(h: RawHeader, name: string, prefix: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 100, 8, h.mode & 0o7777);
  writeOctal(block, 108, 8, h.uid);
  writeOctal(block, 116, 8, h.gid);
  writeOctal(block, 124, 12, h.size);
  writeOctal(block, 136, 12, h.mtime);
  block.write(h.typeflag, 156, 1, 'latin1');
  block.write(h.linkname, 157, 100, 'utf8');
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(block, 329, 8, h.devmajor);
  writeOctal(block, 337, 8, h.devminor);
  block.write(prefix, 345, 155, 'utf8');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i] ?? 0;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** Split a name into ustar's prefix/name fields, or undefined when it needs a PAX path record. */
function splitUstar(name: string): [string, string] | undefined {
  if (Buffer.byteLength(name) <= 100) return ['', name];
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return [prefix, rest];
  }
  return undefined;
}

const OCTAL_7 = 0o7777777;
const OCTAL_11 = 0o77777777777;

function fill(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** The header blocks for one entry: ustar where everything fits, PAX records for what does not. */
export function encodeHeader(h: TarHeader): Buffer {
  const raw: RawHeader = {
    typeflag: ENCODE_TYPE[h.type],
    name: h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name,
    linkname: h.linkname,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    size: h.type === 'file' ? h.size : 0,
    mtime: Math.floor(h.mtime),
    devmajor: h.devmajor,
    devminor: h.devminor,
  };
  const pax: Buffer[] = [];
  const split = splitUstar(raw.name);
  if (split === undefined) pax.push(paxRecord('path', Buffer.from(raw.name)));
  if (Buffer.byteLength(raw.linkname) > 100) pax.push(paxRecord('linkpath', Buffer.from(raw.linkname)));
  if (raw.uid > OCTAL_7) pax.push(paxRecord('uid', Buffer.from(String(raw.uid))));
  if (raw.gid > OCTAL_7) pax.push(paxRecord('gid', Buffer.from(String(raw.gid))));
  if (raw.size > OCTAL_11) pax.push(paxRecord('size', Buffer.from(String(raw.size))));
  if (raw.mtime > OCTAL_11 || raw.mtime < 0) pax.push(paxRecord('mtime', Buffer.from(String(raw.mtime))));
  for (const [key, value] of [...h.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    pax.push(paxRecord(`SCHILY.xattr.${key}`, value));
  }
  const [prefix, name] = split ?? ['', raw.name.slice(0, 100)];
  const main = encodeBlock(
    {
      ...raw,
      uid: Math.min(raw.uid, OCTAL_7),
      gid: Math.min(raw.gid, OCTAL_7),
      size: raw.size > OCTAL_11 ? 0 : raw.size,
      mtime: Math.max(0, Math.min(raw.mtime, OCTAL_11)),
      linkname: raw.linkname.slice(0, 100),
    },
    name,
    prefix,
  );
  if (pax.length === 0) return main;
  const data = Buffer.concat(pax);
  const paxName = `PaxHeaders.0/${name}`.slice(0, 100);
  const paxBlock = encodeBlock(
    { typeflag: 'x', name: paxName, linkname: '', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, devmajor: 0, devminor: 0 },
    paxName,
    '',
  );
  return Buffer.concat([paxBlock, data, Buffer.alloc(fill(data.length)), main]);
}

/** Zero bytes that pad an entry body of `size` bytes to a block. */
export function padding(size: number): Buffer {
  return Buffer.alloc(fill(size));
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
