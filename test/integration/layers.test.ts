/**
 * Layers as root: device nodes, owners, trusted and capability xattrs, overlay whiteouts seen through
 * a real overlay mount, and the round trip apply → change in an overlay → writeDiff → apply.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { applyLayer, gzipStream, writeDiff } from '../../supervisor/diff/index';
import { lgetxattr } from '../../supervisor/diff/syscalls';
import { listTree, packLayer, streamOf, tempDir } from '../helpers/layers';
import { requires } from '../helpers/requires';

const OCI_TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const CAP = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // cap_net_raw+ep

async function bytes(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

function mountOverlay(t: Test, lowers: string[], upper: string | undefined, work: string | undefined, merged: string): void {
  const opts = [`lowerdir=${lowers.join(':')}`];
  if (upper !== undefined && work !== undefined) opts.push(`upperdir=${upper}`, `workdir=${work}`);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts.join(','), merged], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount overlay: ${r.stderr}`);
  t.teardown(() => {
    spawnSync('umount', [merged]);
  });
}

/** A fingerprint of a tree: type, mode, owner, size, link target, device and content digest. */
function fingerprint(root: string): string[] {
  return listTree(root).map((line) => {
    const rel = line.slice(2);
    const p = path.join(root, rel);
    const st = fs.lstatSync(p);
    let extra = '';
    if (st.isSymbolicLink()) extra = `-> ${fs.readlinkSync(p)}`;
    else if (st.isFile()) extra = fs.readFileSync(p).toString('base64').slice(0, 40);
    else if (st.isCharacterDevice() || st.isBlockDevice()) extra = `dev ${st.rdev}`;
    return `${line} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} ${extra}`;
  });
}

t.test('device nodes, fifos, owners, setuid after chown, trusted and capability xattrs', async (t) => {
  if (!requires(t, 'root')) return;
  const root = tempDir(t);
  const tar = await packLayer([
    { name: 'dev', type: 'directory', mode: 0o755 },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
    { name: 'dev/fifo', type: 'fifo', mode: 0o620 },
    { name: 'home/u', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
    { name: 'home/u/f', body: 'x', uid: 1000, gid: 1000, mode: 0o640 },
    { name: 'bin/suid', body: 'x', uid: 1000, gid: 50, mode: 0o6755 },
    { name: 'bin/lnk', type: 'symlink', linkname: 'suid', uid: 7, gid: 8 },
  ]);
  // tar-stream writes PAX values as UTF-8, which cannot carry the binary capability: add those by hand
  const { encodeHeader, padding } = await import('../../supervisor/diff/tar-header');
  const withXattrs = Buffer.concat([
    tar.subarray(0, tar.length - 1024),
    encodeHeader({ name: 'bin/ping', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 1, mtime: 1_600_000_000, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map([['security.capability', CAP], ['trusted.tsrun', Buffer.from('t')], ['user.note', Buffer.from('n')]]) }),
    Buffer.from('p'),
    padding(1),
    Buffer.alloc(1024),
  ]);
  await applyLayer(streamOf(withXattrs), root, { mediaType: OCI_TAR, whiteouts: 'overlay' });
  const st = (p: string): fs.Stats => fs.lstatSync(path.join(root, p));
  t.ok(st('dev/null').isCharacterDevice());
  t.equal(st('dev/null').rdev, 0x103);
  t.ok(st('dev/loop9').isBlockDevice());
  t.equal(st('dev/loop9').gid, 6);
  t.ok(st('dev/fifo').isFIFO());
  t.equal(st('dev/fifo').mode & 0o777, 0o620);
  t.same([st('home/u').uid, st('home/u/f').gid], [1000, 1000]);
  t.equal(st('bin/suid').mode & 0o7777, 0o6755, 'setuid and setgid survive the chown');
  t.same([st('bin/lnk').uid, st('bin/lnk').gid], [7, 8], 'symlink owner set with lchown');
  t.ok(lgetxattr(path.join(root, 'bin/ping'), 'security.capability')?.equals(CAP), 'file capability kept');
  t.equal(lgetxattr(path.join(root, 'bin/ping'), 'trusted.tsrun')?.toString(), 't');
});

t.test('overlay whiteouts and opaque dirs show as deletions in a mounted overlay', async (t) => {
  if (!requires(t, 'root')) return;
  const base = tempDir(t);
  const [l1, l2, merged] = ['l1', 'l2', 'merged'].map((d) => path.join(base, d)) as [string, string, string];
  for (const d of [l1, l2, merged]) fs.mkdirSync(d);
  await applyLayer(
    streamOf(await packLayer([{ name: 'a/keep', body: '1' }, { name: 'a/gone', body: '2' }, { name: 'o/old', body: '3' }, { name: 'o/sub/old2', body: '4' }, { name: 'gonedir/x', body: '5' }])),
    l1,
    { mediaType: OCI_TAR, whiteouts: 'overlay' },
  );
  await applyLayer(
    streamOf(await packLayer([{ name: 'a/.wh.gone', body: '' }, { name: '.wh.gonedir', body: '' }, { name: 'o', type: 'directory' }, { name: 'o/.wh..wh..opq', body: '' }, { name: 'o/new', body: 'n' }])),
    l2,
    { mediaType: OCI_TAR, whiteouts: 'overlay' },
  );
  t.ok(fs.lstatSync(path.join(l2, 'a/gone')).isCharacterDevice(), 'whiteout is a char device');
  t.equal(fs.lstatSync(path.join(l2, 'a/gone')).rdev, 0, '... 0:0');
  t.equal(lgetxattr(path.join(l2, 'o'), 'trusted.overlay.opaque')?.toString(), 'y');
  mountOverlay(t, [l2, l1], undefined, undefined, merged);
  t.same(listTree(merged), ['d a', 'f a/keep', 'd o', 'f o/new']);
});

t.test('round trip: layers → changes in an overlay → writeDiff → apply on a copy gives the same tree', async (t) => {
  if (!requires(t, 'root')) return;
  const base = tempDir(t);
  const [l1, l2, upper, work, merged, copy] = ['l1', 'l2', 'upper', 'work', 'merged', 'copy'].map((d) => path.join(base, d)) as [string, string, string, string, string, string];
  for (const d of [l1, l2, upper, work, merged, copy]) fs.mkdirSync(d);
  const layer1 = await packLayer([
    { name: 'etc/conf', body: 'v1', mode: 0o600, uid: 3, gid: 4 },
    { name: 'etc/old', body: 'o' },
    { name: 'var/lib/db/a', body: 'a' },
    { name: 'var/lib/db/b', body: 'b' },
    { name: 'bin/tool', body: 'tool', mode: 0o755 },
    { name: 'bin/tool2', type: 'link', linkname: 'bin/tool' },
    { name: 'dev/zero', type: 'character-device', devmajor: 1, devminor: 5 },
  ]);
  const layer2 = await packLayer([{ name: 'usr/share/doc', body: 'doc' }, { name: 'etc/.wh.old', body: '' }]);
  await applyLayer(streamOf(layer1), l1, { mediaType: OCI_TAR, whiteouts: 'overlay' });
  await applyLayer(streamOf(layer2), l2, { mediaType: OCI_TAR, whiteouts: 'overlay' });
  await applyLayer(streamOf(layer1), copy, { mediaType: OCI_TAR, whiteouts: 'apply' });
  await applyLayer(streamOf(layer2), copy, { mediaType: OCI_TAR, whiteouts: 'apply' });
  mountOverlay(t, [l2, l1], upper, work, merged);
  // a container's changes
  fs.writeFileSync(path.join(merged, 'etc/conf'), 'v2');
  fs.chownSync(path.join(merged, 'etc/conf'), 5, 6);
  fs.chmodSync(path.join(merged, 'bin/tool'), 0o4711);
  fs.rmSync(path.join(merged, 'usr/share/doc'));
  fs.rmSync(path.join(merged, 'var/lib/db'), { recursive: true });
  fs.mkdirSync(path.join(merged, 'var/lib/db'));
  fs.writeFileSync(path.join(merged, 'var/lib/db/fresh'), 'f');
  fs.writeFileSync(path.join(merged, 'new1'), 'n');
  fs.linkSync(path.join(merged, 'new1'), path.join(merged, 'new2'));
  fs.symlinkSync('/etc/conf', path.join(merged, 'sl'));
  const expected = fingerprint(merged);
  const diff = await bytes(writeDiff({ kind: 'overlay', upper, lowers: [l2, l1] }));
  const again = await bytes(writeDiff({ kind: 'overlay', upper, lowers: [l2, l1] }));
  t.ok(diff.equals(again), 'writeDiff is deterministic');
  const names = spawnSync('tar', ['-t'], { input: diff, encoding: 'utf8' }).stdout.split('\n');
  t.ok(names.includes('usr/share/.wh.doc'), 'deletion as a .wh. file');
  t.ok(names.includes('var/lib/db/.wh..wh..opq'), 'recreated directory as opaque');
  // apply the gzipped diff onto the copy (copying-snapshotter path) and into a new overlay layer
  const gz = await bytes(gzipStream(Readable.from([diff])));
  await applyLayer(Readable.from([gz]), copy, { mediaType: OCI_GZ, whiteouts: 'apply' });
  t.same(fingerprint(copy), expected, 'copy + diff equals the merged view');
  t.equal(fs.lstatSync(path.join(copy, 'new1')).ino, fs.lstatSync(path.join(copy, 'new2')).ino, 'hard link kept');
  // the tree diff of copy against the lower layers' copy reproduces an equivalent layer
  const lowerCopy = path.join(base, 'lower-copy');
  fs.mkdirSync(lowerCopy);
  await applyLayer(streamOf(layer1), lowerCopy, { mediaType: OCI_TAR, whiteouts: 'apply' });
  await applyLayer(streamOf(layer2), lowerCopy, { mediaType: OCI_TAR, whiteouts: 'apply' });
  const treeDiff = await bytes(writeDiff({ kind: 'tree', lower: lowerCopy, upper: copy }));
  await applyLayer(streamOf(treeDiff), lowerCopy, { mediaType: OCI_TAR, whiteouts: 'apply' });
  t.same(fingerprint(lowerCopy), expected, 'tree diff applied to the lower gives the upper');
  const l3 = path.join(base, 'l3');
  const merged2 = path.join(base, 'merged2');
  fs.mkdirSync(l3);
  fs.mkdirSync(merged2);
  await applyLayer(streamOf(diff), l3, { mediaType: OCI_TAR, whiteouts: 'overlay' });
  mountOverlay(t, [l3, l2, l1], undefined, undefined, merged2);
  t.same(fingerprint(merged2), expected, 'diff as a third overlay layer gives the same merged view');
});
