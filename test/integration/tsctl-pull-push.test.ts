/**
 * tsctl pull and push through tsrund's Transfer service against real docker-registry servers on
 * 127.0.0.1 (test/helpers/registry.ts), no downloads: the three-layer busybox image built here is
 * imported with ctr, pushed, removed, pulled back (same digests, unpacked into overlayfs
 * snapshots that ctr run uses), pulled again (up to date, layers already exist), pushed to and
 * pulled from a registry with basic auth using a config.json the test writes, and a missing tag
 * fails naming it and leaves no blob, ingest or snapshot behind.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { buildOciLayout, dockerArchive, ociArchive, type TestImage } from '../helpers/images';
import { which } from '../helpers/host';
import { registryMissing, startRegistry, type RegistryServer } from '../helpers/registry';
import { waitFor } from '../helpers/wait';
import { ptyDrive, startTsctl, tsctlMissing, tsctlPath, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';

const why = tsctlMissing() ?? registryMissing();
const show = (r: { status: number | null; stdout: string; stderr: string }): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;

let e: TsctlEnv;
let img: TestImage;
let work: string;
let reg: RegistryServer;
const LOCAL = 'docker.io/library/tsimg:oci';

function ok(args: readonly string[], env?: Record<string, string>): TsctlResult {
  const r = e.tsctl(args, { timeoutMs: 120_000, ...(env !== undefined ? { env } : {}) });
  if (r.status !== 0) throw new Error(`tsctl ${args.join(' ')}: ${show(r)}`);
  return r;
}

function contentState(): { blobs: string[]; ingests: string[]; snapshots: string[] } {
  const ls = (...p: string[]): string[] => {
    const dir = path.join(e.d.root, ...p);
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };
  return { blobs: ls('content', 'blobs', 'sha256'), ingests: ls('content', 'ingest'), snapshots: ls('snapshots', 'overlayfs', 'snapshots') };
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
    work = path.join(e.d.sandbox, 'pull');
    fs.mkdirSync(work);
    img = buildOciLayout(path.join(work, 'layout'), LOCAL);
    ociArchive(img, path.join(work, 'oci.tar'));
    reg = await startRegistry();
    t.teardown(() => reg.stop());
    const r = e.d.ctr(['images', 'import', path.join(work, 'oci.tar')], { ns: e.ns });
    if (r.status !== 0) throw new Error(`ctr images import: ${show(r)}`);
  });

  t.test('push, rmi, pull back, pull again', async (t) => {
    const name = `${reg.host}/tsimg:1`;
    ok(['tag', LOCAL, name]);
    const p = ok(['push', name]);
    t.match(p.stdout, `The push refers to repository [${reg.host}/tsimg]`);
    t.match(p.stdout, `1: digest: ${img.manifestDigest} size: `, show(p));
    for (const l of img.layerDigests) t.match(p.stdout, new RegExp(`${l.slice(7, 19)}: (Pushed|Layer already exists)`), `layer ${l} pushed`);

    ok(['rmi', name]);
    ok(['rmi', 'tsimg:oci']);
    t.same(contentState(), { blobs: [], ingests: [], snapshots: [] }, 'the removal collected everything');

    const r = ok(['pull', name]);
    t.match(r.stdout, /^1: Pulling from tsimg\n/, show(r));
    for (const l of img.layerDigests) {
      t.match(r.stdout, `${l.slice(7, 19)}: Pulling fs layer`);
      t.match(r.stdout, `${l.slice(7, 19)}: Download complete`);
      t.match(r.stdout, `${l.slice(7, 19)}: Pull complete`);
    }
    t.match(r.stdout, `Digest: ${img.manifestDigest}\nStatus: Downloaded newer image for ${name}\n${name}\n`);
    const ls = ok(['images', '--format', 'json']);
    t.match(ls.stdout, `"Repository":"${reg.host}/tsimg","Tag":"1"`);
    t.match(ls.stdout, `"ID":"${img.configDigest.slice(7, 19)}"`, 'image id = config digest');
    t.equal(contentState().snapshots.length, 3, 'three committed layer snapshots');
    t.same(contentState().ingests, []);

    // the unpacked image runs (ctr run uses the snapshots the pull made)
    const run = e.d.ctr(['run', '--rm', name, `pull${process.pid}`, 'cat', '/etc/motd'], { ns: e.ns });
    t.equal(run.status, 0, show(run));
    t.ok(run.stdout.length > 0, 'the top layer\'s /etc/motd is there');

    const again = ok(['pull', name]);
    for (const l of img.layerDigests) t.match(again.stdout, `${l.slice(7, 19)}: Already exists`);
    t.notMatch(again.stdout, /Pulling fs layer|Download complete/);
    t.match(again.stdout, `Digest: ${img.manifestDigest}\nStatus: Image is up to date for ${name}\n`);

    const byDigest = ok(['pull', `${reg.host}/tsimg@${img.manifestDigest}`]);
    t.match(byDigest.stdout, `${img.manifestDigest}: Pulling from tsimg`);
    t.match(byDigest.stdout, `Digest: ${img.manifestDigest}`);
  });

  t.test('a missing tag fails naming it and leaves nothing', async (t) => {
    const before = contentState();
    const r = e.tsctl(['pull', `${reg.host}/tsimg:nope`]);
    t.not(r.status, 0);
    t.match(r.stderr, /nope/, show(r));
    t.match(r.stderr, /not found|unknown/i, show(r));
    t.same(contentState(), before, 'no blob, ingest or snapshot added');
    const missingRepo = e.tsctl(['pull', `${reg.host}/nothere:1`]);
    t.not(missingRepo.status, 0);
    t.match(missingRepo.stderr, /nothere/, show(missingRepo));
  });

  t.test('basic auth from the config.json in DOCKER_CONFIG', async (t) => {
    const secure = await startRegistry({ basic: { user: 'tester', password: 's3cret' } });
    t.teardown(() => secure.stop());
    const name = `${secure.host}/private/tsimg:2`;
    ok(['tag', `${reg.host}/tsimg:1`, name]);
    const denied = e.tsctl(['push', name], { env: { DOCKER_CONFIG: path.join(work, 'nowhere') } });
    t.not(denied.status, 0, 'no credentials: refused');
    t.match(denied.stderr, /401|unauthorized|authentication/i, show(denied));

    const cfgDir = path.join(work, 'docker-config');
    fs.mkdirSync(cfgDir);
    fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from('tester:s3cret').toString('base64') } } }));
    const env = { DOCKER_CONFIG: cfgDir };
    const p = ok(['push', name], env);
    t.match(p.stdout, `2: digest: ${img.manifestDigest}`);
    ok(['rmi', name]);
    const noAuth = e.tsctl(['pull', name], { env: { DOCKER_CONFIG: path.join(work, 'nowhere') } });
    t.not(noAuth.status, 0);
    t.match(noAuth.stderr, /401|unauthorized|authentication/i, show(noAuth));
    const r = ok(['pull', name], env);
    t.match(r.stdout, `Digest: ${img.manifestDigest}\nStatus: Downloaded newer image for ${name}`);
  });

  t.test('save makes a docker-archive that skopeo and podman load', { skip: which('skopeo') === undefined ? 'skopeo not installed' : false }, async (t) => {
    const name = `${reg.host}/tsimg:1`;
    const out = path.join(work, 'saved.tar');
    ok(['save', '-o', out, name]);
    t.notOk(fs.existsSync(`${out}.partial`), 'no partial file left');
    const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    t.match(list.stdout, 'manifest.json');
    t.match(list.stdout, 'repositories');
    t.match(list.stdout, `${img.configDigest.slice(7)}.json`);
    for (const d of img.diffIds) t.match(list.stdout, `${d.slice(7)}/layer.tar`);
    const manifest = JSON.parse(spawnSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }).stdout) as Array<{ RepoTags: string[] }>;
    t.same(manifest[0]!.RepoTags, [name]);
    const insp = spawnSync('skopeo', ['inspect', '--config', `docker-archive:${out}`], { encoding: 'utf8' });
    t.equal(insp.status, 0, insp.stderr);
    t.same((JSON.parse(insp.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids, img.diffIds, 'skopeo reads the same diff IDs');
    const oci = path.join(work, 'saved-oci');
    const copy = spawnSync('skopeo', ['copy', `docker-archive:${out}`, `oci:${oci}:x`], { encoding: 'utf8' });
    t.equal(copy.status, 0, `skopeo copy verifies every layer: ${copy.stderr}`);
    if (which('podman') !== undefined) {
      const store = path.join(work, 'podman');
      const pod = (args: string[]) => spawnSync('podman', ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', 'vfs', ...args], { encoding: 'utf8', timeout: 120_000 });
      const load = pod(['load', '-i', out]);
      t.equal(load.status, 0, `podman load: ${load.stderr}`);
      t.match(load.stdout, /Loaded image/);
      const imgs = pod(['images', '--format', '{{.Repository}}:{{.Tag}}']);
      t.match(imgs.stdout, name);
      pod(['rmi', '-a', '-f']);
      fs.rmSync(store, { recursive: true, force: true });
    }
    // by image id (a prefix of it), as docker: the same content, no tag in the archive
    const byId = path.join(work, 'saved-by-id.tar');
    ok(['save', '-o', byId, img.configDigest.slice(7, 19)]);
    const idManifest = JSON.parse(spawnSync('tar', ['-xOf', byId, 'manifest.json'], { encoding: 'utf8' }).stdout) as Array<{ Config: string; RepoTags: string[] }>;
    t.same(idManifest, [{ Config: `${img.configDigest.slice(7)}.json`, RepoTags: [], Layers: img.diffIds.map((d) => `${d.slice(7)}/layer.tar`) }], 'saved by id: no tags');
    const idInsp = spawnSync('skopeo', ['inspect', '--config', `docker-archive:${byId}`], { encoding: 'utf8' });
    t.equal(idInsp.status, 0, idInsp.stderr);
    const missing = e.tsctl(['save', '-o', path.join(work, 'none.tar'), 'nosuch:1']);
    t.not(missing.status, 0);
    t.match(missing.stderr, /nosuch/);
    t.notOk(fs.existsSync(path.join(work, 'none.tar')) || fs.existsSync(path.join(work, 'none.tar.partial')), 'nothing written for a missing image');
  });

  t.test('load: docker-archive (skopeo, as docker save makes), OCI archive, our own save; bad archives leave nothing', { skip: which('skopeo') === undefined ? 'skopeo not installed' : false }, async (t) => {
    const dock = path.join(work, 'docker.tar');
    dockerArchive(img, dock, 'docker.io/library/tsimg:docker');
    let r = ok(['load', '-i', dock]);
    t.equal(r.stdout, 'Loaded image: tsimg:docker\n', show(r));
    let ls = ok(['images', '--format', 'json', 'tsimg:docker']);
    t.match(ls.stdout, `"ID":"${img.configDigest.slice(7, 19)}"`);
    const run = e.d.ctr(['run', '--rm', 'docker.io/library/tsimg:docker', `load${process.pid}`, 'cat', '/etc/motd'], { ns: e.ns });
    t.equal(run.status, 0, show(run));
    t.equal(run.stdout, 'layer three\n');

    r = ok(['load', '-i', path.join(work, 'oci.tar')]);
    t.equal(r.stdout, 'Loaded image: tsimg:oci\n', show(r));
    ls = ok(['images', '--format', 'json', 'tsimg:oci']);
    t.match(ls.stdout, `"ID":"${img.configDigest.slice(7, 19)}"`);

    // round trip: save, remove every name, load
    const saved = path.join(work, 'roundtrip.tar');
    ok(['save', '-o', saved, 'tsimg:docker']);
    const names = e.d.ctr(['images', 'ls', '-q'], { ns: e.ns }).stdout.trim().split('\n');
    const rm = e.d.ctr(['images', 'rm', '--sync', ...names], { ns: e.ns });
    t.equal(rm.status, 0, show(rm));
    await waitFor(() => contentState().blobs.length === 0 && contentState().snapshots.length === 0, 10_000);
    t.same(contentState(), { blobs: [], ingests: [], snapshots: [] }, 'empty store before the round trip');
    r = ok(['load', '-i', saved]);
    t.equal(r.stdout, 'Loaded image: tsimg:docker\n', show(r));
    t.equal(contentState().snapshots.length, 3, 'unpacked again');

    // a truncated archive: an error, and no blob, ingest or snapshot stays
    ok(['rmi', 'tsimg:docker']);
    await waitFor(() => contentState().blobs.length === 0, 10_000);
    const whole = fs.readFileSync(dock);
    const cut = path.join(work, 'cut.tar');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const bad = e.tsctl(['load', '-i', cut]);
    t.not(bad.status, 0);
    t.match(bad.stderr, /truncated|unexpected end|EOF/i, show(bad));
    await waitFor(() => contentState().blobs.length === 0 && contentState().ingests.length === 0, 10_000);
    t.same(contentState(), { blobs: [], ingests: [], snapshots: [] }, 'nothing left by the failed load');
    const junk = path.join(work, 'junk.tar');
    fs.writeFileSync(junk, Buffer.alloc(2048));
    const none = e.tsctl(['load', '-i', junk]);
    t.not(none.status, 0);
    t.match(none.stderr, /neither manifest.json/, show(none));
  });

  t.test('image inspect, history, image prune', async (t) => {
    ok(['load', '-i', path.join(work, 'oci.tar')]);
    const insp = ok(['image', 'inspect', 'tsimg:oci']);
    const [j] = JSON.parse(insp.stdout) as Array<{ Id: string; RepoTags: string[]; RootFS: { Layers: string[] }; Config: { Cmd?: string[] }; Size: number }>;
    t.equal(j!.Id, img.configDigest);
    t.same(j!.RepoTags, ['tsimg:oci']);
    t.same(j!.RootFS.Layers, img.diffIds);
    t.same(j!.Config.Cmd, ['/bin/sh']);
    t.ok(j!.Size > 0);
    const miss = e.tsctl(['image', 'inspect', 'nosuch:1']);
    t.equal(miss.status, 1);
    t.match(miss.stderr, 'No such image: nosuch:1');

    const h = ok(['history', 'tsimg:oci']);
    const lines = h.stdout.trim().split('\n');
    t.match(lines[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT/);
    t.equal(lines.length, 4, 'a row per history entry');
    t.match(lines[1]!, new RegExp(`^${img.configDigest.slice(7, 19)}\\s.*layer 3`));
    t.match(lines[3]!, /^<missing>\s.*layer 1/);

    // an image recorded only by digest is dangling; prune removes it and keeps the tagged one
    const byDigest = `${reg.host}/tsimg@${img.manifestDigest}`;
    ok(['pull', byDigest]);
    const pr = ok(['image', 'prune', '-f']);
    t.match(pr.stdout, `untagged: ${reg.host}/tsimg@${img.manifestDigest}`, show(pr));
    t.match(pr.stdout, /Total reclaimed space: /);
    t.notMatch(ok(['images']).stdout, /<none>/);
    t.match(ok(['images']).stdout, /tsimg\s+oci/);
    const pa = ok(['image', 'prune', '-a', '-f']);
    t.match(pa.stdout, 'untagged: tsimg:oci', show(pa));
    t.match(pa.stdout, `deleted: ${img.manifestDigest}`);
    await waitFor(() => contentState().blobs.length === 0, 10_000);
    t.same(contentState(), { blobs: [], ingests: [], snapshots: [] }, 'prune -a emptied the store');
  });

  t.test('on a terminal, pull redraws one line per layer in place, as docker does', async (t) => {
    // every image is removed before and after, so the layers are downloaded again and the next test finds none
    const name = `${reg.host}/tsimg:1`;
    const removeAll = (): void => {
      // one id may stand for several records (tags, a digest reference): rmi each, then check
      for (const id of new Set(ok(['images', '-q']).stdout.split('\n').filter((l) => l !== ''))) e.tsctl(['rmi', '-f', id]);
      t.equal(ok(['images', '-q']).stdout, '', 'no image left');
    };
    removeAll();
    t.same(contentState().blobs, [], 'no blob left to find');
    const r = spawnSync('python3', [ptyDrive, JSON.stringify({ rows: 40, cols: 160, timeout: 120 }), tsctlPath, 'pull', name], { encoding: 'utf8', env: e.env, timeout: 130_000 });
    t.match(r.stdout, /\nEXIT 0\n?$/, `pull on a pty: ${JSON.stringify(r.stdout)}`);
    const top = img.layerDigests[img.layerDigests.length - 1]!.slice(7, 19);
    // each layer's line is drawn once when it appears, then rewritten: cursor up, clear, text
    t.equal(r.stdout.split(`${top}: Pulling fs layer`).length - 1, 1, 'the layer line appears once');
    t.match(r.stdout, new RegExp(`\\x1b\\[\\d+A\\r\\x1b\\[2K${top}: Pull complete`), 'and is redrawn in place when done');
    t.notMatch(r.stdout, /Verifying Checksum\r?\n/, 'states are not printed one per line');
    t.match(r.stdout, `Status: Downloaded newer image for ${name}`);
    removeAll();
  });

  t.test('a corrupt blob in the registry fails the pull naming it and leaves nothing', async (t) => {
    const hex = img.layerDigests[1]!.slice(7);
    const find = spawnSync('find', [reg.dir, '-path', `*/sha256/${hex.slice(0, 2)}/${hex}/data`], { encoding: 'utf8' });
    const data = find.stdout.trim().split('\n')[0] ?? '';
    t.ok(data !== '' && fs.existsSync(data), `the registry stores the layer: ${find.stdout}`);
    const bytes = fs.readFileSync(data);
    bytes[bytes.length - 30] = bytes[bytes.length - 30]! ^ 0xff;
    fs.writeFileSync(data, bytes);
    const before = contentState();
    const r = e.tsctl(['pull', `${reg.host}/tsimg:1`]);
    t.not(r.status, 0);
    t.match(r.stderr, img.layerDigests[1]!, show(r));
    t.match(r.stderr, /failed verification|digest/, show(r));
    await waitFor(() => contentState().blobs.length === before.blobs.length && contentState().ingests.length === 0, 10_000);
    t.same(contentState(), before, 'no blob, ingest or snapshot left by the failed pull');
    t.notMatch(ok(['images']).stdout, /tsimg/);
  });
}
