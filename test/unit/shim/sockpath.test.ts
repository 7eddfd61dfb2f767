import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_SOCKET_PATH, withSocketPath } from '../../../shim/sockpath';

t.test('a socket path longer than sun_path is bound and reached through the directory fd', async (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-sockpath-'));
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  // /run/tsrund/shims/<ns>/<64 hex>/pty-exec-<id>.sock is about this long
  const dir = path.join(base, 'shims', 'tsctl', 'a'.repeat(64));
  fs.mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'pty-exec-0123456789.sock');
  t.ok(Buffer.byteLength(sock) > MAX_SOCKET_PATH, `the path is ${Buffer.byteLength(sock)} bytes`);
  const server = net.createServer((c) => c.end('hello'));
  await withSocketPath(sock, (usable) => new Promise<void>((res) => server.listen(usable, () => res())));
  t.teardown(() => server.close());
  t.ok(fs.statSync(sock).isSocket(), 'the socket has its full name in the directory');
  const got = await withSocketPath(
    sock,
    (usable) =>
      new Promise<string>((res, rej) => {
        const c = net.createConnection(usable);
        let data = '';
        c.on('data', (d) => (data += d.toString()));
        c.on('end', () => res(data));
        c.on('error', rej);
      }),
  );
  t.equal(got, 'hello', 'a client reaches it the same way');
});

t.test('short paths are used as they are', async (t) => {
  let seen = '';
  await withSocketPath('/tmp/x.sock', async (usable) => {
    seen = usable;
  });
  t.equal(seen, '/tmp/x.sock');
});
