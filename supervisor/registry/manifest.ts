/*
 * Manifests, indexes and descriptors: the OCI image-spec and Docker schema2 shapes the client
 * reads and writes. Parsing checks only what the client relies on (media type, descriptors'
 * digest and size), and names the manifest in every error.
 */
import { TsrunError } from '../../spec/errors';
import { validateDigest } from './reference';

/** Media types the client knows. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The Accept header of a manifest request: every kind the client can pull. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest].join(', ');

/** An OCI platform. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
}

/** An image manifest (OCI or Docker schema2). */
export interface ImageManifest {
  readonly kind: 'manifest';
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  readonly kind: 'index';
  readonly mediaType: string;
  readonly manifests: readonly Descriptor[];
}

/** True for the index media types (OCI index, Docker manifest list). */
export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** True for the single-image manifest media types. */
export function isManifestType(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseDescriptor(v: unknown, where: string, what: string): Descriptor {
  if (!isRecord(v)) throw new TsrunError('InvalidArgument', `${where}: ${what}: not an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw new TsrunError('InvalidArgument', `${where}: ${what}.mediaType: missing`);
  if (typeof digest !== 'string') throw new TsrunError('InvalidArgument', `${where}: ${what}.digest: missing`);
  validateDigest(digest, `${where}: ${what}.digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new TsrunError('InvalidArgument', `${where}: ${what}.size: want a non-negative integer, got ${JSON.stringify(size)}`);
  }
  const d: { -readonly [K in keyof Descriptor]: Descriptor[K] } = { mediaType, digest, size };
  if (Array.isArray(v['urls'])) d.urls = v['urls'].filter((u): u is string => typeof u === 'string');
  if (isRecord(v['annotations'])) d.annotations = v['annotations'] as Record<string, string>;
  const p = v['platform'];
  if (isRecord(p) && typeof p['os'] === 'string' && typeof p['architecture'] === 'string') d.platform = p as unknown as Platform;
  return d;
}

/**
 * Parse a manifest or index body. `mediaType` is the Content-Type the registry sent (or the
 * descriptor's); the body's own mediaType field wins when present, as containerd does.
 */
export function parseManifest(body: Buffer, mediaType: string, where: string): ImageManifest | ImageIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new TsrunError('InvalidArgument', `${where}: manifest is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isRecord(doc)) throw new TsrunError('InvalidArgument', `${where}: manifest is not a JSON object`);
  const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : '';
  let type = declared !== '' ? declared : mediaType.split(';')[0]!.trim();
  if (doc['schemaVersion'] === 1 || type === MediaType.dockerSchema1 || type === MediaType.dockerSchema1Signed) {
    throw new TsrunError(
      'FailedPrecondition',
      `${where}: Docker Image manifest version 2, schema 1 is not supported (deprecated since docker 20.10); push the image again with a current client`,
    );
  }
  if (!isIndexType(type) && !isManifestType(type)) {
    // OCI allows omitting mediaType; tell the two shapes apart by their fields.
    if (Array.isArray(doc['manifests'])) type = MediaType.ociIndex;
    else if (isRecord(doc['config'])) type = MediaType.ociManifest;
    else throw new TsrunError('InvalidArgument', `${where}: unsupported manifest media type "${type}"`);
  }
  if (isIndexType(type)) {
    const list = doc['manifests'];
    if (!Array.isArray(list)) throw new TsrunError('InvalidArgument', `${where}: index has no "manifests" array`);
    return { kind: 'index', mediaType: type, manifests: list.map((m, i) => parseDescriptor(m, where, `manifests[${i}]`)) };
  }
  const layers = doc['layers'];
  if (!Array.isArray(layers)) throw new TsrunError('InvalidArgument', `${where}: manifest has no "layers" array`);
  return {
    kind: 'manifest',
    mediaType: type,
    config: parseDescriptor(doc['config'], where, 'config'),
    layers: layers.map((l, i) => parseDescriptor(l, where, `layers[${i}]`)),
  };
}
