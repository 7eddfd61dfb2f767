/**
 * Images through tsrund with the real ctr (containerd 1.6.20's client), no downloads: a
 * three-layer busybox image built here (whiteout, opaque dir, hard link, VOLUME) is imported as an
 * OCI archive and as a docker-archive (skopeo), unpacked into overlayfs snapshots, run with
 * `ctr run --rm IMAGE`, tagged, exported, checked, listed, removed; the content, snapshot and
 * ingest directories are then empty. Bad archives fail naming what is wrong and leave nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { buildOciLayout, dockerArchive, ociArchive, type TestImage } from '../helpers/images';
import { which } from '../helpers/host';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { tsctlPath } from '../helpers/tsctl';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing() ?? (which('skopeo') === undefined ? 'skopeo not installed (apt-get install skopeo)' : undefined);
const show = (r: CtrResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
const sha = (s: string | Buffer): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

/** containerd's chain IDs of a list of diff IDs. */
function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha(`${out[out.length - 1]!} ${d}`));
  return out;
}

let d: Tsrund;
let img: TestImage;
let work: string;
const OCI = 'docker.io/library/tsimg:oci';
const DOCKER = 'docker.io/library/tsimg:docker';

function dirEntries(...p: string[]): string[] {
  const dir = path.join(d.root, ...p);
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** Wait (bounded) until the collector has run after ctr dropped its lease, then report what is on disk. */
async function settled(want: { blobs: number; snapshots: number }): Promise<{ blobs: string[]; snapshots: string[]; ingests: string[] }> {
  const state = () => ({ blobs: dirEntries('content', 'blobs', 'sha256'), snapshots: dirEntries('snapshots', 'overlayfs', 'snapshots'), ingests: dirEntries('content', 'ingest') });
  await waitFor(() => {
    const s = state();
    return s.blobs.length === want.blobs && s.snapshots.length === want.snapshots && s.ingests.length === 0;
  }, 5000);
  return state();
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    d = await startTsrund(t);
    work = path.join(d.sandbox, 'images');
    fs.mkdirSync(work);
    img = buildOciLayout(work, OCI);
    ociArchive(img, path.join(work, 'oci.tar'));
    dockerArchive(img, path.join(work, 'docker.tar'), DOCKER);
  });

  t.test('bad archives fail naming the problem and leave no blob, ingest or snapshot', async (t) => {
    // truncated inside the first layer
    const whole = fs.readFileSync(path.join(work, 'oci.tar'));
    fs.writeFileSync(path.join(work, 'trunc.tar'), whole.subarray(0, 600_000));
    let r = d.ctr(['images', 'import', path.join(work, 'trunc.tar')]);
    t.not(r.status, 0, 'truncated archive refused');
    t.match(r.stderr, /blobs\/sha256\/[0-9a-f]{64}.*unexpected EOF|unexpected EOF/, show(r));

    // a manifest naming a blob the archive lacks
    const bad = path.join(work, 'missing');
    fs.cpSync(img.layout, bad, { recursive: true });
    fs.rmSync(path.join(bad, 'blobs', 'sha256', img.layerDigests[1]!.slice(7)));
    const missingTar = path.join(work, 'missing.tar');
    fs.writeFileSync(missingTar, '');
    execFileSync('tar', ['-C', bad, '-cf', missingTar, 'oci-layout', 'index.json', 'blobs']);
    r = d.ctr(['images', 'import', missingTar]);
    t.not(r.status, 0, 'missing layer refused');
    t.match(r.stderr, `content digest ${img.layerDigests[1]!}: not found`, `the error names the missing layer: ${show(r)}`);
    // as with containerd, the image record was made before the unpack failed: remove it (and what it holds)
    t.equal(d.ctr(['images', 'rm', '--sync', OCI]).status, 0);
    t.same(d.ctr(['snapshots', 'ls']).stdout.trim().split('\n').length, 1, 'no snapshot left by the failed unpack');

    // a layer whose bytes do not match its name: ctr's importer stores blobs under the digest of
    // their bytes (as containerd does), so the manifest's layer is missing at unpack, by name
    const corrupt = path.join(work, 'corrupt');
    fs.cpSync(img.layout, corrupt, { recursive: true });
    const l2 = path.join(corrupt, 'blobs', 'sha256', img.layerDigests[2]!.slice(7));
    const bytes = fs.readFileSync(l2);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    fs.writeFileSync(l2, bytes);
    const corruptTar = path.join(work, 'corrupt.tar');
    execFileSync('tar', ['-C', corrupt, '-cf', corruptTar, 'oci-layout', 'index.json', 'blobs']);
    r = d.ctr(['images', 'import', corruptTar]);
    t.not(r.status, 0, 'corrupt layer refused');
    t.match(r.stderr, `content digest ${img.layerDigests[2]!}: not found`, show(r));
    t.equal(d.ctr(['images', 'rm', '--sync', OCI]).status, 0);
    // a writer that names the digest it expects gets the commit refused
    const wrong = sha('something else');
    r = d.ctr(['content', 'ingest', '--expected-size', '5', '--expected-digest', wrong, 'wrong-ref'], { input: 'hello' });
    t.not(r.status, 0);
    t.match(r.stderr, `unexpected commit digest ${sha('hello')}, expected ${wrong}: failed precondition`, show(r));
    t.equal(d.ctr(['content', 'ls', '-q']).stdout, '', 'no blob committed');
    // its ingest is held by no lease: the collection that the removal below runs takes it

    // an unknown layer media type: imported, but unpack refuses it by name
    const odd = path.join(work, 'odd');
    fs.cpSync(img.layout, odd, { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(odd, 'blobs', 'sha256', img.manifestDigest.slice(7)), 'utf8')) as { layers: Array<{ mediaType: string }> };
    manifest.layers[2]!.mediaType = 'application/vnd.example.layer.v1.tar+lz4';
    const mbytes = Buffer.from(JSON.stringify(manifest));
    fs.writeFileSync(path.join(odd, 'blobs', 'sha256', sha(mbytes).slice(7)), mbytes);
    const index = JSON.parse(fs.readFileSync(path.join(odd, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number; annotations: Record<string, string> }> };
    index.manifests[0]!.digest = sha(mbytes);
    index.manifests[0]!.size = mbytes.length;
    index.manifests[0]!.annotations['io.containerd.image.name'] = 'docker.io/library/tsimg:odd';
    fs.writeFileSync(path.join(odd, 'index.json'), JSON.stringify(index));
    const oddTar = path.join(work, 'odd.tar');
    execFileSync('tar', ['-C', odd, '-cf', oddTar, 'oci-layout', 'index.json', 'blobs']);
    r = d.ctr(['images', 'import', oddTar]);
    t.not(r.status, 0, 'unknown media type refused at unpack');
    t.match(r.stderr, /application\/vnd\.example\.layer\.v1\.tar\+lz4/, show(r));
    d.ctr(['images', 'rm', '--sync', 'docker.io/library/tsimg:odd']);

    const left = await settled({ blobs: 0, snapshots: 0 });
    t.same(left, { blobs: [], snapshots: [], ingests: [] }, 'nothing left behind');
  });

  t.test('import an OCI archive: image, content with gc labels, unpacked chain', async (t) => {
    let r = d.ctr(['images', 'import', path.join(work, 'oci.tar')]);
    t.equal(r.status, 0, show(r));
    t.match(r.stdout, `unpacking ${OCI} (${img.manifestDigest})...done`);
    r = d.ctr(['images', 'ls']);
    t.match(r.stdout, new RegExp(`${OCI}\\s+application/vnd.oci.image.manifest.v1\\+json\\s+${img.manifestDigest}\\s+.*linux/amd64`), show(r));
    r = d.ctr(['images', 'check']);
    t.match(r.stdout, new RegExp(`${OCI}.*complete \\(4/4\\).*true`), show(r));
    const chain = chainIds(img.diffIds);
    r = d.ctr(['snapshots', 'ls']);
    for (const [i, c] of chain.entries()) t.match(r.stdout, new RegExp(`${c}\\s+${i === 0 ? '' : chain[i - 1]!}\\s*Committed`), `chain ${i} committed`);
    r = d.ctr(['content', 'ls']);
    t.match(r.stdout, `containerd.io/gc.ref.snapshot.overlayfs=${chain[2]}`, 'the config references the top of the chain');
    t.match(r.stdout, `containerd.io/gc.ref.content.config=${img.configDigest}`);
    t.match(r.stdout, `containerd.io/uncompressed=${img.diffIds[0]}`);
    r = d.ctr(['content', 'get', img.configDigest]);
    t.equal(sha(r.stdout), img.configDigest, 'content get returns the config bytes');
    r = d.ctr(['snapshots', 'info', chain[1]!]);
    t.match(JSON.parse(r.stdout), { Kind: 'Committed', Name: chain[1], Parent: chain[0] });
    r = d.ctr(['snapshots', 'tree']);
    t.match(r.stdout, new RegExp(`${chain[0]}\\n\\s+\\\\_ ${chain[1]}\\n\\s+\\\\_ ${chain[2]}`), show(r));
    r = d.ctr(['snapshots', 'rm', chain[0]!]);
    t.not(r.status, 0);
    t.match(r.stderr, 'cannot remove snapshot with child', show(r));
    // config, manifest, three layers; the archive's index.json blob is referenced by nothing and collected
    const s = await settled({ blobs: 5, snapshots: 3 });
    t.equal(s.blobs.length, 5, 'five blobs kept');
    t.equal(s.snapshots.length, 3, 'three snapshot directories');
  });

  t.test('ctr run --rm IMAGE: the image config becomes the spec, layers stack as the image says', async (t) => {
    let r = d.ctr(['run', '--rm', '--fifo-dir', d.fifoDir, OCI, d.newId('img'), '/bin/echo', 'hi']);
    t.equal(r.status, 0, show(r));
    t.equal(r.stdout, 'hi\n');
    const script = 'ls /doomed 2>&1; ls /keep; stat -c "%h" /data/a /data/b; cat /etc/motd; pwd; echo "$FOO"; ls /bin/busybox';
    r = d.ctr(['run', '--rm', '--fifo-dir', d.fifoDir, OCI, d.newId('img'), '/bin/sh', '-c', script]);
    t.equal(r.status, 0, show(r));
    t.same(r.stdout.split('\n'), ['ls: /doomed: No such file or directory', 'new', '2', '2', 'layer three', '/data', 'bar', '/bin/busybox', '']);
    t.same(fs.existsSync(path.join(d.state, 'rootfs')) ? fs.readdirSync(path.join(d.state, 'rootfs', d.ns)) : [], [], 'rootfs mount points removed');
    r = d.ctr(['snapshots', 'ls']);
    t.equal(r.stdout.trim().split('\n').length, 4, 'the containers\' snapshots were removed with them');
  });

  t.test('snapshots prepare/label/mounts/diff: an overlay upper dir becomes a gzip layer with a whiteout', async (t) => {
    const top = chainIds(img.diffIds)[2]!;
    let r = d.ctr(['snapshots', 'prepare', 'work1', top]);
    t.equal(r.status, 0, show(r));
    // no lease holds it: a gc.root label keeps the collector away while the test works
    r = d.ctr(['snapshots', 'label', 'work1', 'containerd.io/gc.root=test']);
    t.equal(r.status, 0, show(r));
    const mnt = path.join(work, 'mnt');
    fs.mkdirSync(mnt);
    r = d.ctr(['snapshots', 'mounts', mnt, 'work1']);
    t.match(r.stdout, /^mount -t overlay overlay .*-o .*upperdir=.*lowerdir=/, show(r));
    execFileSync('sh', ['-c', r.stdout]);
    try {
      fs.writeFileSync(path.join(mnt, 'newfile'), 'hello\n');
      fs.rmSync(path.join(mnt, 'etc', 'motd'));
    } finally {
      execFileSync('umount', [mnt]);
    }
    const out = execFileSync(process.env['CTR'] ?? '/usr/bin/ctr', ['--address', d.socket, '--namespace', d.ns, 'snapshots', 'diff', 'work1']);
    t.equal(out[0], 0x1f, 'gzip');
    const layer = path.join(work, 'diff.tgz');
    fs.writeFileSync(layer, out);
    const entries = execFileSync('tar', ['-tzf', layer], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    t.same(entries.sort(), ['etc/', 'etc/.wh.motd', 'newfile'].sort());
    r = d.ctr(['snapshots', 'rm', 'work1']);
    t.equal(r.status, 0, show(r));
  });

  t.test('tsctl images / tag / rmi over the same store', async (t) => {
    const tsctl = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(tsctlPath, ['-H', `unix://${d.socket}`, '-n', d.ns, ...args], { encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    let r = tsctl('tag', 'tsimg:oci', 'mine:1');
    t.equal(r.status, 0, JSON.stringify(r));
    r = tsctl('images');
    const id = img.configDigest.slice(7, 19);
    t.match(r.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/, JSON.stringify(r));
    t.match(r.stdout, new RegExp(`\\nmine\\s+1\\s+${id}\\s+\\d+ years? ago\\s+2\\.\\d+MB\\n`), 'docker short name, config digest as id, unpacked size');
    t.match(r.stdout, new RegExp(`\\ntsimg\\s+oci\\s+${id}\\s`));
    t.equal(tsctl('images', '-q').stdout, `${id}\n`, 'one id for both names');
    r = tsctl('rmi', 'mine:1');
    t.same([r.status, r.stdout], [0, 'Untagged: mine:1\n'], 'untag only: another name keeps the content');
    r = tsctl('rmi', 'nothere');
    t.same([r.status, r.stderr.trim()], [1, 'Error response from daemon: No such image: nothere']);
    t.notMatch(tsctl('images').stdout, 'mine');
  });

  t.test('docker-archive import, tag, export, rm --sync empties the store', async (t) => {
    let r = d.ctr(['images', 'import', path.join(work, 'docker.tar')]);
    t.equal(r.status, 0, show(r));
    r = d.ctr(['run', '--rm', '--fifo-dir', d.fifoDir, DOCKER, d.newId('img'), '/bin/cat', '/etc/motd']);
    t.equal(r.stdout, 'layer three\n', show(r));
    r = d.ctr(['images', 'tag', OCI, 'docker.io/library/tsimg:new']);
    t.equal(r.status, 0, show(r));
    const out = path.join(work, 'export.tar');
    r = d.ctr(['images', 'export', out, 'docker.io/library/tsimg:new']);
    t.equal(r.status, 0, show(r));
    const list = execFileSync('tar', ['-tf', out], { encoding: 'utf8' });
    for (const b of [img.manifestDigest, img.configDigest, ...img.layerDigests]) t.match(list, `blobs/sha256/${b.slice(7)}`);
    r = d.ctr(['images', 'ls', '-q']);
    t.same(r.stdout.trim().split('\n').sort(), [DOCKER, 'docker.io/library/tsimg:new', OCI].sort());
    r = d.ctr(['images', 'rm', '--sync', OCI, 'docker.io/library/tsimg:new', DOCKER]);
    t.equal(r.status, 0, show(r));
    t.equal(d.ctr(['content', 'ls', '-q']).stdout, '');
    t.equal(d.ctr(['snapshots', 'ls']).stdout.trim().split('\n').length, 1, 'only the header');
    t.same(await settled({ blobs: 0, snapshots: 0 }), { blobs: [], snapshots: [], ingests: [] });
  });

  t.test('kill -9 mid-ingest leaves no blob; the ingest resumes after restart', async (t) => {
    const data = Buffer.alloc(4 << 20);
    // printable bytes: ctr reads them from stdin, which the helper feeds as a string
    for (let i = 0; i < data.length; i++) data[i] = 0x41 + ((i * 7) % 26);
    const digest = sha(data);
    const args = ['content', 'ingest', '--expected-size', String(data.length), '--expected-digest', digest, 'crash-ref'];
    const child = d.ctrSpawn(args);
    // ctr dies with tsrund below: its stdin then breaks, which is expected here
    child.stdin!.on('error', () => undefined);
    child.stdin!.write(data.subarray(0, 1 << 20));
    t.ok(await waitFor(() => d.ctr(['content', 'active']).stdout.includes('crash-ref'), 5000), 'ingest under way');
    await d.kill9();
    child.kill('SIGKILL');
    await d.start();
    t.notOk(fs.existsSync(path.join(d.root, 'content', 'blobs', 'sha256', digest.slice(7))), 'no blob under the digest');
    t.match(d.ctr(['content', 'active']).stdout, /crash-ref/, 'the ingest is still there');
    // a file, not a pipe: ctr resumes at the ingest's offset by seeking its input (what reached
    // tsrund before the kill depends on flow control; containerd gives ctr the same offset)
    const file = path.join(d.sandbox, 'ingest.bin');
    fs.writeFileSync(file, data);
    const r = d.ctr(args, { stdinFile: file });
    t.equal(r.status, 0, show(r));
    t.equal(sha(fs.readFileSync(path.join(d.root, 'content', 'blobs', 'sha256', digest.slice(7)))), digest, 'resumed and verified');
    t.equal(d.ctr(['content', 'rm', digest]).status, 0);
  });
}
