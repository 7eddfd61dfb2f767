import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { FILES, SHIM_STATE_VERSION, readShimPid, readShimState, rfc3339Nano, runtimeRootFor, writeAtomic, writeShimState, type ShimState } from '../../../shim/state';
import { listShimDirs } from '../../../supervisor/shims/client';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-state-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('state round-trips and is replaced atomically', async (t) => {
  const d = tmp(t);
  const s: ShimState = {
    version: SHIM_STATE_VERSION,
    namespace: 'default',
    id: 'c1',
    runtime: { kind: 'library' },
    runtimeRoot: path.join(d, 'runtime-root'),
    shimPid: 123,
    init: { pid: 5, status: 'stopped', stdio: { stdin: '', stdout: '/f', stderr: '', terminal: false }, exitStatus: 3, exitedAt: 'T' },
    execs: [{ execId: 'e', pid: 6, status: 'running', stdio: { stdin: '', stdout: '', stderr: '', terminal: false } }],
    undelivered: [{ pid: 5, exitStatus: 3, exitedAt: 'T' }],
  };
  writeShimState(d, s);
  t.same(readShimState(d), s);
  t.same(fs.readdirSync(d), [FILES.state], 'no temp file left');
});

t.test('errors name the file', async (t) => {
  const d = tmp(t);
  t.throws(() => readShimState(d), { code: 'NotFound', message: new RegExp(`read shim state ${d}/shim-state.json`) });
  writeAtomic(path.join(d, FILES.state), 'nope');
  t.throws(() => readShimState(d), { code: 'InvalidArgument', message: /not JSON/ });
  writeAtomic(path.join(d, FILES.state), '{"version":99}');
  t.throws(() => readShimState(d), { code: 'InvalidArgument', message: /not a version 1 shim state/ });
});

t.test('shim.pid, runtime root, listShimDirs', async (t) => {
  const d = tmp(t);
  const dir = path.join(d, 'ns1', 'c1');
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.join(d, 'ns1', 'not-a-shim'));
  fs.writeFileSync(path.join(dir, FILES.options), '{}');
  t.equal(readShimPid(dir), undefined);
  fs.writeFileSync(path.join(dir, FILES.pid), '4242');
  t.equal(readShimPid(dir), 4242);
  t.same(listShimDirs(d), [{ namespace: 'ns1', id: 'c1', dir, shimPid: 4242 }]);
  t.equal(runtimeRootFor(dir, { kind: 'library' }), path.join(dir, 'runtime-root'));
  t.equal(runtimeRootFor(dir, { kind: 'binary', path: 'runc', root: '/run/x' }), '/run/x');
});

t.test('RFC3339Nano', async (t) => {
  t.equal(rfc3339Nano(Date.UTC(2024, 0, 2, 3, 4, 5, 123) + 0.5), '2024-01-02T03:04:05.1235Z');
  t.equal(rfc3339Nano(Date.UTC(2024, 0, 2, 3, 4, 5, 0)), '2024-01-02T03:04:05Z');
  t.equal(rfc3339Nano(Date.UTC(2024, 0, 2, 3, 4, 5, 500)), '2024-01-02T03:04:05.5Z');
});
