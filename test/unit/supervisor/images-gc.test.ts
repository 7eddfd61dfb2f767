/**
 * Snapshot metadata and the garbage collector, without root: parent chains and containerd's
 * overlayfs mounts, commit/remove rules, then mark-and-sweep over images, leases, containers and
 * gc.ref labels: nothing referenced is collected and everything unreferenced is.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { createContentStore } from '../../../supervisor/content/store';
import { createExchange } from '../../../supervisor/events/exchange';
import { collectOnce, labelRefs, leaseExpired } from '../../../supervisor/gc/collect';
import { createImages } from '../../../supervisor/images/local';
import { ZERO_TIME } from '../../../supervisor/proto/index';
import { nativeDriver, overlayDriver } from '../../../supervisor/snapshots/drivers';
import { createSnapshots } from '../../../supervisor/snapshots/local';
import { openStore } from '../../../supervisor/store/db';
import { openImageMeta } from '../../../supervisor/store/images';

function setup(t: { teardown(fn: () => void): void }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-gc-'));
  const store = openStore(root);
  const meta = openImageMeta(root);
  t.teardown(() => {
    meta.close();
    store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const events = createExchange();
  const published: string[] = [];
  events.subscribe({ filter: () => true, send: (e) => published.push(e.topic) });
  const addResource = (ns: string, lease: string, type: string, id: string): void => meta.addLeaseResource(ns, lease, { type, id });
  const cs = createContentStore(root, meta, addResource);
  const snaps = createSnapshots(meta, [overlayDriver(root), nativeDriver(root)], events, addResource);
  const images = createImages(meta, events, { collect: async () => collectOnce(store, meta, cs, snaps), schedule: () => undefined });
  const blob = (text: string, labels: Record<string, string> = {}, lease = ''): string => {
    const w = cs.writer('default', `ref-${text}`, 0, '');
    w.write(Buffer.from(text));
    return w.commit(0, '', labels, lease);
  };
  return { root, store, meta, cs, snaps, images, blob, published };
}

const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

t.test('overlayfs mounts follow containerd: bind without parent, ro bind for a one-parent view, overlay otherwise', async (t) => {
  const { root, snaps } = setup(t);
  const dir = path.join(root, 'snapshots', 'overlayfs', 'snapshots');
  const m1 = snaps.prepare('overlayfs', 'default', 'extract-1', '', {}, '');
  t.same(m1, [{ type: 'bind', source: `${dir}/1/fs`, target: '', options: ['rw', 'rbind'] }]);
  t.ok(fs.existsSync(`${dir}/1/work`), 'active snapshot has a work dir');
  // FS_TOPDIR_FL on the snapshots' directory where the file system has it (ext2/3/4: lsattr's "T")
  const attrs = spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' });
  if (attrs.status === 0) t.match(attrs.stdout.split(' ')[0], /T/, 'snapshot directories are spread over block groups (chattr +T)');
  snaps.commit('overlayfs', 'default', 'layer-1', 'extract-1', {}, '');
  snaps.prepare('overlayfs', 'default', 'extract-2', 'layer-1', {}, '');
  snaps.commit('overlayfs', 'default', 'layer-2', 'extract-2', {}, '');
  const idx = fs.existsSync('/sys/module/overlay/parameters/index') ? ['index=off'] : [];
  t.same(snaps.prepare('overlayfs', 'default', 'ctr', 'layer-2', {}, ''), [
    { type: 'overlay', source: 'overlay', target: '', options: [...idx, `workdir=${dir}/3/work`, `upperdir=${dir}/3/fs`, `lowerdir=${dir}/2/fs:${dir}/1/fs`] },
  ]);
  t.same(snaps.view('overlayfs', 'default', 'v1', 'layer-1', {}, ''), [{ type: 'bind', source: `${dir}/1/fs`, target: '', options: ['ro', 'rbind'] }]);
  t.same(snaps.view('overlayfs', 'default', 'v2', 'layer-2', {}, ''), [
    { type: 'overlay', source: 'overlay', target: '', options: [...idx, `lowerdir=${dir}/2/fs:${dir}/1/fs`] },
  ]);
  t.same(snaps.view('overlayfs', 'default', 'v0', '', {}, '')[0]?.options, ['ro', 'rbind']);
  const st = snaps.stat('overlayfs', 'default', 'layer-2');
  t.equal(st.kind, 'committed');
  t.equal(st.parent, 'layer-1');
  t.throws(() => snaps.remove('overlayfs', 'default', 'layer-1'), /cannot remove snapshot with child: failed precondition/);
  t.throws(() => snaps.prepare('overlayfs', 'default', 'x', 'ctr', {}, ''), /parent ctr is not committed snapshot/);
  t.throws(() => snaps.prepare('overlayfs', 'default', 'y', 'nope', {}, ''), /parent snapshot nope does not exist: not found/);
  t.throws(() => snaps.prepare('overlayfs', 'default', 'ctr', '', {}, ''), /snapshot "ctr": already exists/);
  t.throws(() => snaps.commit('overlayfs', 'default', 'z', 'layer-1', {}, ''), /snapshot layer-1 is not active/);
  t.throws(() => snaps.stat('zfs', 'default', 'ctr'), /snapshotter not loaded: zfs: invalid argument/);
  t.same(snaps.list('overlayfs', 'default', ['kind==committed']).map((s) => s.key), ['layer-1', 'layer-2']);
  t.same(snaps.list('overlayfs', 'other', []), [], 'keys are per namespace');
  snaps.remove('overlayfs', 'default', 'ctr');
  t.notOk(fs.existsSync(`${dir}/3`), 'directory removed with the snapshot');
  fs.mkdirSync(`${dir}/99/fs`, { recursive: true });
  fs.rmSync(`${dir}/5`, { recursive: true });
  t.equal(snaps.cleanup('overlayfs'), 1, 'cleanup removes a directory without a row');
  t.ok(fs.existsSync(`${dir}/5/fs`), 'and makes the directory of a row that lacks it (a view: no work dir)');
});

t.test('native snapshots copy the parent', async (t) => {
  const { snaps } = setup(t);
  const [m] = snaps.prepare('native', 'default', 'a', '', {}, '');
  fs.writeFileSync(path.join(m!.source, 'file'), 'from a');
  fs.mkdirSync(path.join(m!.source, 'dir'));
  fs.symlinkSync('file', path.join(m!.source, 'link'));
  snaps.commit('native', 'default', 'A', 'a', {}, '');
  const [m2] = snaps.prepare('native', 'default', 'b', 'A', {}, '');
  t.equal(fs.readFileSync(path.join(m2!.source, 'file'), 'utf8'), 'from a');
  t.equal(fs.readlinkSync(path.join(m2!.source, 'link')), 'file');
  t.same(m2!.options, ['rw', 'rbind']);
  fs.writeFileSync(path.join(m2!.source, 'file'), 'changed');
  t.equal(fs.readFileSync(path.join(snaps.driver('native').fsPath(snaps.stat('native', 'default', 'A').id), 'file'), 'utf8'), 'from a', 'the parent is untouched');
  t.ok(snaps.usage('native', 'default', 'A').inodes >= 3);
});

t.test('labelRefs and lease expiry', async (t) => {
  t.same(labelRefs({ 'containerd.io/gc.ref.content.m.0': 'sha256:a', 'containerd.io/gc.ref.content': 'sha256:b', 'containerd.io/gc.ref.snapshot.overlayfs': 'k', 'containerd.io/gc.ref.snapshot.native/1': 'j', other: 'x' }), {
    content: ['sha256:a', 'sha256:b'],
    snapshots: [['overlayfs', 'k'], ['native', 'j']],
  });
  t.ok(leaseExpired({ 'containerd.io/gc.expire': '2000-01-01T00:00:00Z' }));
  t.notOk(leaseExpired({ 'containerd.io/gc.expire': '2999-01-01T00:00:00.123456789Z' }));
  t.notOk(leaseExpired({}));
});

t.test('collection keeps everything reachable from images, leases, containers and roots; removes the rest', async (t) => {
  const { store, meta, cs, snaps, images, blob, published } = setup(t);
  // An image: index → manifest → config + layer, with the unpacked chain referenced from the config.
  const layer = blob('layer');
  snaps.prepare('overlayfs', 'default', 'x1', '', {}, '');
  snaps.commit('overlayfs', 'default', 'chain-1', 'x1', {}, '');
  snaps.prepare('overlayfs', 'default', 'x2', 'chain-1', {}, '');
  snaps.commit('overlayfs', 'default', 'chain-2', 'x2', {}, '');
  const config = blob('config', { 'containerd.io/gc.ref.snapshot.overlayfs': 'chain-2' });
  const manifest = blob('manifest', { 'containerd.io/gc.ref.content.config': config, 'containerd.io/gc.ref.content.l.0': layer });
  const index = blob('index', { 'containerd.io/gc.ref.content.m.0': manifest });
  images.create('default', { name: 'img:1', labels: {}, target: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: index, size: 5, annotations: {} } });
  // A container's active snapshot on top of the chain.
  snaps.prepare('overlayfs', 'default', 'ctr-1', 'chain-2', {}, '');
  store.createContainer({
    namespace: 'default', id: 'ctr-1', labels: {}, image: 'img:1', runtime: { name: 'io.containerd.runc.v2', options: null },
    spec: { typeUrl: 'x', value: Buffer.from('{}') }, snapshotter: 'overlayfs', snapshotKey: 'ctr-1', extensions: {}, createdAt: ZERO_TIME, updatedAt: ZERO_TIME,
  });
  // Lease-held content and snapshot, a gc.root blob, and garbage.
  store.createLease({ namespace: 'default', id: 'L', labels: {}, createdAt: ZERO_TIME });
  const leased = blob('leased', {}, 'L');
  snaps.prepare('native', 'default', 'leased-snap', '', {}, 'L');
  const rooted = blob('rooted', { 'containerd.io/gc.root': 'true' });
  store.createLease({ namespace: 'default', id: 'old', labels: { 'containerd.io/gc.expire': '2001-01-01T00:00:00Z' }, createdAt: ZERO_TIME });
  const expiredHeld = blob('held-by-expired', {}, 'old');
  const garbage = blob('garbage', { 'containerd.io/gc.ref.content.x': layer });
  snaps.prepare('overlayfs', 'default', 'g1', '', {}, '');
  snaps.commit('overlayfs', 'default', 'g-chain', 'g1', {}, '');
  snaps.prepare('overlayfs', 'default', 'g2', 'g-chain', {}, '');
  fs.writeFileSync(cs.blobPath(sha('orphan')), 'orphan');
  // ingests: one held by the live lease, one by nobody (a failed import), one open right now
  cs.writer('default', 'held', 0, '', 'L').close();
  cs.writer('default', 'dropped', 0, '').close();
  const open = cs.writer('default', 'open-now', 0, '');

  const r1 = collectOnce(store, meta, cs, snaps);
  const digests = (): string[] => cs.list('default', []).map((c) => c.digest).sort();
  t.same(digests(), [layer, config, manifest, index, leased, rooted].sort(), 'reachable content kept, garbage and expired-lease content gone');
  t.notOk(fs.existsSync(cs.blobPath(garbage)), 'garbage blob file removed');
  t.notOk(fs.existsSync(cs.blobPath(expiredHeld)));
  t.notOk(fs.existsSync(cs.blobPath(sha('orphan'))), 'blob without a row removed');
  t.same(snaps.list('overlayfs', 'default', []).map((s) => s.key).sort(), ['chain-1', 'chain-2', 'ctr-1']);
  t.same(snaps.list('native', 'default', []).map((s) => s.key), ['leased-snap']);
  t.equal(store.getLease('default', 'old'), undefined, 'expired lease removed');
  t.match(r1, { content: 2, snapshots: 2, leases: 1, blobs: 3, ingests: 1 });
  t.same(cs.ingests().map((i) => i.ref).sort(), ['held', 'open-now'], 'the unheld, idle ingest is gone');
  open.close();
  for (const d of [layer, config, manifest, index, leased, rooted]) t.ok(fs.existsSync(cs.blobPath(d)), `blob ${d.slice(7, 15)} on disk`);

  // Dropping the container, the lease and the image makes everything but the gc.root blob garbage.
  store.deleteContainer('default', 'ctr-1');
  store.deleteLease('default', 'L');
  meta.dropLeaseResources('default', 'L');
  t.same(digests().length, 6, 'nothing goes before a collection');
  await images.delete('default', 'img:1', true);
  t.same(digests(), [rooted]);
  t.same(cs.ingests(), [], 'ingests go with their lease');
  t.same(snaps.list('overlayfs', 'default', []), []);
  t.same(snaps.list('native', 'default', []), []);
  t.same(fs.readdirSync(snaps.driver('overlayfs').dir), [], 'no snapshot directory left');
  t.ok(published.includes('/images/create') && published.includes('/images/delete') && published.includes('/snapshot/commit'));
});

t.test('images: validation, field-mask update, errors worded as containerd', async (t) => {
  const { images } = setup(t);
  const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha('m'), size: 1, annotations: {} };
  t.throws(() => images.create('default', { name: '', labels: {}, target }), /image name must not be empty: invalid argument/);
  t.throws(() => images.create('default', { name: 'a', labels: {}, target: { ...target, digest: 'bad' } }), /Target.Digest "bad" invalid/);
  images.create('default', { name: 'a', labels: { x: '1' }, target });
  t.throws(() => images.create('default', { name: 'a', labels: {}, target }), /image "a": already exists/);
  t.throws(() => images.get('default', 'b'), /image "b": not found/);
  const u = images.update('default', { name: 'a', labels: { y: '2' }, target: { ...target, digest: sha('n') } }, ['labels.y']);
  t.same(u.labels, { x: '1', y: '2' });
  t.equal(u.target.digest, target.digest, 'target untouched without "target" in the mask');
  t.equal(images.update('default', { name: 'a', labels: {}, target: { ...target, digest: sha('n') } }, ['target']).target.digest, sha('n'));
  t.same(images.list('default', ['labels.y==2']).map((i) => i.name), ['a']);
  await t.rejects(images.delete('default', 'nope', false), /image "nope": not found/);
});
