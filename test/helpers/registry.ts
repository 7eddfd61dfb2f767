/**
 * A real registry for tests: Debian's docker-registry (distribution 2.x) on 127.0.0.1 with a free
 * port, a temp storage dir and a temp config, optionally with htpasswd basic auth, TLS from a CA
 * made here, or token auth trusting a test certificate. Teardown kills only the pid started here
 * and removes the temp dir.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { digestOf, MediaType, writeBlob, type BlobStore, type Descriptor } from '../../supervisor/registry';
import { sleep } from './wait';

/** Path of the registry binary (`$DOCKER_REGISTRY`, default /usr/bin/docker-registry). */
export const registryBin: string = process.env['DOCKER_REGISTRY'] ?? '/usr/bin/docker-registry';

/** Why registry tests can't run here, or undefined when they can. */
export function registryMissing(): string | undefined {
  try {
    fs.accessSync(registryBin, fs.constants.X_OK);
  } catch {
    return `needs ${registryBin} (apt install docker-registry)`;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick, released just before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

/** A bcrypt htpasswd line for `user`, from htpasswd(1) or Python's crypt (libxcrypt's bcrypt). */
export function htpasswdLine(user: string, password: string): string {
  const h = spawnSync('htpasswd', ['-nbB', user, password], { encoding: 'utf8' });
  if (h.status === 0) return h.stdout.trim();
  const py = spawnSync('python3', ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password], { encoding: 'utf8' });
  if (py.status === 0 && py.stdout.startsWith('$2')) return `${user}:${py.stdout.trim()}`;
  throw new Error('make a bcrypt htpasswd: needs htpasswd (apt install apache2-utils) or python3 with crypt');
}

/** A test CA and a server certificate it signed for 127.0.0.1 and localhost. */
export interface TestCerts {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

function openssl(args: readonly string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** Make a CA and a server certificate in `dir` with the openssl CLI. */
export function makeCerts(dir: string): TestCerts {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tsrun test CA'], dir);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf'], dir);
  return { caCert: path.join(dir, 'ca.crt'), serverCert: path.join(dir, 'server.crt'), serverKey: path.join(dir, 'server.key') };
}

/** How to start the registry. */
export interface RegistryOptions {
  /** basic auth with this user and password (htpasswd, bcrypt) */
  readonly basic?: { readonly user: string; readonly password: string };
  /** serve HTTPS with this certificate */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string };
  /** token auth: the realm URL and a certificate whose key signs the tokens */
  readonly token?: { readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCertBundle: string };
}

/** A running registry. */
export interface RegistryServer {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  readonly port: number;
  /** the temp dir holding storage, config and log */
  readonly dir: string;
  readonly pid: number;
  stop(): Promise<void>;
}

function yaml(port: number, dir: string, o: RegistryOptions): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  if (o.tls !== undefined) lines.push('  tls:', `    certificate: ${o.tls.cert}`, `    key: ${o.tls.key}`);
  if (o.basic !== undefined) {
    fs.writeFileSync(path.join(dir, 'htpasswd'), `${htpasswdLine(o.basic.user, o.basic.password)}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: tsrun-test', `    path: ${path.join(dir, 'htpasswd')}`);
  } else if (o.token !== undefined) {
    lines.push('auth:', '  token:', `    realm: ${o.token.realm}`, `    service: ${o.token.service}`, `    issuer: ${o.token.issuer}`, `    rootcertbundle: ${o.token.rootCertBundle}`);
  }
  return `${lines.join('\n')}\n`;
}

function probe(port: number, o: RegistryOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port, path: '/v2/', timeout: 2000 };
    const req =
      o.tls !== undefined
        ? https.get({ ...opts, ...(o.tls.ca !== undefined ? { ca: fs.readFileSync(o.tls.ca) } : { rejectUnauthorized: false }) }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
        : http.get(opts, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Start docker-registry and wait (bounded) until /v2/ answers. */
export async function startRegistry(o: RegistryOptions = {}): Promise<RegistryServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-registry-'));
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, yaml(port, dir, o));
    const log = fs.openSync(path.join(dir, 'registry.log'), 'w');
    child = spawn(registryBin, ['serve', config], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const c = child;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`docker-registry exited ${c.exitCode}: ${fs.readFileSync(path.join(dir, 'registry.log'), 'utf8')}`);
      const status = await probe(port, o).catch(() => 0);
      if (status === 200 || status === 401) break;
      if (Date.now() > deadline) throw new Error(`docker-registry on 127.0.0.1:${port} not ready after 20 s: ${fs.readFileSync(path.join(dir, 'registry.log'), 'utf8')}`);
      await sleep(50);
    }
    return {
      host: `127.0.0.1:${port}`,
      port,
      dir,
      pid: c.pid ?? 0,
      stop: async () => {
        await killAndWait(c);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child !== undefined) await killAndWait(child);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** One file of a test layer. */
function tarEntry(name: string, data: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

/** A gzipped tar holding one file of `size` random bytes. */
export function randomLayer(name: string, size: number): Buffer {
  return gzipSync(Buffer.concat([tarEntry(name, randomBytes(size)), Buffer.alloc(1024)]));
}

/** What buildImage made. */
export interface TestImage {
  /** the index (with platforms) or the manifest */
  readonly target: Descriptor;
  /** per platform "os/arch": manifest, config and layers */
  readonly images: ReadonlyMap<string, { readonly manifest: Descriptor; readonly config: Descriptor; readonly layers: readonly Descriptor[] }>;
}

async function put(store: BlobStore, data: Buffer, mediaType: string): Promise<Descriptor> {
  const d: Descriptor = { mediaType, digest: digestOf(data), size: data.length };
  await writeBlob(store, `test-${d.digest}`, data, d);
  return d;
}

/**
 * Build a small multi-layer image into `store`: for each platform a config and `layers` random
 * gzipped layers (sizes from `layerSize`), and with more than one platform an index over them.
 * `docker` picks Docker schema2 media types instead of OCI ones.
 */
export async function buildImage(
  store: BlobStore,
  o: { readonly platforms: readonly string[]; readonly layers: number; readonly layerSize: number; readonly docker?: boolean; readonly index?: boolean },
): Promise<TestImage> {
  const images = new Map<string, { manifest: Descriptor; config: Descriptor; layers: Descriptor[] }>();
  const entries: Descriptor[] = [];
  for (const p of o.platforms) {
    const [os, architecture, variant] = p.split('/') as [string, string, string | undefined];
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < o.layers; i++) {
      const gz = randomLayer(`file-${p.replace(/\//g, '-')}-${i}`, o.layerSize + i * 1000);
      diffIds.push(digestOf(gunzipSync(gz)));
      layers.push(await put(store, gz, o.docker === true ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip));
    }
    const config = Buffer.from(
      JSON.stringify({ architecture, os, ...(variant !== undefined ? { variant } : {}), config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }),
    );
    const configDesc = await put(store, config, o.docker === true ? MediaType.dockerConfig : MediaType.ociConfig);
    const manifestType = o.docker === true ? MediaType.dockerManifest : MediaType.ociManifest;
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config: configDesc, layers }));
    const mdesc = await put(store, manifest, manifestType);
    images.set(p, { manifest: mdesc, config: configDesc, layers });
    entries.push({ ...mdesc, platform: { os, architecture, ...(variant !== undefined ? { variant } : {}) } });
  }
  if (o.platforms.length === 1 && o.index !== true) return { target: images.get(o.platforms[0]!)!.manifest, images };
  const indexType = o.docker === true ? MediaType.dockerManifestList : MediaType.ociIndex;
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: indexType, manifests: entries }));
  return { target: await put(store, index, indexType), images };
}
