/** The SQLite store: records round-trip, spec bytes are kept verbatim, data survives reopening. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import Database from 'better-sqlite3';
import { openStore, type ContainerRecord } from '../../../supervisor/store/db';
import { ZERO_TIME } from '../../../supervisor/proto/index';

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const spec = Buffer.from('{"ociVersion":"1.0.2-dev",  "process":{"args":["sh"]}}\n\u0000odd bytes');

function container(id: string): ContainerRecord {
  return {
    namespace: 'default',
    id,
    labels: { a: 'b' },
    image: '',
    runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'containerd.runc.v1.Options', value: Buffer.alloc(0) } },
    spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: spec },
    snapshotter: '',
    snapshotKey: '',
    extensions: { ext: { typeUrl: 'x.Y', value: Buffer.from([1, 2, 3]) } },
    createdAt: { seconds: 1700000000, nanos: 123456789 },
    updatedAt: ZERO_TIME,
  };
}

t.test('containers round-trip byte-for-byte and survive reopening', async (t) => {
  const root = tempRoot(t);
  let s = openStore(root);
  const uuid = s.uuid;
  t.ok(s.createContainer(container('c1')));
  t.notOk(s.createContainer(container('c1')), 'duplicate refused');
  s.close();
  s = openStore(root);
  t.equal(s.uuid, uuid, 'uuid stable');
  const c = s.getContainer('default', 'c1')!;
  t.ok(Buffer.from(c.spec.value).equals(spec), 'spec bytes identical');
  t.same(c.labels, { a: 'b' });
  t.equal(c.runtime.options?.typeUrl, 'containerd.runc.v1.Options');
  t.equal(c.runtime.options?.value.length, 0);
  t.same([...c.extensions['ext']!.value], [1, 2, 3]);
  t.same(c.createdAt, { seconds: 1700000000, nanos: 123456789 });
  t.same(c.updatedAt, ZERO_TIME, 'negative seconds stored');
  t.equal(s.countContainers('default'), 1);
  t.equal(s.listContainers('other').length, 0);
  t.ok(s.deleteContainer('default', 'c1'));
  t.notOk(s.deleteContainer('default', 'c1'));
  s.close();
});

t.test('namespaces, implicit creation, leases, restart records', async (t) => {
  const s = openStore(tempRoot(t));
  t.same(s.listNamespaces(), [], 'a fresh store lists no namespace');
  s.ensureNamespace('auto');
  s.ensureNamespace('auto');
  t.same(s.listNamespaces(), [{ name: 'auto', labels: {} }]);
  t.notOk(s.createNamespace({ name: 'auto', labels: {} }));
  s.updateNamespace({ name: 'auto', labels: { x: 'y' } });
  t.same(s.getNamespace('auto')?.labels, { x: 'y' });
  t.ok(s.deleteNamespace('auto'));
  t.ok(s.createLease({ namespace: 'n', id: 'l1', labels: { 'containerd.io/gc.expire': 'x' }, createdAt: { seconds: 1, nanos: 2 } }));
  t.notOk(s.createLease({ namespace: 'n', id: 'l1', labels: {}, createdAt: { seconds: 1, nanos: 2 } }));
  t.equal(s.listLeases('n').length, 1);
  t.ok(s.deleteLease('n', 'l1'));
  s.putRestart({ namespace: 'n', id: 'c', restartCount: 2, manuallyStopped: false, lastExit: 1, backoffStep: 0, startedAt: null, lastExitAt: null });
  s.putRestart({ namespace: 'n', id: 'c', restartCount: 3, manuallyStopped: true, lastExit: 1, backoffStep: 4, startedAt: 1700000000123, lastExitAt: '1.5' });
  t.same(s.getRestart('n', 'c'), { namespace: 'n', id: 'c', restartCount: 3, manuallyStopped: true, lastExit: 1, backoffStep: 4, startedAt: 1700000000123, lastExitAt: '1.5' });
  t.same(s.listRestartsInFlight(), [], 'no restart in flight');
  s.setRestartInFlight('n', 'c', '{"stdin":""}');
  s.setRestartInFlight('n', 'new', '{"stdin":"a"}');
  t.same(s.listRestartsInFlight(), [{ namespace: 'n', id: 'c', stdio: '{"stdin":""}' }, { namespace: 'n', id: 'new', stdio: '{"stdin":"a"}' }]);
  t.same(s.getRestart('n', 'c')?.restartCount, 3, 'marking does not touch the bookkeeping');
  s.setRestartInFlight('n', 'c', null);
  s.setRestartInFlight('n', 'new', null);
  t.same(s.listRestartsInFlight(), []);
  s.deleteRestart('n', 'c');
  t.equal(s.getRestart('n', 'c'), undefined);
  s.close();
});

t.test('the database is in WAL mode with synchronous=FULL', async (t) => {
  const root = tempRoot(t);
  openStore(root).close();
  t.ok(fs.existsSync(path.join(root, 'meta.db')));
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(path.join(root, 'meta.db'));
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
});

t.test('a database from before the back-off columns is migrated and keeps its restart records', async (t) => {
  const root = tempRoot(t);
  // the restarts table as the first release made it
  const old = new Database(path.join(root, 'meta.db'));
  old.exec(`CREATE TABLE restarts (
    namespace TEXT NOT NULL, id TEXT NOT NULL, restart_count INTEGER NOT NULL, manually_stopped INTEGER NOT NULL,
    last_exit INTEGER, PRIMARY KEY (namespace, id))`);
  old.prepare('INSERT INTO restarts VALUES (?, ?, ?, ?, ?)').run('n', 'old', 5, 0, 1);
  old.close();
  const s = openStore(root);
  t.same(s.getRestart('n', 'old'), { namespace: 'n', id: 'old', restartCount: 5, manuallyStopped: false, lastExit: 1, backoffStep: 0, startedAt: null, lastExitAt: null });
  s.putRestart({ namespace: 'n', id: 'old', restartCount: 6, manuallyStopped: false, lastExit: 1, backoffStep: 3, startedAt: 42, lastExitAt: 'x' });
  s.close();
  const again = openStore(root);
  t.same(again.getRestart('n', 'old'), { namespace: 'n', id: 'old', restartCount: 6, manuallyStopped: false, lastExit: 1, backoffStep: 3, startedAt: 42, lastExitAt: 'x' }, 'kept across reopening');
  again.setRestartInFlight('n', 'old', '{"stdout":"x"}');
  t.same(again.listRestartsInFlight(), [{ namespace: 'n', id: 'old', stdio: '{"stdout":"x"}' }], 'the in-flight column was added');
  again.close();
  const check = new Database(path.join(root, 'meta.db'), { readonly: true });
  t.equal(check.pragma('user_version', { simple: true }), 2, 'the migrations are recorded');
  check.close();
});
