/**
 * The registry client against a real registry (Debian's docker-registry on 127.0.0.1): plain
 * HTTP, htpasswd basic auth, TLS from a CA made here, and token auth with a token server here;
 * skopeo cross-checks what was pushed and pushes what we pull. Failure cases that a real
 * registry can't be made to produce (a wrong digest, a stall, a 500, a cut connection, a
 * redirect to another host) run against fake registries in test/unit/supervisor/registry/faults.test.ts.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { DirBlobStore, pull, push, readBlob, RegistryClient, resolve, type ClientOptions, type ProgressEvent } from '../../supervisor/registry';
import { buildImage, makeCerts, registryMissing, startRegistry, type RegistryServer } from '../helpers/registry';
import { TsrunError } from '../../spec/errors';

const why = registryMissing();
const hasSkopeo = spawnSync('skopeo', ['--version'], { stdio: 'ignore' }).status === 0;

function tmp(t: Test, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function started(t: Test, o: Parameters<typeof startRegistry>[0] = {}): Promise<RegistryServer> {
  const r = await startRegistry(o);
  t.teardown(() => r.stop());
  return r;
}

function client(t: Test, o: ClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ dockerConfig: '/nonexistent/config.json', retryDelayMs: 20, ...o });
  t.teardown(() => c.close());
  return c;
}

function skopeo(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The TsrunError `p` rejects with (anything else, or success, fails the test). */
async function thrown(p: Promise<unknown>): Promise<TsrunError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TsrunError) return err;
    throw err;
  }
  throw new Error('expected a TsrunError');
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('plain HTTP: push a two-platform index, pull each platform back, skopeo agrees', async (t) => {
    const reg = await started(t);
    const src = new DirBlobStore(tmp(t, 'tsrun-reg-src-'));
    const img = await buildImage(src, { platforms: ['linux/amd64', 'linux/arm64'], layers: 3, layerSize: 200_000 });
    const c = client(t);
    const events: ProgressEvent[] = [];
    await push(c, src, `${reg.host}/test/app:1`, img.target, { onProgress: (e) => events.push(e) });
    t.ok(events.some((e) => e.state === 'Pushed' && e.kind === 'layer'), 'layers pushed');
    t.ok(events.some((e) => e.state === 'Pushing' && e.current > 0), 'push progress');

    // pushing again finds every blob there
    const again: ProgressEvent[] = [];
    await push(c, src, `${reg.host}/test/app:1`, img.target, { onProgress: (e) => again.push(e) });
    t.notOk(again.some((e) => e.state === 'Pushed'), 'nothing uploaded twice');
    t.ok(again.filter((e) => e.state === 'Layer already exists').length >= 6, 'every blob already exists');

    for (const plat of ['linux/amd64', 'linux/arm64']) {
      const dst = new DirBlobStore(tmp(t, 'tsrun-reg-dst-'));
      const progress: ProgressEvent[] = [];
      const r = await pull(c, dst, `${reg.host}/test/app:1`, { platform: plat, onProgress: (e) => progress.push(e) });
      const want = img.images.get(plat)!;
      t.equal(r.name, `${reg.host}/test/app:1`);
      t.equal(r.target.digest, img.target.digest, 'target is the index');
      t.equal(r.manifest.digest, want.manifest.digest, `${plat} manifest`);
      t.equal(r.config.digest, want.config.digest);
      t.same(r.layers.map((l) => l.digest), want.layers.map((l) => l.digest));
      for (const d of [r.target, r.manifest, r.config, ...r.layers]) {
        t.ok(await dst.has(d.digest), `${d.digest} in the store`);
        t.same(await readBlob(dst, d.digest, 1 << 30), await readBlob(src, d.digest, 1 << 30), 'same bytes');
      }
      for (const state of ['Waiting', 'Downloading', 'Verifying Checksum', 'Download complete', 'Pull complete']) {
        t.ok(progress.some((e) => e.kind === 'layer' && e.state === state), `progress ${state}`);
      }
      const done = progress.filter((e) => e.state === 'Download complete' && e.kind === 'layer');
      t.equal(done.length, 3);
      t.ok(done.every((e) => e.current === e.total && e.id === e.digest.slice(7, 19)));
      t.same(fs.readdirSync(path.join(dst.root, 'ingest')), [], 'no ingest left');

      // a second pull finds everything present
      const second: ProgressEvent[] = [];
      await pull(c, dst, `${reg.host}/test/app:1`, { platform: plat, onProgress: (e) => second.push(e) });
      t.equal(second.filter((e) => e.state === 'Already exists').length, 4, 'config and 3 layers already exist');
      t.notOk(second.some((e) => e.state === 'Downloading'));
    }

    const resolved = await resolve(c, `${reg.host}/test/app:1`);
    t.same(resolved, { name: `${reg.host}/test/app:1`, target: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: img.target.digest, size: img.target.size } }, 'resolve names the index');

    // by digest, and a platform the index lacks
    const dst = new DirBlobStore(tmp(t, 'tsrun-reg-dst-'));
    const arm = img.images.get('linux/arm64')!.manifest.digest;
    const byDigest = await pull(c, dst, `${reg.host}/test/app@${arm}`);
    t.equal(byDigest.target.digest, arm);
    const e = await thrown(pull(c, dst, `${reg.host}/test/app:1`, { platform: 'linux/s390x' }));
    t.match(e.message, /no matching manifest for linux\/s390x.*has: linux\/amd64, linux\/arm64/);

    if (hasSkopeo) {
      const ins = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/app:1`]);
      t.equal(ins.status, 0, ins.stderr);
      t.same(Buffer.from(ins.stdout), await readBlob(src, img.target.digest), 'skopeo reads the index we pushed');
      const one = skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${reg.host}/test/app:1`]);
      t.equal(one.status, 0, one.stderr);
      const info = JSON.parse(one.stdout) as { Architecture: string; Layers: string[] };
      t.equal(info.Architecture, 'arm64');
      t.same(info.Layers, img.images.get('linux/arm64')!.layers.map((l) => l.digest), 'skopeo sees the arm64 layers');
    }
  });

  t.test('plain HTTP: skopeo pushes a Docker schema2 image, we pull it; 404s name the image', { skip: hasSkopeo ? false : 'skopeo is not installed' }, async (t) => {
    const reg = await started(t);
    const src = new DirBlobStore(tmp(t, 'tsrun-reg-src-'));
    const img = await buildImage(src, { platforms: ['linux/amd64'], layers: 2, layerSize: 50_000 });
    const c = client(t);
    await push(c, src, `${reg.host}/a/src:v1`, img.target);
    const cp = skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--format', 'v2s2', `docker://${reg.host}/a/src:v1`, `docker://${reg.host}/b/copy:v2`]);
    t.equal(cp.status, 0, cp.stderr);
    const dst = new DirBlobStore(tmp(t, 'tsrun-reg-dst-'));
    const r = await pull(c, dst, `${reg.host}/b/copy:v2`);
    t.equal(r.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json', 'skopeo converted to schema2');
    t.not(r.manifest.digest, img.target.digest);
    t.same(r.layers.map((l) => l.digest), img.images.get('linux/amd64')!.layers.map((l) => l.digest), 'same layers');
    const raw = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/b/copy:v2`]);
    t.same(Buffer.from(raw.stdout), await readBlob(dst, r.manifest.digest));

    const missing = await thrown(pull(c, dst, `${reg.host}/b/copy:nope`));
    t.equal(missing.code, 'NotFound');
    t.match(missing.message, `pull ${reg.host}/b/copy:nope: manifest nope: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown`);
    const noRepo = await thrown(pull(c, dst, `${reg.host}/nothing/here`));
    t.match(noRepo.message, /pull 127\.0\.0\.1:\d+\/nothing\/here:latest: manifest latest: 404 Not Found: (NAME|MANIFEST)_UNKNOWN/);
  });

  t.test('plain HTTP: cross-repo mount and chunked upload', async (t) => {
    const reg = await started(t);
    const src = new DirBlobStore(tmp(t, 'tsrun-reg-src-'));
    const img = await buildImage(src, { platforms: ['linux/amd64'], layers: 2, layerSize: 300_000 });
    const c = client(t);
    await push(c, src, `${reg.host}/one/app:1`, img.target, { chunkSize: 64 * 1024 });
    const ev: ProgressEvent[] = [];
    await push(c, src, `${reg.host}/two/app:1`, img.target, { mountFrom: `${reg.host}/one/app`, onProgress: (e) => ev.push(e) });
    t.equal(ev.filter((e) => e.state === 'Mounted' && e.from === 'one/app').length, 3, 'config and layers mounted');
    t.notOk(ev.some((e) => e.state === 'Pushed'));
    for (const repo of ['one/app', 'two/app']) {
      const dst = new DirBlobStore(tmp(t, 'tsrun-reg-dst-'));
      const r = await pull(c, dst, `${reg.host}/${repo}:1`);
      t.equal(r.target.digest, img.target.digest, `${repo} pulls back`);
    }
  });

  t.test('htpasswd basic auth: credentials from config.json; a wrong password is a 401', async (t) => {
    const reg = await started(t, { basic: { user: 'tester', password: 's3cret' } });
    const dir = tmp(t, 'tsrun-reg-auth-');
    const good = path.join(dir, 'good.json');
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(good, JSON.stringify({ auths: { [`http://${reg.host}`]: { auth: Buffer.from('tester:s3cret').toString('base64') } } }));
    fs.writeFileSync(bad, JSON.stringify({ auths: { [reg.host]: { username: 'tester', password: 'wrong' } } }));
    const src = new DirBlobStore(path.join(dir, 'src'));
    const img = await buildImage(src, { platforms: ['linux/amd64'], layers: 2, layerSize: 10_000 });
    await push(client(t, { dockerConfig: good }), src, `${reg.host}/auth/app:1`, img.target);
    const dst = new DirBlobStore(path.join(dir, 'dst'));
    const r = await pull(client(t, { dockerConfig: good }), dst, `${reg.host}/auth/app:1`);
    t.equal(r.target.digest, img.target.digest);

    const e = await thrown(pull(client(t, { dockerConfig: bad }), new DirBlobStore(path.join(dir, 'dst2')), `${reg.host}/auth/app:1`));
    t.equal(e.code, 'PermissionDenied');
    t.match(e.message, /manifest 1: 401 Unauthorized: UNAUTHORIZED: authentication required/);
    const anon = await thrown(pull(client(t), new DirBlobStore(path.join(dir, 'dst3')), `${reg.host}/auth/app:1`));
    t.match(anon.message, /401 Unauthorized.*no credentials for 127\.0\.0\.1:\d+/);
    t.notOk(fs.existsSync(path.join(dir, 'dst2', 'blobs')), 'nothing written on 401');
    const pushErr = await thrown(push(client(t, { dockerConfig: bad }), src, `${reg.host}/auth/other:1`, img.target));
    t.equal(pushErr.code, 'PermissionDenied');
    t.match(pushErr.message, new RegExp(`push ${reg.host}/auth/other:1: (layer|config) sha256:[0-9a-f]{64}: check: 401 Unauthorized`));

    // a blob missing from the store is named before anything is uploaded
    const partial = new DirBlobStore(path.join(dir, 'partial'));
    const lone = await buildImage(partial, { platforms: ['linux/amd64'], layers: 2, layerSize: 1000 });
    const gone = lone.images.get('linux/amd64')!.layers[1]!.digest;
    fs.rmSync(partial.blobPath(gone));
    const missing = await thrown(push(client(t, { dockerConfig: good }), partial, `${reg.host}/auth/partial:1`, lone.target));
    t.equal(missing.code, 'NotFound');
    t.match(missing.message, `push ${reg.host}/auth/partial:1: layer ${gone} of manifest ${lone.target.digest}: not in the content store`);
  });

  t.test('TLS with a CA made here: verified with caFiles; no fallback to HTTP on a bad certificate', async (t) => {
    const dir = tmp(t, 'tsrun-reg-tls-');
    const certs = makeCerts(dir);
    const reg = await started(t, { tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert } });
    const src = new DirBlobStore(path.join(dir, 'src'));
    const img = await buildImage(src, { platforms: ['linux/amd64'], layers: 2, layerSize: 10_000 });
    const c = client(t, { caFiles: [certs.caCert] });
    await push(c, src, `${reg.host}/tls/app:1`, img.target);
    const r = await pull(c, new DirBlobStore(path.join(dir, 'dst')), `${reg.host}/tls/app:1`);
    t.equal(r.target.digest, img.target.digest);
    const localhost = await pull(c, new DirBlobStore(path.join(dir, 'dst-l')), `localhost:${reg.port}/tls/app:1`);
    t.equal(localhost.target.digest, img.target.digest, 'localhost is in the certificate too');

    const e = await thrown(pull(client(t), new DirBlobStore(path.join(dir, 'dst2')), `${reg.host}/tls/app:1`));
    t.equal(e.code, 'Unavailable');
    t.match(e.message, /ping registry 127\.0\.0\.1:\d+ \(https:\/\/127\.0\.0\.1:\d+\/v2\/\): .*(self-signed|unable to verify|certificate)/i);
    // an explicit CA list replaces node's defaults; NODE_EXTRA_CA_CERTS must still count
    const otherDir = path.join(dir, 'other');
    fs.mkdirSync(otherDir);
    const other = makeCerts(otherDir);
    const wrongCa = await thrown(pull(client(t, { caFiles: [other.caCert] }), new DirBlobStore(path.join(dir, 'dst4')), `${reg.host}/tls/app:1`));
    t.equal(wrongCa.code, 'Unavailable', 'an unrelated CA does not verify');
    const saved = process.env['NODE_EXTRA_CA_CERTS'];
    process.env['NODE_EXTRA_CA_CERTS'] = certs.caCert;
    try {
      const extra = await pull(client(t, { caFiles: [other.caCert] }), new DirBlobStore(path.join(dir, 'dst5')), `${reg.host}/tls/app:1`);
      t.equal(extra.target.digest, img.target.digest, 'NODE_EXTRA_CA_CERTS kept beside caFiles');
    } finally {
      if (saved === undefined) delete process.env['NODE_EXTRA_CA_CERTS'];
      else process.env['NODE_EXTRA_CA_CERTS'] = saved;
    }
    const insecure = await pull(client(t, { insecureRegistries: [reg.host] }), new DirBlobStore(path.join(dir, 'dst3')), `${reg.host}/tls/app:1`);
    t.equal(insecure.target.digest, img.target.digest, 'an insecure registry skips verification');
    if (hasSkopeo) {
      const certDir = path.join(dir, 'skopeo-certs');
      fs.mkdirSync(certDir);
      fs.copyFileSync(certs.caCert, path.join(certDir, 'ca.crt'));
      const ins = skopeo(['inspect', '--raw', `--cert-dir=${certDir}`, `docker://${reg.host}/tls/app:1`]);
      t.equal(ins.status, 0, ins.stderr);
    }
  });

  t.test('bearer tokens: a real registry trusting a token server here', async (t) => {
    const dir = tmp(t, 'tsrun-reg-token-');
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path.join(dir, 'token.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cert = spawnSync('openssl', ['req', '-x509', '-key', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=tsrun test token issuer'], { cwd: dir, encoding: 'utf8' });
    t.equal(cert.status, 0, cert.stderr);
    const der = crypto.X509Certificate ? new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'token.crt'))).raw.toString('base64') : '';
    const requests: { scope: string[]; user: string }[] = [];
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const auth = req.headers.authorization ?? '';
      const [user, pass] = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : ['', ''];
      requests.push({ scope: url.searchParams.getAll('scope'), user: user ?? '' });
      if (user !== 'tok' || pass !== 'pw') {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      const access = url.searchParams.getAll('scope').map((s) => {
        const [type, name, actions] = s.split(':') as [string, string, string];
        return { type, name, actions: actions.split(',') };
      });
      const now = Math.floor(Date.now() / 1000);
      const head = b64({ typ: 'JWT', alg: 'RS256', x5c: [der] });
      const claims = b64({ iss: 'tsrun-test-issuer', sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access });
      const sig = crypto.sign('sha256', Buffer.from(`${head}.${claims}`), privateKey).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: `${head}.${claims}.${sig}`, expires_in: 300 }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => new Promise<void>((r) => server.close(() => r())));
    const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    const reg = await started(t, { token: { realm, service: 'tsrun-test-registry', issuer: 'tsrun-test-issuer', rootCertBundle: path.join(dir, 'token.crt') } });

    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ auths: { [reg.host]: { username: 'tok', password: 'pw' } } }));
    const src = new DirBlobStore(path.join(dir, 'src'));
    const img = await buildImage(src, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 20_000 });
    await push(client(t, { dockerConfig: config }), src, `${reg.host}/tok/app:1`, img.target);
    t.same(requests.map((r) => r.scope), [['repository:tok/app:pull,push']], 'one token for the whole push (cached per scope)');
    requests.length = 0;
    const r = await pull(client(t, { dockerConfig: config }), new DirBlobStore(path.join(dir, 'dst')), `${reg.host}/tok/app:1`);
    t.equal(r.target.digest, img.target.digest);
    t.same(requests.map((q) => q.scope), [['repository:tok/app:pull']], 'one pull-scoped token');
    t.ok(requests.every((q) => q.user === 'tok'), 'credentials sent to the token server');

    fs.writeFileSync(config, JSON.stringify({ auths: { [reg.host]: { username: 'tok', password: 'nope' } } }));
    const e = await thrown(pull(client(t, { dockerConfig: config }), new DirBlobStore(path.join(dir, 'dst2')), `${reg.host}/tok/app:1`));
    t.equal(e.code, 'PermissionDenied');
    t.match(e.message, /get token from http:\/\/127\.0\.0\.1:\d+\/token: 401 Unauthorized: UNAUTHORIZED: bad credentials \(wrong user name or password\?\)/);
  });
}
