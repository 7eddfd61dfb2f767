/**
 * The registry client against fake registries on loopback, for what a real registry won't do on
 * demand: a blob with the wrong digest, a stall, 5xx/429 then success, a connection cut
 * mid-blob (Range resume), a registry ignoring Range, a redirect to another host, the bearer
 * challenge/token dance, a schema1 manifest, bounded concurrency, two pulls of one layer at once.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { TsrunError } from '../../../../spec/errors';
import { digestOf, DirBlobStore, MediaType, pull, RegistryClient, type ClientOptions, type ProgressEvent } from '../../../../supervisor/registry';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(t: Test, handler: Handler): Promise<{ host: string; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function thrown(p: Promise<unknown>): Promise<TsrunError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TsrunError) return err;
    throw err;
  }
  throw new Error('expected a TsrunError');
}

function store(t: Test): DirBlobStore {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-reg-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return new DirBlobStore(dir);
}

function client(t: Test, o: ClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ dockerConfig: '/nonexistent/config.json', retryDelayMs: 5, ...o });
  t.teardown(() => c.close());
  return c;
}

/** An image: layers of the given contents, and its manifest. */
function image(layers: readonly Buffer[]): { manifest: Buffer; config: Buffer; blobs: Map<string, Buffer> } {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const blobs = new Map<string, Buffer>([[digestOf(config), config]]);
  for (const l of layers) blobs.set(digestOf(l), l);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: MediaType.ociLayerGzip, digest: digestOf(l), size: l.length })),
    }),
  );
  return { manifest, config, blobs };
}

/** A minimal registry serving `img`; `blob` may take over blob requests. */
function registry(img: ReturnType<typeof image>, blob?: (digest: string, req: http.IncomingMessage, res: http.ServerResponse) => boolean): Handler {
  return (req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') {
      res.writeHead(200);
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url);
    if (m?.[2] === 'manifests' && (m[3] === '1' || m[3] === digestOf(img.manifest))) {
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'docker-content-digest': digestOf(img.manifest) });
      res.end(req.method === 'HEAD' ? undefined : img.manifest);
      return;
    }
    if (m?.[2] === 'blobs' && img.blobs.has(m[3]!)) {
      if (blob?.(m[3]!, req, res) === true) return;
      res.writeHead(200, { 'content-length': img.blobs.get(m[3]!)!.length });
      res.end(img.blobs.get(m[3]!));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  };
}

const big = (n: number, seed: number): Buffer => Buffer.alloc(n, seed);

t.test('a blob whose bytes do not match its digest: error names the layer, nothing left behind', async (t) => {
  const layer = big(100_000, 1);
  const img = image([layer]);
  const { host } = await serve(t, registry(img, (_d, _req, res) => {
    if (_d !== digestOf(layer)) return false;
    res.writeHead(200, { 'content-length': layer.length });
    res.end(big(100_000, 2));
    return true;
  }));
  const s = store(t);
  const e = await thrown(pull(client(t), s, `${host}/x/y:1`));
  t.equal(e.code, 'InvalidArgument');
  t.match(e.message, `pull ${host}/x/y:1: layer ${digestOf(layer)}: commit blob ${digestOf(layer)}: failed verification: content has digest ${digestOf(big(100_000, 2))}`);
  t.notOk(await s.has(digestOf(layer)), 'no blob');
  t.same(fs.readdirSync(path.join(s.root, 'ingest')), [], 'no ingest');
});

t.test('a stalled blob fails with an error naming it, and the writer is aborted', async (t) => {
  const layer = big(100_000, 3);
  const img = image([layer]);
  const { host } = await serve(t, registry(img, (d, _req, res) => {
    if (d !== digestOf(layer)) return false;
    res.writeHead(200, { 'content-length': layer.length });
    res.write(layer.subarray(0, 1000));
    return true; // and never more
  }));
  const s = store(t);
  const started = Date.now();
  const e = await thrown(pull(client(t, { stallTimeoutMs: 300 }), s, `${host}/x/y:1`));
  t.equal(e.code, 'Unavailable');
  t.match(e.message, `pull ${host}/x/y:1: layer ${digestOf(layer)}: fetch: stalled: no data for 300 ms`);
  t.ok(Date.now() - started < 10_000, 'fails within the stall time, without retrying forever');
  t.same(fs.readdirSync(path.join(s.root, 'ingest')), [], 'no ingest');
  t.notOk(await s.has(digestOf(layer)));
});

t.test('500 and 429 then success are retried; a lasting 500 names status and error JSON', async (t) => {
  const img = image([big(10_000, 4)]);
  let failures = 3;
  let manifestGets = 0;
  const inner = registry(img);
  const { host } = await serve(t, (req, res) => {
    if (req.url?.includes('/manifests/') === true) {
      manifestGets++;
      if (failures-- > 0) {
        const status = failures === 1 ? 429 : 500;
        res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '0' } : {}) });
        res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'boom' }] }));
        return;
      }
    }
    inner(req, res);
  });
  const r = await pull(client(t), store(t), `${host}/x/y:1`);
  t.equal(r.manifest.digest, digestOf(img.manifest));
  t.equal(manifestGets, 4, 'three failures, then success');

  failures = 100;
  manifestGets = 0;
  const e = await thrown(pull(client(t, { retries: 2 }), store(t), `${host}/x/y:1`));
  t.equal(manifestGets, 3, 'one try and two retries');
  t.equal(e.code, 'Unavailable');
  t.match(e.message, `pull ${host}/x/y:1: manifest 1: 500 Internal Server Error: UNKNOWN: boom`);
});

t.test('a connection cut mid-blob resumes with Range; a registry ignoring Range restarts', async (t) => {
  const layer = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const img = image([layer]);
  const ranges: (string | undefined)[] = [];
  let honourRange = true;
  const { host } = await serve(t, registry(img, (d, req, res) => {
    if (d !== digestOf(layer)) return false;
    ranges.push(req.headers.range);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m !== null && honourRange) {
      const start = Number(m[1]);
      res.writeHead(206, { 'content-length': layer.length - start, 'content-range': `bytes ${start}-${layer.length - 1}/${layer.length}` });
      res.end(layer.subarray(start));
    } else if (ranges.length === 1) {
      res.writeHead(200, { 'content-length': layer.length });
      res.write(layer.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 50));
    } else {
      res.writeHead(200, { 'content-length': layer.length });
      res.end(layer);
    }
    return true;
  }));
  const s = store(t);
  await pull(client(t), s, `${host}/x/y:1`);
  t.equal(ranges.length, 2);
  t.equal(ranges[0], undefined);
  t.match(ranges[1], /^bytes=\d+-$/, 'second request resumes');
  t.ok(Number(/\d+/.exec(ranges[1] ?? '')?.[0]) > 0);
  t.same(fs.readFileSync(s.blobPath(digestOf(layer))), layer, 'whole blob, right bytes');

  ranges.length = 0;
  honourRange = false;
  const s2 = store(t);
  await pull(client(t), s2, `${host}/x/y:1`);
  t.equal(ranges.length, 2, 'cut, then a full answer to the Range request');
  t.same(fs.readFileSync(s2.blobPath(digestOf(layer))), layer, 'started over, right bytes');
});

t.test('bearer challenge, token endpoint, and a blob redirect to another host without the token', async (t) => {
  const layer = big(50_000, 5);
  const img = image([layer]);
  const cdnAuth: (string | undefined)[] = [];
  const cdn = await serve(t, (req, res) => {
    cdnAuth.push(req.headers.authorization);
    res.writeHead(200, { 'content-length': layer.length });
    res.end(layer);
  });
  const tokenScopes: string[][] = [];
  const registryAuth: (string | undefined)[] = [];
  const inner = registry(img, (d, _req, res) => {
    if (d !== digestOf(layer)) return false;
    res.writeHead(307, { location: `http://${cdn.host}/blob?sig=abc` });
    res.end();
    return true;
  });
  let host = '';
  const reg = await serve(t, (req, res) => {
    if (req.url?.startsWith('/token') === true) {
      const u = new URL(req.url, 'http://x');
      tokenScopes.push(u.searchParams.getAll('scope'));
      t.equal(u.searchParams.get('service'), 'fake', 'service passed on');
      t.equal(req.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'tok-123', expires_in: 300 }));
      return;
    }
    registryAuth.push(req.headers.authorization);
    if (req.headers.authorization !== 'Bearer tok-123') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="fake",scope="repository:x/y:pull"`, 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    inner(req, res);
  });
  host = reg.host;
  const s = store(t);
  const r = await pull(client(t, { credentials: () => ({ username: 'u', password: 'p' }) }), s, `${host}/x/y:1`);
  t.same(r.layers.map((l) => l.digest), [digestOf(layer)]);
  t.same(tokenScopes, [['repository:x/y:pull']], 'one token, pull scope');
  t.same(cdnAuth, [undefined], 'no Authorization sent to the other host');
  t.ok(registryAuth.slice(1).every((a) => a === 'Bearer tok-123'), 'the registry got the token');
  t.ok(await s.has(digestOf(layer)));
});

t.test('a registry refusing a fresh token is an error, not a loop', async (t) => {
  let host = '';
  let hits = 0;
  const reg = await serve(t, (req, res) => {
    if (req.url?.startsWith('/token') === true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 't' }));
      return;
    }
    hits++;
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="fake"`, 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
  });
  host = reg.host;
  const e = await thrown(pull(client(t), store(t), `${host}/x/y:1`));
  t.equal(e.code, 'PermissionDenied');
  t.match(e.message, `pull ${host}/x/y:1: manifest 1: 401 Unauthorized: DENIED: requested access to the resource is denied`);
  t.ok(hits <= 3, 'bounded');
});

t.test('schema1 is refused; a manifest whose digest is not the pinned one is refused', async (t) => {
  const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x/y', tag: '1', fsLayers: [] }));
  const { host } = await serve(t, (req, res) => {
    if (req.url === '/v2/') {
      res.writeHead(200);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': MediaType.dockerSchema1Signed });
    res.end(schema1);
  });
  const e = await thrown(pull(client(t), store(t), `${host}/x/y:1`));
  t.equal(e.code, 'FailedPrecondition');
  t.match(e.message, `pull ${host}/x/y:1: manifest 1: Docker Image manifest version 2, schema 1 is not supported`);
  const pinned = `sha256:${'a'.repeat(64)}`;
  const e2 = await thrown(pull(client(t), store(t), `${host}/x/y@${pinned}`));
  t.match(e2.message, `manifest ${pinned}: content has digest ${digestOf(schema1)}, want ${pinned}`);
});

t.test('layer downloads run at most `concurrency` at a time, with progress per layer', async (t) => {
  const layers = Array.from({ length: 6 }, (_, i) => big(20_000, 10 + i));
  const img = image(layers);
  let inFlight = 0;
  let most = 0;
  const { host } = await serve(t, registry(img, (_d, _req, res) => {
    inFlight++;
    most = Math.max(most, inFlight);
    setTimeout(() => {
      const data = img.blobs.get(_d)!;
      res.writeHead(200, { 'content-length': data.length });
      res.end(data, () => inFlight--);
    }, 60);
    return true;
  }));
  const events: ProgressEvent[] = [];
  await pull(client(t), store(t), `${host}/x/y:1`, { concurrency: 2, onProgress: (e) => events.push(e) });
  t.equal(most, 2, 'never more than 2 blobs at once');
  t.equal(events.filter((e) => e.state === 'Pull complete').length, 6);
  t.equal(events.filter((e) => e.state === 'Waiting').length, 6);
});

t.test('an ingest an earlier run left is resumed with Range, not downloaded again', async (t) => {
  const layer = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 256));
  const img = image([layer]);
  const ranges: (string | undefined)[] = [];
  const { host } = await serve(t, registry(img, (d, req, res) => {
    if (d !== digestOf(layer)) return false;
    ranges.push(req.headers.range);
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    res.writeHead(start > 0 ? 206 : 200, {
      'content-length': layer.length - start,
      ...(start > 0 ? { 'content-range': `bytes ${start}-${layer.length - 1}/${layer.length}` } : {}),
    });
    res.end(layer.subarray(start));
    return true;
  }));
  const s = store(t);
  // an earlier process wrote 70000 bytes and died: its writer was never committed or aborted
  const earlier = await new DirBlobStore(s.root).writer(`layer-${digestOf(layer)}`, { digest: digestOf(layer), size: layer.length });
  await earlier.write(layer.subarray(0, 70_000));
  await pull(client(t), s, `${host}/x/y:1`);
  t.same(ranges, ['bytes=70000-'], 'only the missing bytes were asked for');
  t.same(fs.readFileSync(s.blobPath(digestOf(layer))), layer);
});

t.test('a manifest naming a blob the registry lacks: 404 naming the layer, the other blobs stay', async (t) => {
  const present = big(5_000, 20);
  const absent = big(6_000, 21);
  const img = image([present, absent]);
  img.blobs.delete(digestOf(absent));
  const inner = registry(img);
  const { host } = await serve(t, (req, res) => {
    if (req.url?.endsWith(digestOf(absent)) === true) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
      return;
    }
    inner(req, res);
  });
  const s = store(t);
  const e = await thrown(pull(client(t), s, `${host}/x/y:1`, { concurrency: 1 }));
  t.equal(e.code, 'NotFound');
  t.match(e.message, `pull ${host}/x/y:1: layer ${digestOf(absent)}: fetch: 404 Not Found: BLOB_UNKNOWN: blob unknown to registry`);
  t.ok(await s.has(digestOf(present)), 'complete blobs are kept for the next pull');
  t.notOk(await s.has(digestOf(img.manifest)), 'no manifest without its blobs');
  t.same(fs.readdirSync(path.join(s.root, 'ingest')), [], 'no ingest');
});

t.test('two pulls of one layer at once: the second waits for the first and finds the blob', async (t) => {
  const layer = big(200_000, 9);
  const img = image([layer]);
  let layerGets = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  // should the second pull never wait, the first still finishes (and the assertions below fail)
  setTimeout(() => release(), 10_000).unref();
  const { host } = await serve(t, registry(img, (d, _req, res) => {
    if (d !== digestOf(layer)) return false;
    layerGets++;
    // the first download stops half-way until the second pull is waiting for its ref
    res.writeHead(200, { 'content-length': layer.length });
    res.write(layer.subarray(0, 1000));
    void released.then(() => res.end(layer.subarray(1000)));
    return true;
  }));
  const s = store(t);
  const c = client(t);
  // either pull may reach the layer first: each one's states are kept, and the one that finds
  // the ref held (its second Waiting: the first is the queue's) lets the download finish
  const states: string[][] = [[], []];
  const track = (n: number) => ({
    onProgress: (e: ProgressEvent) => {
      if (e.digest !== digestOf(layer)) return;
      states[n]!.push(e.state);
      if (states[n]!.filter((x) => x === 'Waiting').length === 2) release();
    },
  });
  const [a, b] = await Promise.all([pull(c, s, `${host}/x/y:1`, track(0)), pull(c, s, `${host}/x/y:1`, track(1))]);
  t.equal(a.manifest.digest, b.manifest.digest);
  t.ok(await s.has(digestOf(layer)), 'the layer is stored');
  t.equal(layerGets, 1, 'downloaded once');
  const waited = states.find((x) => x.filter((y) => y === 'Waiting').length === 2);
  t.same(waited, ['Waiting', 'Waiting', 'Already exists'], 'one pull waited for the ref, then found the blob');
  t.same(fs.readdirSync(path.join(s.root, 'ingest')), [], 'no ingest left');
});
