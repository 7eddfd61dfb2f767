/** applyLayer: entry kinds, metadata, media types, diffID, whiteouts in 'apply' mode. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { applyLayer } from '../../../../supervisor/diff/apply';
import { gzip, listTree, packLayer, sha256, streamOf, tempDir } from '../../../helpers/layers';

const OCI_TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_GZ = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const MTIME = new Date(1_500_000_000_000);

async function baseLayer(): Promise<Buffer> {
  return packLayer([
    { name: 'etc', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644, mtime: MTIME },
    { name: 'bin', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: 'bin/su', body: 'ELF', mode: 0o4755, mtime: MTIME },
    { name: 'bin/sudo', type: 'link', linkname: 'bin/su', mtime: MTIME },
    { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', mtime: MTIME },
    { name: 'tmp', type: 'directory', mode: 0o1777, mtime: MTIME },
    { name: 'srv/deep/er', type: 'directory', mode: 0o2750, mtime: MTIME },
    { name: 'srv/deep/er/data', body: Buffer.alloc(70_000, 7), mode: 0o600, mtime: MTIME },
  ]);
}

t.test('entries, modes, hardlinks, symlinks and mtimes are kept; diffID is the tar digest', async (t) => {
  const root = tempDir(t);
  const tar = await baseLayer();
  const r = await applyLayer(streamOf(tar), root, { mediaType: OCI_TAR, whiteouts: 'apply' });
  t.equal(r.diffId, sha256(tar));
  t.equal(r.size, tar.length);
  t.same(listTree(root), [
    'd bin', 'f bin/sh'.replace('f', 'l'), 'f bin/su', 'f bin/sudo', 'd etc', 'f etc/passwd',
    'd srv', 'd srv/deep', 'd srv/deep/er', 'f srv/deep/er/data', 'd tmp',
  ]);
  const st = (p: string): fs.Stats => fs.lstatSync(path.join(root, p));
  t.equal(st('bin/su').mode & 0o7777, 0o4755, 'setuid kept');
  t.equal(st('tmp').mode & 0o7777, 0o1777, 'sticky kept');
  t.equal(st('srv/deep/er').mode & 0o7777, 0o2750, 'setgid kept');
  t.equal(st('bin/su').ino, st('bin/sudo').ino, 'hard link shares the inode');
  t.equal(fs.readlinkSync(path.join(root, 'bin/sh')), '/bin/busybox');
  t.equal(fs.readFileSync(path.join(root, 'srv/deep/er/data')).length, 70_000);
  for (const p of ['etc', 'etc/passwd', 'srv/deep/er', 'bin', 'bin/sh']) {
    t.equal(st(p).mtimeMs, MTIME.getTime(), `${p} mtime (directories fixed after their children)`);
  }
  t.equal(st('srv').mode & 0o7777, 0o755, 'a missing parent is made 0755');
});

t.test('gzip media types give the same diffID as the plain tar', async (t) => {
  const tar = await baseLayer();
  for (const mediaType of [OCI_GZ, DOCKER_GZ, 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip']) {
    const root = tempDir(t);
    const r = await applyLayer(streamOf(gzip(tar)), root, { mediaType, whiteouts: 'apply' });
    t.equal(r.diffId, sha256(tar), mediaType);
    t.ok(fs.existsSync(path.join(root, 'etc/passwd')));
  }
});

t.test('zstd and unknown media types fail naming the type, before writing anything', async (t) => {
  const root = tempDir(t);
  const tar = await baseLayer();
  const zstd = 'application/vnd.oci.image.layer.v1.tar+zstd';
  const hasZstd = 'createZstdDecompress' in (await import('node:zlib'));
  if (!hasZstd) {
    await t.rejects(applyLayer(streamOf(tar), root, { mediaType: zstd, whiteouts: 'apply' }), {
      message: new RegExp(`layer media type "${zstd.replace(/[.+]/g, '\\$&')}": zstd is not supported`),
    });
  }
  await t.rejects(applyLayer(streamOf(tar), root, { mediaType: 'application/json', whiteouts: 'apply' }), {
    message: /layer media type "application\/json": not a supported layer type/,
  });
  t.same(fs.readdirSync(root), []);
});

t.test('a gzip layer that is not gzip, and a truncated tar, fail', async (t) => {
  const tar = await baseLayer();
  await t.rejects(applyLayer(streamOf(tar), tempDir(t), { mediaType: OCI_GZ, whiteouts: 'apply' }), {
    message: /apply layer .*incorrect header check/,
  });
  await t.rejects(applyLayer(streamOf(tar.subarray(0, 2000)), tempDir(t), { mediaType: OCI_TAR, whiteouts: 'apply' }), {
    message: /unexpected end of stream/,
  });
  const corrupt = Buffer.from(tar);
  corrupt[10] = 0x41;
  await t.rejects(applyLayer(streamOf(corrupt), tempDir(t), { mediaType: OCI_TAR, whiteouts: 'apply' }), {
    message: /checksum mismatch/,
  });
});

t.test("whiteouts in 'apply' mode delete lower content; an opaque dir keeps only this layer's entries", async (t) => {
  const root = tempDir(t);
  await applyLayer(
    streamOf(
      await packLayer([
        { name: 'a/keep', body: '1' },
        { name: 'a/gone', body: '2' },
        { name: 'a/sub/x', body: '3' },
        { name: 'o/old1', body: '4' },
        { name: 'o/olddir/y', body: '5' },
      ]),
    ),
    root,
    { mediaType: OCI_TAR, whiteouts: 'apply' },
  );
  await applyLayer(
    streamOf(
      await packLayer([
        { name: 'a/.wh.gone', body: '' },
        { name: 'a/.wh.sub', body: '' },
        { name: 'a/.wh.never-was', body: '' },
        { name: 'o', type: 'directory' },
        { name: 'o/new', body: 'n' },
        { name: 'o/.wh..wh..opq', body: '' },
        { name: 'n/fresh', body: 'f' },
        { name: 'n/.wh.fresh', body: '' },
      ]),
    ),
    root,
    { mediaType: OCI_TAR, whiteouts: 'apply' },
  );
  t.same(listTree(root), ['d a', 'f a/keep', 'd n', 'f n/fresh', 'd o', 'f o/new']);
});

t.test('an entry replaces what was there unless both are directories', async (t) => {
  const root = tempDir(t);
  await applyLayer(
    streamOf(await packLayer([{ name: 'x/f', body: 'old' }, { name: 'y', body: 'file' }, { name: 'd/keep', body: 'k' }])),
    root,
    { mediaType: OCI_TAR, whiteouts: 'apply' },
  );
  await applyLayer(
    streamOf(
      await packLayer([
        { name: 'x', type: 'symlink', linkname: 'elsewhere' },
        { name: 'y', type: 'directory', mode: 0o700 },
        { name: 'd', type: 'directory', mode: 0o711 },
      ]),
    ),
    root,
    { mediaType: OCI_TAR, whiteouts: 'apply' },
  );
  t.same(listTree(root), ['d d', 'f d/keep', 'l x', 'd y']);
  t.equal(fs.statSync(path.join(root, 'd')).mode & 0o777, 0o711);
});
