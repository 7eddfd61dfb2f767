/** The local volume driver over a real store: create, in-use refusal, prune, crash leftovers. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { now } from '../../../../supervisor/proto/index';
import { openStore } from '../../../../supervisor/store/db';
import { createVolumes } from '../../../../supervisor/volumes/local';
import { tempDir } from '../../../helpers/layers';

function withSpecMount(store: ReturnType<typeof openStore>, id: string, source: string): void {
  store.ensureNamespace('ns');
  store.createContainer({
    namespace: 'ns', id, labels: {}, image: '', runtime: { name: 'io.containerd.runc.v2', options: null },
    spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify({ mounts: [{ destination: '/d', type: 'bind', source }] })) },
    snapshotter: '', snapshotKey: '', extensions: {}, createdAt: now(), updatedAt: now(),
  });
}

t.test('create, in use, remove, prune, and leftovers of a killed remove', async (t) => {
  const root = tempDir(t, 'tsrun-vols-');
  const store = openStore(root);
  t.teardown(() => store.close());
  const vols = createVolumes(store, root);
  const a = vols.create('alpha', { k: 'v' }, {}, false);
  t.equal(a.mountpoint, path.join(root, 'volumes', 'alpha', '_data'));
  t.ok(fs.statSync(a.mountpoint).isDirectory());
  t.throws(() => vols.create('..', {}, {}, false), /invalid characters/);
  t.throws(() => vols.create('a/b', {}, {}, false), /invalid characters/);
  t.throws(() => vols.create('beta', {}, { type: 'nfs' }, false), /driver option "type" is not supported/);
  withSpecMount(store, 'c1', a.mountpoint);
  t.same(vols.get('alpha').usedBy, ['c1']);
  t.throws(() => vols.remove('alpha', false), /remove alpha: volume is in use - \[c1\]/);
  t.same(vols.prune(true, () => false).deleted, [], 'prune keeps a volume in use');
  store.deleteContainer('ns', 'c1');
  const anon = vols.create('f'.repeat(64), {}, {}, true);
  fs.writeFileSync(path.join(anon.mountpoint, 'x'), 'x'.repeat(5000));
  const pruned = vols.prune(false, () => false);
  t.same(pruned.deleted, ['f'.repeat(64)], 'without all: anonymous only');
  t.ok(pruned.reclaimed >= 5000);
  vols.remove('alpha', false);
  t.throws(() => vols.get('alpha'), /get alpha: no such volume/);
  t.doesNotThrow(() => vols.remove('alpha', true), 'force ignores a missing volume');
  // a remove killed after its rename leaves a hidden directory: the next start sweeps it
  fs.mkdirSync(path.join(root, 'volumes', '.removing-gone-1234', '_data'), { recursive: true });
  createVolumes(store, root);
  t.same(fs.readdirSync(path.join(root, 'volumes')), []);
});

t.test('prepare copies up into an empty volume only', async (t) => {
  const root = tempDir(t, 'tsrun-vols-');
  const rootfs = path.join(root, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc/app'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc/app/conf'), 'c1');
  const store = openStore(path.join(root, 'state'));
  t.teardown(() => store.close());
  const vols = createVolumes(store, path.join(root, 'state'));
  const v = await vols.prepare('conf', { anonymous: false, labels: {}, copyFrom: { rootfs, path: '/etc/app' } });
  t.equal(fs.readFileSync(path.join(v.mountpoint, 'conf'), 'utf8'), 'c1');
  fs.writeFileSync(path.join(rootfs, 'etc/app/conf'), 'c2');
  await vols.prepare('conf', { anonymous: false, labels: {}, copyFrom: { rootfs, path: '/etc/app' } });
  t.equal(fs.readFileSync(path.join(v.mountpoint, 'conf'), 'utf8'), 'c1', 'not copied again');
  await t.rejects(vols.prepare('rel', { anonymous: false, labels: {}, copyFrom: { rootfs: 'relative', path: '/x' } }), /must be absolute/);
  t.throws(() => vols.get('rel'), /no such volume/, 'a refused prepare makes no volume');
});

t.test('removeAnonymousOf: the anonymous volumes of a removed container, unless another uses them', async (t) => {
  const root = tempDir(t, 'tsrun-vols-');
  const store = openStore(root);
  t.teardown(() => store.close());
  const vols = createVolumes(store, root);
  const mine = vols.create('a'.repeat(64), {}, {}, true);
  const shared = vols.create('b'.repeat(64), {}, {}, true);
  const named = vols.create('named', {}, {}, false);
  vols.create('c'.repeat(64), {}, {}, true); // not mounted by the container: kept
  withSpecMount(store, 'other', shared.mountpoint);
  const spec = Buffer.from(JSON.stringify({ mounts: [mine, shared, named].map((v) => ({ destination: `/${v.name.slice(0, 4)}`, type: 'bind', source: v.mountpoint })) }));
  t.same(vols.removeAnonymousOf(spec), ['a'.repeat(64)], 'only the anonymous one nobody else mounts');
  t.notOk(fs.existsSync(path.dirname(mine.mountpoint)), 'its directory is gone');
  t.same(vols.list().map((v) => v.name).sort(), ['b'.repeat(64), 'c'.repeat(64), 'named']);
  t.same(vols.removeAnonymousOf(Buffer.from('not json')), [], 'a spec that is not JSON names nothing');
});
