/*
 * Tar streams for `tsctl cp` and `tsctl export`, made and unpacked with the layer code
 * (supervisor/diff): writeDiff walks a tree (lstat only, symlinks written as symlinks, files opened
 * O_NOFOLLOW, hard links kept) and applyLayer unpacks (never through a symlink, `..` refused).
 *
 *   tarPath     the tree at a path as one top entry NAME (NAME/… below it), or its contents
 *               alone when NAME is ""; owners kept or replaced
 *   retar       a tar re-encoded entry by entry: renamed, owners replaced, and `.wh.` names refused
 *               (applyLayer reads them as overlay whiteouts and would delete instead of copy)
 *   extractTar  unpack a cp stream into a directory
 *
 * Everything is pulled: a file is read as fast as the consumer takes the tar, so memory is flat.
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { TsrunError } from '../../spec/errors';
import { applyLayer } from '../diff/apply';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../diff/tar-header';
import { readTar } from '../diff/tar-reader';
import { entryType, statHeader, writeDiff } from '../diff/write';

/** Owner replacement: every entry gets this uid/gid (docker cp without -a). */
export type Owner = { uid: number; gid: number } | undefined;

const TAR = 'application/vnd.oci.image.layer.v1.tar';
const READ_CHUNK = 256 * 1024;

function checkName(name: string): void {
  const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
  if (base.startsWith('.wh.')) throw new TsrunError('InvalidArgument', `copy "${name}": names starting with ".wh." are overlay whiteout markers and are not copied`);
}

/** Re-encode `source` (a tar) with `map` applied to each header; bodies pass through unread. */
export async function* retar(source: AsyncIterable<Buffer>, map: (h: TarHeader) => TarHeader): AsyncGenerator<Buffer> {
  for await (const entry of readTar(source)) {
    const h = map(entry.header);
    checkName(h.name);
    yield encodeHeader(h);
    if (h.type !== 'file') continue;
    for await (const chunk of entry.body) yield chunk;
    yield padding(h.size);
  }
  yield END_OF_ARCHIVE;
}

function withOwner(h: TarHeader, owner: Owner): TarHeader {
  return owner === undefined ? h : { ...h, uid: owner.uid, gid: owner.gid };
}

async function* fileBody(abs: string, size: number): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) throw new TsrunError('Internal', `copy ${abs}: file shrank while being read`);
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
  yield padding(size);
}

/**
 * A tar of the tree at `abs` (not followed if it is a symlink): one top entry `name` with the rest
 * below it, or (name "") the directory's contents alone.
 */
export function tarPath(abs: string, name: string, owner: Owner): Readable {
  async function* all(): AsyncGenerator<Buffer> {
    const st = fs.lstatSync(abs);
    const type = entryType(st);
    if (type === undefined) throw new TsrunError('InvalidArgument', `copy ${abs}: a socket cannot be copied`);
    if (name !== '') {
      checkName(name);
      yield encodeHeader(withOwner(statHeader(name, type, st, abs), owner));
      if (type === 'file') yield* fileBody(abs, st.size);
    }
    if (type !== 'dir') {
      yield END_OF_ARCHIVE;
      return;
    }
    const prefix = (n: string): string => (name === '' ? n : `${name}/${n}`);
    yield* retar(writeDiff({ kind: 'tree', lower: null, upper: abs }), (h) =>
      withOwner({ ...h, name: prefix(h.name), linkname: h.type === 'hardlink' ? prefix(h.linkname) : h.linkname }, owner),
    );
  }
  return Readable.from(all(), { objectMode: false });
}

/** Unpack `input` (a tar) into the existing directory `dir`, owners replaced when `owner` is set. */
export async function extractTar(input: Readable, dir: string, owner: Owner): Promise<void> {
  const checked = Readable.from(retar(input, (h) => withOwner(h, owner)), { objectMode: false });
  await applyLayer(checked, dir, { mediaType: TAR, whiteouts: 'apply' });
}
