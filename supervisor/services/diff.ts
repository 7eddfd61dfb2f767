/*
 * containerd.services.diff.v1.Diff: Apply extracts a layer blob from the content store into a
 * snapshot's mounts (the unpack step of `ctr images import`/`ctr run`); Diff writes the changes
 * between two mounts as a gzip layer into the content store.
 *
 * Apply, as containerd's overlay-aware applier: one overlay mount → extract straight into its
 * upperdir, OCI whiteouts becoming overlay whiteouts; one bind mount → extract into its source,
 * whiteouts applied as deletions. The answer is the uncompressed layer's digest (the diff ID),
 * which the client compares with the image config's rootfs.diff_ids.
 */
import type { Readable } from 'node:stream';
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';
import type { ContentStore } from '../content/store';
import { layerReadStream } from '../diff/index';
import type { ServiceImpl } from '../grpc/server';
import type { Mount } from '../snapshots/drivers';
import { descriptorFromWire } from './images';

/** The layer code's apply entry point (supervisor/diff/). */
export type ApplyLayer = (input: Readable, root: string, opts: { mediaType: string; whiteouts: 'overlay' | 'apply' }) => Promise<{ diffId: string; size: number }>;

/** Make a layer (gzip) from the changes between `lower` and `upper` mounts into the content store. */
export type MakeDiff = (ns: string, lower: readonly Mount[], upper: readonly Mount[], mediaType: string, ref: string, labels: Record<string, string>, lease: string) => Promise<{ mediaType: string; digest: string; size: number }>;

/** Layer media types Apply takes (docker's and OCI's, distributable or not). */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** Where Apply extracts for `mounts`, and how whiteouts are handled there. */
export function applyTarget(mounts: readonly Mount[]): { dir: string; whiteouts: 'overlay' | 'apply' } {
  if (mounts.length !== 1) throw new TsrunError('InvalidArgument', `diff apply: expected one mount, got ${mounts.length}: invalid argument`);
  const m = mounts[0]!;
  if (m.type === 'overlay') {
    const upper = m.options.find((o) => o.startsWith('upperdir='));
    if (upper === undefined) throw new TsrunError('InvalidArgument', 'diff apply: overlay mount without upperdir (a read-only view): invalid argument');
    return { dir: upper.slice('upperdir='.length), whiteouts: 'overlay' };
  }
  if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) {
    if (m.options.includes('ro')) throw new TsrunError('InvalidArgument', `diff apply: ${m.source} is mounted read-only: invalid argument`);
    return { dir: m.source, whiteouts: 'apply' };
  }
  throw new TsrunError('InvalidArgument', `diff apply: mount type ${JSON.stringify(m.type)} is not supported: invalid argument`);
}

/** containerd.services.diff.v1.Diff over the content store and the layer code. */
export function diffService(cs: ContentStore, applyLayer: ApplyLayer, makeDiff: MakeDiff | undefined): ServiceImpl {
  return {
    service: 'containerd.services.diff.v1.Diff',
    unary: {
      Apply: async (req: { diff: Parameters<typeof descriptorFromWire>[0]; mounts: Mount[] }, ctx) => {
        const ns = ctx.namespace();
        const desc = descriptorFromWire(req.diff);
        if (!LAYER_MEDIA_TYPES.has(desc.mediaType)) {
          throw new TsrunError('InvalidArgument', `apply layer ${desc.digest}: unsupported media type ${JSON.stringify(desc.mediaType)}: not implemented`);
        }
        const info = cs.info(ns, desc.digest);
        const { dir, whiteouts } = applyTarget(req.mounts);
        if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new TsrunError('NotFound', `apply layer ${desc.digest}: target ${dir} is not a directory: not found`);
        const input = layerReadStream(cs.blobPath(desc.digest));
        let r: { diffId: string; size: number };
        try {
          r = await applyLayer(input, dir, { mediaType: desc.mediaType, whiteouts });
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          throw new TsrunError(e instanceof TsrunError ? e.code : 'Internal', `apply layer ${desc.digest} (${info.size} bytes, ${desc.mediaType}): ${why}`, { cause: e });
        } finally {
          input.destroy();
        }
        return { applied: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: r.diffId, size: r.size } };
      },
      ...(makeDiff === undefined
        ? {}
        : {
            Diff: async (req: { left: Mount[]; right: Mount[]; mediaType: string; ref: string; labels: Record<string, string> }, ctx) => ({
              diff: await makeDiff(ctx.namespace(), req.left, req.right, req.mediaType, req.ref, { ...req.labels }, ctx.lease),
            }),
          }),
    },
  };
}
