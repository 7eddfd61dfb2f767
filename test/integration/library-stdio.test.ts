/**
 * The runtime library as the shim runs it, in this process: the container's 0-2 come from fds the
 * caller names (the plan's STDIO op, applied by the helper in the child), so the caller's own
 * 0-2 are never repointed, and any kind of fd works, a socket included (reopening a socket
 * through /proc/self/fd, as the shim once did, fails with ENXIO).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import t from 'tap';
import { libraryRuntime } from '../../shim/runtime/library';
import { makeBundle } from '../helpers/bundle';
import { requires } from '../helpers/requires';
import { waitFor } from '../helpers/wait';

/** dev:ino of an open fd, to see that it still names the same file. */
const identity = (fd: number): string => {
  const s = fs.fstatSync(fd);
  return `${s.dev}:${s.ino}`;
};

t.test('library runtime: a unix socket as stdout and stderr; the caller keeps its own 0-2', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sh', '-c', 'echo out-line; echo err-line >&2; [ -t 0 ] || read x </dev/stdin; echo "stdin:${x:-eof}"'] });
  const sock = path.join(b.sandbox, 'stdio.sock');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(sock);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const conn = await accepted;
  let out = '';
  conn.on('data', (d: Buffer) => (out += d.toString()));
  const ended = new Promise<void>((resolve) => conn.once('end', resolve));
  const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  t.ok(fd > 2, `the socket is fd ${fd}`);

  const before = [0, 1, 2].map(identity);
  const rt = libraryRuntime({ id: b.id, bundle: b.dir, root: path.join(b.sandbox, 'root'), noPivot: false, noNewKeyring: false });
  const pid = await rt.create({ fds: [-1, fd, fd] });
  t.same([0, 1, 2].map(identity), before, "this process's 0-2 were not touched");
  client.destroy(); // the container holds its own copies now
  await rt.start();
  await ended;
  t.equal(out, 'out-line\nerr-line\nstdin:eof\n', 'stdout and stderr on the socket, stdin on /dev/null');
  t.ok(await waitFor(() => !fs.existsSync(`/proc/${pid}`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000), 'init exited');
  await rt.delete(false);
  t.same(b.leftovers(), [], 'nothing left');
});
