/*
 * Diff.Diff: the changes between two snapshots' mounts as a layer in the content store (what
 * `ctr snapshots diff` and commit-like flows ask for). The layer code (supervisor/diff/) walks the
 * changes — an overlay's upper dir against its lowers, or two trees compared — and produces an
 * uncompressed tar; here it is hashed (the diff ID, kept as the containerd.io/uncompressed label),
 * gzipped unless an uncompressed media type was asked for, and committed through an ingest like
 * any other blob (a failure aborts the ingest: no partial blob).
 */
import { createHash, randomBytes } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { TsrunError } from '../../spec/errors';
import type { ContentStore } from '../content/store';
import type { DiffSource } from '../diff/index';
import type { MakeDiff } from '../services/diff';
import type { Mount } from '../snapshots/drivers';


const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const TAR = 'application/vnd.oci.image.layer.v1.tar';

const opt = (m: Mount, name: string): string | undefined => m.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
const isBind = (m: Mount): boolean => m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');

/** The diff source for `lower` → `upper` mounts as snapshotters return them. */
export function diffSource(lower: readonly Mount[], upper: readonly Mount[]): DiffSource {
  const u = upper[0];
  if (upper.length !== 1 || u === undefined) throw new TsrunError('InvalidArgument', `diff: expected one upper mount, got ${upper.length}: invalid argument`);
  if (u.type === 'overlay') {
    const up = opt(u, 'upperdir');
    if (up === undefined) throw new TsrunError('InvalidArgument', 'diff: the upper overlay mount has no upperdir: invalid argument');
    return { kind: 'overlay', upper: up, lowers: (opt(u, 'lowerdir') ?? '').split(':').filter((s) => s !== '') };
  }
  if (!isBind(u)) throw new TsrunError('InvalidArgument', `diff: upper mount type ${JSON.stringify(u.type)} is not supported: invalid argument`);
  const l = lower[0];
  if (lower.length === 0 || l === undefined) return { kind: 'tree', lower: null, upper: u.source };
  if (lower.length !== 1 || !isBind(l)) {
    throw new TsrunError('InvalidArgument', `diff: a bind upper needs one bind lower mount (got ${lower.map((m) => m.type).join(',')}): invalid argument`);
  }
  return { kind: 'tree', lower: l.source, upper: u.source };
}

/** Diff.Diff over `writeDiff` and the content store. */
export function makeDiffer(cs: ContentStore, writeDiff: (s: DiffSource) => Readable): MakeDiff {
  return async (ns, lower, upper, mediaType, ref, labels, lease) => {
    const mt = mediaType === '' ? GZIP : mediaType;
    if (mt !== GZIP && mt !== TAR) throw new TsrunError('InvalidArgument', `diff: media type ${JSON.stringify(mt)} is not supported (${GZIP} or ${TAR}): not implemented`);
    const source = diffSource(lower, upper);
    const ingestRef = ref !== '' ? ref : `diff-${randomBytes(8).toString('hex')}`;
    const w = cs.writer(ns, ingestRef, 0, '');
    const diffId = createHash('sha256');
    try {
      const hasher = new Transform({
        transform(c: Buffer, _enc, cb) {
          diffId.update(c);
          cb(null, c);
        },
      });
      // pipeline destroys every stage on an error, so the loop below sees it
      const out: AsyncIterable<Buffer> =
        mt === GZIP ? pipeline(writeDiff(source), hasher, zlib.createGzip(), () => undefined) : pipeline(writeDiff(source), hasher, () => undefined);
      for await (const chunk of out) w.write(chunk);
      const uncompressed = `sha256:${diffId.digest('hex')}`;
      let digest: string;
      try {
        digest = w.commit(0, '', { ...labels, 'containerd.io/uncompressed': uncompressed }, lease);
      } catch (e) {
        if (!(e instanceof TsrunError && e.code === 'AlreadyExists')) throw e;
        digest = w.digest();
      }
      return { mediaType: mt, digest, size: cs.info(ns, digest).size };
    } catch (e) {
      w.close();
      try {
        cs.abort(ns, ingestRef);
      } catch {
        // already committed or gone
      }
      throw e;
    }
  };
}
