/**
 * tsctl's own gRPC client (supervisor/tsctl/h2-client.ts) against tsrund's real gRPC server
 * (supervisor/grpc/server.ts, grpc-js) on a unix socket, and against a bare http2 server for the
 * responses grpc-js never sends (bad HTTP status, no grpc-status, a compressed message).
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { TsrunError } from '../../../../spec/errors';
import { RpcError } from '../../../../supervisor/client';
import { serve, type RpcContext } from '../../../../supervisor/grpc/server';
import { createLogger } from '../../../../supervisor/log';
import { connectTsrundH2, Deframer, frame, grpcTimeout, statusOf } from '../../../../supervisor/tsctl/h2-client';
import { waitFor } from '../../../helpers/wait';

const VERSION = 'containerd.services.version.v1.Version';
const EVENTS = 'containerd.services.events.v1.Events';
const NAMESPACES = 'containerd.services.namespaces.v1.Namespaces';
const TRANSFER = 'tsrun.services.transfer.v1.Transfer';

function tmpSocket(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsctl-h2-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 's.sock');
}

async function rejection(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new Error('the call succeeded');
}

t.test('framing: a message split across DATA chunks, two in one, an empty one', async (t) => {
  const a = frame(Buffer.from('hello'));
  t.same([...a.subarray(0, 5)], [0, 0, 0, 0, 5]);
  const d = new Deframer();
  t.same(d.push(a.subarray(0, 3)), []);
  t.same(d.push(a.subarray(3, 7)), []);
  t.same(d.push(Buffer.concat([a.subarray(7), frame(Buffer.alloc(0)), frame(Buffer.from('x'))])).map(String), ['hello', '', 'x']);
  t.equal(d.rest, 0);
  t.same(d.push(Buffer.from([0, 0, 0])), []);
  t.equal(d.rest, 3, 'a partial prefix is kept');
  t.throws(() => new Deframer().push(Buffer.from([1, 0, 0, 0, 1, 7])), /compressed/);
  t.throws(() => new Deframer().push(Buffer.from([0, 0xff, 0, 0, 0])), /larger than max/);
});

t.test('grpc-timeout and status mapping', async (t) => {
  t.equal(grpcTimeout(1500), '1500m');
  t.equal(grpcTimeout(0.2), '1m');
  t.equal(grpcTimeout(2e8), '200000S');
  t.equal(statusOf({ ':status': 200 } as never, { 'grpc-status': '0' }), undefined);
  const e = statusOf({ ':status': 200 } as never, { 'grpc-status': '5', 'grpc-message': 'no%20such%20thing%3A%20%25x' });
  t.equal(e?.code, 5);
  t.equal(e?.details, 'no such thing: %x', 'grpc-message is percent-decoded');
  t.equal(statusOf({ ':status': 200, 'grpc-status': '3', 'grpc-message': 'bad' } as never, undefined)?.code, 3, 'trailers-only');
  t.equal(statusOf({ ':status': 404 } as never, undefined)?.code, 12, 'HTTP 404 is UNIMPLEMENTED');
  t.equal(statusOf({ ':status': 503 } as never, undefined)?.code, 14);
  t.equal(statusOf({ ':status': 200 } as never, {})?.code, 13, 'no grpc-status is INTERNAL');
});

t.test('against tsrund\'s gRPC server', async (t) => {
  const socketPath = tmpSocket(t);
  let seenNs = '';
  let seenLease = '';
  const server = await serve({ socketPath, allowedUids: [process.getuid?.() ?? 0], log: createLogger('error') }, [
    {
      service: VERSION,
      unary: {
        Version: (_req: never, ctx: RpcContext) => {
          seenNs = ctx.rawNamespace;
          seenLease = ctx.lease;
          return { version: 'v-test', revision: 'r1' };
        },
      },
    },
    {
      service: NAMESPACES,
      unary: {
        Get: (req: never) => {
          const name = (req as { name: string }).name;
          if (name === 'slow') return new Promise(() => undefined);
          throw new TsrunError('NotFound', `namespace ${name}: ünïcode, 100% missing`);
        },
      },
    },
    {
      service: EVENTS,
      stream: {
        Subscribe: async (req: never, ctx: RpcContext, write) => {
          const filters = (req as { filters: string[] }).filters;
          for (let i = 0; i < 3; i++) write({ namespace: ctx.namespace(), topic: `/t/${i}/${filters.join(',')}` });
          if (filters.includes('fail')) throw new TsrunError('FailedPrecondition', 'stream broke after 3');
          if (filters.includes('forever')) await new Promise<void>((resolve) => ctx.onCancel(resolve));
        },
      },
    },
    {
      service: TRANSFER,
      bidi: {
        Load: async (requests, _ctx, write) => {
          let n = 0;
          for await (const r of requests) n += (r as { data: Uint8Array }).data.length;
          write({ state: 'done', current: n });
        },
      },
    },
  ]);
  t.teardown(() => server.close());
  const c = connectTsrundH2(socketPath, { namespace: 'ns1' });
  t.teardown(() => c.close());

  t.test('unary: response, namespace and lease headers', async (t) => {
    const r = await c.call<{ version: string; revision: string }>('Version', 'Version', {}, { lease: 'l1' });
    t.equal(r.version, 'v-test');
    t.equal(r.revision, 'r1');
    t.equal(seenNs, 'ns1');
    t.equal(seenLease, 'l1');
    await c.call('Version', 'Version', {}, { namespace: '' });
    t.equal(seenNs, '', 'namespace "" sends no header');
  });

  t.test('unary error: the server\'s code and message', async (t) => {
    const e = await rejection(c.call('Namespaces', 'Get', { name: 'x' }));
    t.equal(e.code, 5);
    t.equal(e.details, 'namespace x: ünïcode, 100% missing');
    t.equal(e.message, 'NOT_FOUND: namespace x: ünïcode, 100% missing');
    t.equal(e.errorCode(), 'NotFound');
  });

  t.test('UNIMPLEMENTED for a method the server lacks', async (t) => {
    const e = await rejection(c.call('Namespaces', 'List', {}));
    t.ok(e.isUnimplemented(), e.message);
  });

  t.test('deadline', async (t) => {
    const start = Date.now();
    const e = await rejection(c.call('Namespaces', 'Get', { name: 'slow' }, { timeoutMs: 200 }));
    t.equal(e.code, 4, e.message);
    t.ok(Date.now() - start < 5000);
  });

  t.test('server stream: every message, then the end', async (t) => {
    const got: string[] = [];
    for await (const m of c.stream<{ topic: string; namespace: string }>('Events', 'Subscribe', { filters: ['a'] }).messages) got.push(`${m.namespace} ${m.topic}`);
    t.same(got, ['ns1 /t/0/a', 'ns1 /t/1/a', 'ns1 /t/2/a']);
  });

  t.test('server stream: messages before an error, then the error', async (t) => {
    const got: string[] = [];
    const s = c.stream<{ topic: string }>('Events', 'Subscribe', { filters: ['fail'] });
    const e = await rejection(
      (async () => {
        for await (const m of s.messages) got.push(m.topic);
      })(),
    );
    t.equal(got.length, 3);
    t.equal(e.code, 9);
    t.equal(e.details, 'stream broke after 3');
  });

  t.test('server stream: cancel ends the iteration quietly', async (t) => {
    const s = c.stream<{ topic: string }>('Events', 'Subscribe', { filters: ['forever'] });
    let n = 0;
    for await (const _ of s.messages) if (++n === 2) s.cancel();
    t.ok(n >= 2);
  });

  t.test('bidirectional stream', async (t) => {
    const d = c.duplex<{ state: string; current: string | number | { toNumber(): number } }>('Transfer', 'Load');
    await d.write({ data: Buffer.alloc(100_000, 1) });
    await d.write({ data: Buffer.from('abc') });
    d.end();
    const got = [];
    for await (const m of d.messages) got.push(m);
    t.equal(got.length, 1);
    t.equal(got[0]!.state, 'done');
    t.equal(Number(got[0]!.current), 100_003);
  });

  t.test('the server widens its HTTP/2 receive windows (a client sends a 1 MiB message without waiting for updates)', async (t) => {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    t.teardown(() => session.close());
    const settings = await new Promise<http2.Settings>((resolve, reject) => {
      session.on('error', reject);
      const check = (s: http2.Settings): void => {
        if ((s.initialWindowSize ?? 0) > 65535) resolve(s);
      };
      session.on('remoteSettings', check);
    });
    t.equal(settings.initialWindowSize, 8 << 20, 'stream window');
    // the connection window comes in a WINDOW_UPDATE after the settings: waited for, not timed
    await waitFor(() => session.state.remoteWindowSize === 16 << 20, 5000);
    t.equal(session.state.remoteWindowSize, 16 << 20, 'connection window');
  });

  t.test('many calls on one connection at once', async (t) => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => c.call<{ version: string }>('Version', 'Version')));
    t.ok(rs.every((r) => r.version === 'v-test'));
  });
});

t.test('no server: UNAVAILABLE naming the socket', async (t) => {
  const socketPath = tmpSocket(t);
  const c = connectTsrundH2(socketPath);
  t.teardown(() => c.close());
  const e = await rejection(c.call('Version', 'Version'));
  t.equal(e.code, 14, e.message);
  t.match(e.details, socketPath);
  t.match(e.details, /ENOENT/);
});

t.test('responses grpc-js never sends', async (t) => {
  const socketPath = tmpSocket(t);
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    switch (headers[':path']) {
      case '/containerd.services.version.v1.Version/Version':
        stream.respond({ ':status': 404 }, { endStream: true });
        break;
      case '/tsrun.services.transfer.v1.Transfer/Pull':
        // one message, then a reset with INTERNAL_ERROR
        stream.on('error', () => undefined); // node reports its own reset on this side too
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.write(frame(Buffer.alloc(0)), () => setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 20));
        break;
      case '/containerd.services.namespaces.v1.Namespaces/Get':
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.end();
        break;
      default:
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.concat([frame(Buffer.alloc(0)), frame(Buffer.alloc(0))]));
    }
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const c = connectTsrundH2(socketPath);
  t.teardown(() => c.close());
  t.equal((await rejection(c.call('Version', 'Version'))).code, 12, 'HTTP 404');
  const e = await rejection(c.call('Namespaces', 'Get', { name: 'x' }));
  t.equal(e.code, 13, `no grpc-status: ${e.message}`);
  const two = await rejection(c.call('Namespaces', 'Delete', { name: 'x' }));
  t.match(two.details, /more than one message/);
  let n = 0;
  const reset = await rejection(
    (async () => {
      for await (const _ of c.stream('Transfer', 'Pull', {}).messages) n++;
    })(),
  );
  t.equal(n, 1, 'the message before the reset');
  t.equal(reset.code, 13, reset.message);
  t.match(reset.details, /RST_STREAM/);
});
