/** The tar codec: what we encode, tar-stream and GNU tar read; what they write, we read. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import * as tarStream from 'tar-stream';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../../../../supervisor/diff/tar-header';
import { readTar } from '../../../../supervisor/diff/tar-reader';
import { packLayer, tempDir } from '../../../helpers/layers';

function header(over: Partial<TarHeader>): TarHeader {
  return { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), ...over };
}

async function readAll(tar: Buffer, chunk = 100): Promise<Array<{ h: TarHeader; body: Buffer }>> {
  // small chunks so headers and bodies straddle chunk boundaries
  const parts: Buffer[] = [];
  for (let i = 0; i < tar.length; i += chunk) parts.push(tar.subarray(i, i + chunk));
  const out: Array<{ h: TarHeader; body: Buffer }> = [];
  for await (const e of readTar(Readable.from(parts))) {
    const b: Buffer[] = [];
    for await (const c of e.body) b.push(c);
    out.push({ h: e.header, body: Buffer.concat(b) });
  }
  return out;
}

const longName = `${'d'.repeat(120)}/${'n'.repeat(120)}/${'f'.repeat(99)}`;
const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0xfe, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);

function ours(): Buffer {
  const body = Buffer.from('hello');
  return Buffer.concat([
    encodeHeader(header({ name: 'dir', type: 'dir', mode: 0o2755 })),
    encodeHeader(header({ name: 'dir/f', size: 5, uid: 3_000_000, gid: 70_000, xattrs: new Map([['security.capability', cap], ['user.x', Buffer.from('é')]]) })),
    body,
    padding(5),
    encodeHeader(header({ name: longName, type: 'symlink', linkname: `/${'l'.repeat(150)}` })),
    encodeHeader(header({ name: 'dev', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 })),
    encodeHeader(header({ name: 'hl', type: 'hardlink', linkname: 'dir/f' })),
    END_OF_ARCHIVE,
  ]);
}

t.test('our encoding reads back exactly, binary xattrs included', async (t) => {
  const got = await readAll(ours(), 37);
  t.same(got.map((e) => e.h.name), ['dir/', 'dir/f', longName, 'dev', 'hl']);
  const f = got[1];
  t.equal(f?.body.toString(), 'hello');
  t.equal(f?.h.uid, 3_000_000);
  t.equal(f?.h.gid, 70_000);
  t.ok(f?.h.xattrs.get('security.capability')?.equals(cap), 'binary xattr survives');
  t.equal(f?.h.xattrs.get('user.x')?.toString(), 'é');
  t.equal(got[0]?.h.mode, 0o2755);
  t.equal(got[2]?.h.linkname, `/${'l'.repeat(150)}`);
  t.same([got[3]?.h.type, got[3]?.h.devmajor, got[3]?.h.devminor], ['char', 1, 3]);
  t.same([got[4]?.h.type, got[4]?.h.linkname], ['hardlink', 'dir/f']);
});

t.test('tar-stream reads our encoding', async (t) => {
  const ex = tarStream.extract();
  const names: string[] = [];
  ex.on('entry', (h, stream, next) => {
    names.push(`${h.type}:${h.name}:${h.linkname ?? ''}`);
    stream.on('end', next);
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    ex.end(ours());
  });
  t.same(names, ['directory:dir/:', 'file:dir/f:', `symlink:${longName}:/${'l'.repeat(150)}`, 'character-device:dev:', 'link:hl:dir/f']);
});

t.test('GNU tar lists our encoding and we read what GNU tar writes (long names, GNU format)', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'ours.tar');
  fs.writeFileSync(file, ours());
  const list = spawnSync('tar', ['-tvf', file], { encoding: 'utf8' });
  if (list.error !== undefined) {
    t.plan(0, 'GNU tar is not installed');
    return;
  }
  t.equal(list.status, 0, list.stderr);
  t.match(list.stdout, /hl link to dir\/f/);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'a'.repeat(150)), { recursive: true });
  fs.writeFileSync(path.join(src, 'a'.repeat(150), 'b'.repeat(120)), 'x'.repeat(1000));
  for (const format of ['gnu', 'posix', 'ustar']) {
    const out = path.join(dir, `${format}.tar`);
    const r = spawnSync('tar', ['--format', format, '-C', src, '-cf', out, '.'], { encoding: 'utf8' });
    if (format === 'ustar') {
      t.not(r.status, 0, 'ustar cannot hold a 120-byte base name');
      continue;
    }
    t.equal(r.status, 0, r.stderr);
    const got = await readAll(fs.readFileSync(out), 4096);
    const f = got.find((e) => e.h.type === 'file');
    t.equal(f?.h.name, `./${'a'.repeat(150)}/${'b'.repeat(120)}`, format);
    t.equal(f?.body.length, 1000);
  }
});

t.test('tar-stream output reads back, including its PAX records', async (t) => {
  const tar = await packLayer([{ name: 'x', body: 'y', pax: { 'SCHILY.xattr.user.k': 'v' } }, { name: 'long/'.repeat(40) + 'z', body: 'q' }]);
  const got = await readAll(tar);
  t.equal(got[0]?.h.xattrs.get('user.k')?.toString(), 'v');
  t.equal(got[1]?.h.name, 'long/'.repeat(40) + 'z');
  t.equal(got[1]?.body.toString(), 'q');
});

t.test('bad PAX records and unknown entry types are errors', async (t) => {
  const bad = Buffer.from('99 path=x\n');
  const h = encodeHeader(header({ name: 'PaxHeader', size: bad.length }));
  h.write('x', 156, 'latin1');
  // fix the checksum after changing the type flag
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  await t.rejects(readAll(Buffer.concat([h, bad, padding(bad.length), END_OF_ARCHIVE])), { message: /malformed PAX record/ });
  const v = encodeHeader(header({ name: 'vol' }));
  v.write('V', 156, 'latin1');
  v.fill(0x20, 148, 156);
  sum = 0;
  for (const b of v) sum += b;
  v.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  await t.rejects(readAll(Buffer.concat([v, END_OF_ARCHIVE])), { message: /entry "vol": unsupported entry type "V"/ });
});
