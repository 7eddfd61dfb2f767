/**
 * Test images built on the spot (no downloads): a static busybox root filesystem split into three
 * layers, written as an OCI image layout (and an OCI archive of it), with digests computed here.
 *
 *   layer 1  bin/busybox + applet symlinks, etc/passwd, etc/group, doomed/file, keep/file
 *   layer 2  data/a and data/b (hard links of one file), a whiteout of doomed/, tmp/
 *   layer 3  etc/motd, an opaque keep/ with keep/new only
 *
 * The config asks for Cmd ["/bin/sh"], Env FOO=bar, WorkingDir /data and VOLUME /data.
 * `dockerArchive` converts the layout with skopeo (installed from Debian).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { populateRootfs } from './bundle';

/** What `buildOciLayout` made. */
export interface TestImage {
  /** the OCI layout directory */
  layout: string;
  /** the image's name (io.containerd.image.name annotation) */
  name: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  diffIds: string[];
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function run(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message || r.status}`);
}

function writeBlob(layout: string, data: Buffer): string {
  const d = sha(data);
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', d.slice(7)), data);
  return d;
}

/** Build the three-layer busybox image as an OCI layout under `dir` (made here). */
export function buildOciLayout(dir: string, name: string): TestImage {
  const layout = path.join(dir, 'layout');
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const src = [1, 2, 3].map((i) => path.join(dir, `layer${i}`));
  for (const s of src) fs.mkdirSync(s, { recursive: true });
  populateRootfs(src[0]!);
  fs.writeFileSync(path.join(src[0]!, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(src[0]!, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  fs.mkdirSync(path.join(src[0]!, 'doomed'));
  fs.writeFileSync(path.join(src[0]!, 'doomed', 'file'), 'to be whited out\n');
  fs.mkdirSync(path.join(src[0]!, 'keep'));
  fs.writeFileSync(path.join(src[0]!, 'keep', 'old'), 'hidden by the opaque dir\n');
  fs.mkdirSync(path.join(src[1]!, 'data'));
  fs.writeFileSync(path.join(src[1]!, 'data', 'a'), 'linked\n');
  fs.linkSync(path.join(src[1]!, 'data', 'a'), path.join(src[1]!, 'data', 'b'));
  fs.writeFileSync(path.join(src[1]!, '.wh.doomed'), '');
  fs.mkdirSync(path.join(src[1]!, 'tmp'), { mode: 0o1777 });
  fs.mkdirSync(path.join(src[2]!, 'etc'));
  fs.writeFileSync(path.join(src[2]!, 'etc', 'motd'), 'layer three\n');
  fs.mkdirSync(path.join(src[2]!, 'keep'));
  fs.writeFileSync(path.join(src[2]!, 'keep', '.wh..wh..opq'), '');
  fs.writeFileSync(path.join(src[2]!, 'keep', 'new'), 'only this\n');

  const layers: Array<{ digest: string; size: number; diffId: string }> = [];
  for (const [i, s] of src.entries()) {
    const tarPath = path.join(dir, `layer${i + 1}.tar`);
    run('tar', ['--sort=name', '--mtime=@1700000000', '--owner=0', '--group=0', '--numeric-owner', '-C', s, '-cf', tarPath, '.']);
    const tar = fs.readFileSync(tarPath);
    const gz = zlib.gzipSync(tar);
    layers.push({ digest: writeBlob(layout, gz), size: gz.length, diffId: sha(tar) });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin', 'FOO=bar'], WorkingDir: '/data', Volumes: { '/data': {} }, Labels: { 'org.test': 'yes' } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i + 1}` })),
    }),
  );
  const configDigest = writeBlob(layout, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
  const manifestDigest = writeBlob(layout, manifest);
  const tag = name.slice(name.lastIndexOf(':') + 1);
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag },
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    }),
  );
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { layout, name, manifestDigest, configDigest, layerDigests: layers.map((l) => l.digest), diffIds: layers.map((l) => l.diffId) };
}

/** The layout as an OCI archive (a tar of the layout directory). */
export function ociArchive(img: TestImage, out: string): string {
  run('tar', ['-C', img.layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  return out;
}

/** The layout as a docker-archive (docker save's format) named `name`, through skopeo. */
export function dockerArchive(img: TestImage, out: string, name: string): string {
  const tag = img.name.slice(img.name.lastIndexOf(':') + 1);
  run('skopeo', ['copy', '--quiet', `oci:${img.layout}:${tag}`, `docker-archive:${out}:${name}`]);
  return out;
}
