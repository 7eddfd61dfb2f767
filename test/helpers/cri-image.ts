/**
 * Container images built locally for the CRI tests and bench, so nothing is pulled: a root
 * filesystem directory tarred into one uncompressed layer, an image config, a manifest and an
 * index, written as an OCI image layout and packed into the tar `ctr images import` reads.
 *
 *   pause image   /pause = Debian's static catatonit, entrypoint `/pause -P` (pause mode)
 *   test image    static busybox with its applets, plus any host binaries asked for and the
 *                 shared libraries `ldd` names for them (util-linux ipcmk/ipcs: Debian's
 *                 busybox has no SysV IPC applets)
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxRootfs } from './engines';

/** Where Debian installs catatonit (the package's own path, then podman's link to it). */
export const CATATONIT_PATHS = ['/usr/bin/catatonit', '/usr/libexec/podman/catatonit'];

/** The installed catatonit, or undefined. */
export function catatonitPath(): string | undefined {
  return CATATONIT_PATHS.find((p) => fs.existsSync(p));
}

/** What goes into an image besides its root filesystem. */
export interface ImageSpec {
  /** full reference, e.g. "tsrun.test/pause:1" */
  readonly name: string;
  readonly entrypoint?: readonly string[];
  readonly cmd?: readonly string[];
  readonly env?: readonly string[];
}

function sha256(data: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

function run(file: string, args: readonly string[]): string {
  const r = spawnSync(file, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${r.status}: ${(r.stderr ?? '').trim() || r.error?.message}`);
  return r.stdout;
}

const OCI_ARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The OCI architecture name of this host. */
export function ociArch(): string {
  const a = OCI_ARCH[process.arch];
  if (a === undefined) throw new Error(`image config: no OCI architecture name for node's ${process.arch}`);
  return a;
}

/**
 * Pack `rootfs` as a one-layer image named `spec.name` into `<dir>/<basename>.tar` (an OCI
 * image layout in a tar); returns the tar's path. The layout directory is removed afterwards.
 */
export function packImage(rootfs: string, spec: ImageSpec, dir: string, basename: string): string {
  const layout = path.join(dir, `${basename}-layout`);
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const layerTmp = path.join(layout, 'layer.tar');
  run('tar', ['--numeric-owner', '-C', rootfs, '-cf', layerTmp, '.']);
  const layer = fs.readFileSync(layerTmp);
  fs.rmSync(layerTmp);
  const put = (data: Buffer): { digest: string; size: number } => {
    const digest = sha256(data);
    fs.writeFileSync(path.join(blobs, digest.slice('sha256:'.length)), data);
    return { digest, size: data.length };
  };
  const layerDesc = put(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: ociArch(),
      os: 'linux',
      config: {
        Env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ...(spec.entrypoint === undefined ? {} : { Entrypoint: spec.entrypoint }),
        ...(spec.cmd === undefined ? {} : { Cmd: spec.cmd }),
      },
      rootfs: { type: 'layers', diff_ids: [layerDesc.digest] },
    }),
  );
  const configDesc = put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configDesc },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layerDesc }],
    }),
  );
  const manifestDesc = put(manifest);
  const tag = spec.name.slice(spec.name.lastIndexOf(':') + 1);
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifestDesc,
          platform: { architecture: ociArch(), os: 'linux' },
          // containerd names the imported image after the first; OCI tools after the second
          annotations: { 'io.containerd.image.name': spec.name, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  const out = path.join(dir, `${basename}.tar`);
  run('tar', ['--numeric-owner', '-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  fs.rmSync(layout, { recursive: true, force: true });
  return out;
}

/** Copy host binaries into `rootfs` at the same paths, with the shared libraries ldd lists for them. */
export function copyWithLibraries(rootfs: string, binaries: readonly string[]): void {
  const files = new Set<string>();
  for (const bin of binaries) {
    files.add(bin);
    for (const m of run('ldd', [bin]).matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) files.add(m[1]!);
  }
  for (const f of files) {
    const dest = path.join(rootfs, f);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(f, dest); // follows links: the image gets the file itself at the path asked for
    fs.chmodSync(dest, fs.statSync(f).mode & 0o7777);
  }
}

/** The pause image's tar under `dir` (catatonit as /pause); throws when catatonit is missing. */
export function buildPauseImage(dir: string, name: string): string {
  const catatonit = catatonitPath();
  if (catatonit === undefined) throw new Error(`pause image: catatonit not found at ${CATATONIT_PATHS.join(' or ')}`);
  const rootfs = path.join(dir, 'pause-rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  for (const d of ['dev', 'proc', 'sys', 'etc']) fs.mkdirSync(path.join(rootfs, d));
  fs.copyFileSync(catatonit, path.join(rootfs, 'pause'));
  fs.chmodSync(path.join(rootfs, 'pause'), 0o755);
  const tar = packImage(rootfs, { name, entrypoint: ['/pause', '-P'] }, dir, 'pause');
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tar;
}

/** The busybox test image's tar under `dir`, with `extraBinaries` (and their libraries) added. */
export function buildBusyboxImage(dir: string, name: string, extraBinaries: readonly string[] = []): string {
  const base = path.join(dir, 'busybox-image');
  fs.mkdirSync(base, { recursive: true });
  const rootfs = busyboxRootfs(base);
  copyWithLibraries(rootfs, extraBinaries);
  const tar = packImage(rootfs, { name, cmd: ['/bin/sh'] }, dir, 'busybox');
  fs.rmSync(base, { recursive: true, force: true });
  return tar;
}
