/** Pure parts of the registry client: references, platforms, challenges, config.json, manifests. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { authKeyHost, defaultDockerConfigPath, loadCredentials, parseChallenges } from '../../../../supervisor/registry/auth';
import { MediaType, parseManifest } from '../../../../supervisor/registry/manifest';
import { hostPlatform, parsePlatform, selectManifest } from '../../../../supervisor/registry/platform';
import { familiarReference, formatReference, parseReference } from '../../../../supervisor/registry/reference';
import { isInsecureHost, isLoopbackHost } from '../../../../supervisor/registry/transport';
import { thrown } from '../../../helpers/thrown';

const HEX = 'a'.repeat(64);

t.test('references normalise as docker does', async (t) => {
  const cases: [string, string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest', '127.0.0.1:5000/app:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
    ['Registry.Example.com/app', 'Registry.Example.com/app:latest', 'Registry.Example.com/app:latest'],
    [`app@sha256:${HEX}`, `docker.io/library/app@sha256:${HEX}`, `app@sha256:${HEX}`],
    [`h:1/app:v1@sha256:${HEX}`, `h:1/app:v1@sha256:${HEX}`, `h:1/app:v1@sha256:${HEX}`],
    ['localhost:5000', 'docker.io/library/localhost:5000', 'localhost:5000'],
    ['a.b/c_d/e__f/g-h---i.j', 'a.b/c_d/e__f/g-h---i.j:latest', 'a.b/c_d/e__f/g-h---i.j:latest'],
  ];
  for (const [input, full, familiar] of cases) {
    const r = parseReference(input);
    t.equal(formatReference(r), full, input);
    t.equal(familiarReference(r), familiar, `${input} familiar`);
  }
  const pinned = parseReference(`h:1/app:v1@sha256:${HEX}`);
  t.equal(pinned.tag, 'v1');
  t.equal(pinned.digest, `sha256:${HEX}`);
});

t.test('bad references name themselves and the problem', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty reference/],
    [HEX, /cannot specify 64-byte hexadecimal strings/],
    ['Busybox', /repository name "library\/Busybox" must be lowercase/],
    ['docker.io/Foo/bar', /repository name "Foo\/bar" must be lowercase/],
    ['app:bad tag', /invalid tag "bad tag"/],
    [`app:${'t'.repeat(129)}`, /invalid tag/],
    ['app@sha256:abc', /invalid digest "sha256:abc"/],
    [`app@sha256:${'A'.repeat(64)}`, /want 64 lower-case hex digits/],
    [`app@md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    ['a//b', /invalid repository name/],
    ['-bad.host/x', /invalid registry domain "-bad.host"/],
    ['app_/x', /invalid repository name/],
    [`h.io/${'a'.repeat(260)}`, /must not be more than 255 characters/],
  ];
  for (const [input, want] of cases) {
    const e = thrown(() => parseReference(input));
    t.equal(e.code, 'InvalidArgument', input);
    t.match(e.message, `parse image reference "${input}": invalid reference format: `);
    t.match(e.message, want, input);
  }
});

t.test('platforms: parsing, normalising, picking from an index', async (t) => {
  t.same(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  t.same(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  t.same(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  t.same(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.same(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.same(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  t.match(thrown(() => parsePlatform('linux/a/b/c')).message, 'parse platform "linux/a/b/c": want os/arch[/variant]');
  t.equal(hostPlatform().os, 'linux');

  const d = (arch: string, variant?: string, extra: object = {}): { mediaType: string; digest: string; size: number; platform: { os: string; architecture: string; variant?: string } } => ({
    mediaType: MediaType.ociManifest,
    digest: `sha256:${(arch + (variant ?? '')).padEnd(64, '0').replace(/[^a-f0-9]/g, '0')}`,
    size: 1,
    platform: { os: 'linux', architecture: arch, ...(variant !== undefined ? { variant } : {}) },
    ...extra,
  });
  const list = [d('amd64'), d('arm', 'v6'), d('arm', 'v7'), d('arm64', 'v8'), d('s390x')];
  t.equal(selectManifest(list, parsePlatform('linux/amd64')), list[0]);
  t.equal(selectManifest(list, parsePlatform('linux/arm/v7')), list[2], 'exact variant');
  t.equal(selectManifest([list[1]!, list[0]!], parsePlatform('linux/arm/v7')), list[1], 'v7 runs v6');
  t.equal(selectManifest([list[2]!], parsePlatform('linux/arm/v6')), undefined, 'v6 does not run v7');
  t.equal(selectManifest(list, parsePlatform('linux/arm64')), list[3], 'arm64 equals arm64/v8');
  t.equal(selectManifest(list, parsePlatform('linux/ppc64le')), undefined);
  const attest = { ...d('amd64'), annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } };
  t.equal(selectManifest([attest], parsePlatform('linux/amd64')), undefined, 'attestations are skipped');
});

t.test('WWW-Authenticate challenges', async (t) => {
  t.same(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  t.same(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  t.same(parseChallenges('Basic realm="a\\"b", Bearer realm=x'), [
    { scheme: 'basic', params: { realm: 'a"b' } },
    { scheme: 'bearer', params: { realm: 'x' } },
  ]);
  t.same(parseChallenges(''), []);
});

t.test('credentials from a docker config.json', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-reg-cfg-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw:with:colons').toString('base64') },
        'http://127.0.0.1:5000': { username: 'u', password: 'p' },
        'reg.example.com': { auth: '' },
        'bad.example.com': { auth: Buffer.from('nocolon').toString('base64') },
      },
    }),
  );
  t.same(loadCredentials('docker.io', file), { username: 'hub', password: 'pw:with:colons' });
  t.same(loadCredentials('127.0.0.1:5000', file), { username: 'u', password: 'p' });
  t.equal(loadCredentials('127.0.0.1:5001', file), undefined);
  t.equal(loadCredentials('reg.example.com', file), undefined, 'empty auth is no credentials');
  t.match(thrown(() => loadCredentials('bad.example.com', file)).message, `read credentials for "bad.example.com" in ${file}: "auth" is not base64 of "user:password"`);
  t.equal(loadCredentials('docker.io', path.join(dir, 'missing.json')), undefined);
  fs.writeFileSync(path.join(dir, 'broken.json'), '{');
  t.match(thrown(() => loadCredentials('docker.io', path.join(dir, 'broken.json'))).message, /read docker config .*broken\.json: not JSON/);
  t.equal(authKeyHost('https://registry-1.docker.io/v2/'), 'docker.io');
  t.equal(defaultDockerConfigPath({ DOCKER_CONFIG: '/d' }), '/d/config.json');
  t.equal(defaultDockerConfigPath({ HOME: '/h' }), '/h/.docker/config.json');
});

t.test('loopback and insecure hosts', async (t) => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '::1']) t.ok(isLoopbackHost(h), h);
  for (const h of ['example.com', '10.0.0.1:5000', '128.0.0.1', '[::2]:5000', 'localhost.example.com']) t.notOk(isLoopbackHost(h), h);
  t.ok(isInsecureHost('reg:5000', ['reg:5000']));
  t.ok(isInsecureHost('reg:5000', ['reg']), 'an entry without a port matches any port');
  t.ok(isInsecureHost('reg:5000', ['http://reg:5000/']));
  t.notOk(isInsecureHost('reg:5000', ['reg:5001']));
  t.ok(isInsecureHost('10.1.2.3:5000', ['10.0.0.0/8']), 'CIDR');
  t.notOk(isInsecureHost('11.1.2.3:5000', ['10.0.0.0/8']));
  t.notOk(isInsecureHost('reg:5000', ['10.0.0.0/8']), 'a name never matches a CIDR');
  t.ok(isInsecureHost('[fd00::5]:5000', ['fd00::/8']));
});

t.test('manifests: kinds, schema1, bad descriptors', async (t) => {
  const cfg = { mediaType: MediaType.ociConfig, digest: `sha256:${HEX}`, size: 2 };
  const m = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: cfg, layers: [] })), '', 'here');
  t.equal(m.kind, 'manifest', 'OCI manifest without mediaType');
  const i = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), MediaType.dockerManifestList, 'here');
  t.equal(i.mediaType, MediaType.dockerManifestList);
  t.match(thrown(() => parseManifest(Buffer.from('{"schemaVersion":1}'), '', 'm')).message, 'm: Docker Image manifest version 2, schema 1 is not supported');
  t.match(thrown(() => parseManifest(Buffer.from('nope'), '', 'm')).message, 'm: manifest is not JSON');
  t.match(thrown(() => parseManifest(Buffer.from(JSON.stringify({ config: { ...cfg, size: -1 }, layers: [] })), '', 'm')).message, 'm: config.size: want a non-negative integer, got -1');
  t.match(thrown(() => parseManifest(Buffer.from(JSON.stringify({ config: cfg, layers: [{ ...cfg, digest: 'sha256:zz' }] })), '', 'm')).message, 'm: layers[0].digest: invalid digest "sha256:zz"');
  t.match(thrown(() => parseManifest(Buffer.from(JSON.stringify({ mediaType: 'text/plain' })), '', 'm')).message, 'm: unsupported manifest media type "text/plain"');
});
